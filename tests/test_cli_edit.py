"""`orderbots edit`: a person corrects a held order, which is then validated again from the start."""

from __future__ import annotations

import json
import sys
from decimal import Decimal

from orderbots import states
from orderbots.errors import BusinessError
from tests.plugins.cli import sample_order


def _held_for_postcode(store, cli_invoke, po="PO-7"):
    order = sample_order(po=po)
    order.ship_to.postcode = "NOT A CODE"
    key = store.add_order(order).key
    assert cli_invoke("run", "validate").exit_code == 0
    held = store.get(key)
    assert held.state == states.HELD and "invalid_postcode" in {f.code for f in held.findings}
    return key


def _editor_replacing(old, new, tmp_path, monkeypatch):
    """Set $EDITOR to a program that replaces ``old`` with ``new`` in the file it is given."""
    script = tmp_path / "editor.py"
    script.write_text(f"import sys\np = sys.argv[1]\ntext = open(p).read()\n"
                      f"open(p, 'w').write(text.replace({old!r}, {new!r}))\n")
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")


def test_set_corrects_a_held_order_and_it_passes_validation(cli_invoke, store):
    key = _held_for_postcode(store, cli_invoke)
    result = cli_invoke("edit", key, "--set", "ship_to.postcode=LS1 1AA", "--set", "lines.2.qty=4",
                        "--set", "lines.2.unit_price=14.90", "--reason", "customer phoned")
    assert result.exit_code == 0, result.output
    assert "ship_to.postcode: NOT A CODE -> LS1 1AA" in result.output
    item = store.get(key)
    assert item.state == states.RECEIVED and item.order.lines[1].qty == Decimal(4)
    assert cli_invoke("run", "validate").exit_code == 0
    assert store.get(key).state == states.VALIDATED, store.get(key).findings
    edit_event = [e for e in store.events(key) if e["to_state"] == states.RECEIVED and e["actor"].startswith("person:")]
    assert edit_event[0]["reason"] == "customer phoned"
    assert "lines.2.qty: 6 -> 4" in edit_event[0]["data"]["changes"]


def test_a_line_can_be_removed(cli_invoke, store):
    key = _held_for_postcode(store, cli_invoke)
    assert cli_invoke("edit", key, "--set", "lines.1=", "--set", "ship_to.postcode=LS1 1AA").exit_code == 0
    assert [line.sku for line in store.get(key).order.lines] == ["SKU-1002"]


def test_editor_round_trip(cli_invoke, store, tmp_path, monkeypatch):
    key = _held_for_postcode(store, cli_invoke)
    _editor_replacing("NOT A CODE", "LS2 7UE", tmp_path, monkeypatch)
    result = cli_invoke("edit", key)
    assert result.exit_code == 0, result.output
    assert store.get(key).order.ship_to.postcode == "LS2 7UE"
    assert store.get(key).order.lines == sample_order().lines  # untouched fields survive the YAML round trip


def test_an_unchanged_editor_session_changes_nothing(cli_invoke, store, monkeypatch):
    key = _held_for_postcode(store, cli_invoke)
    monkeypatch.setenv("EDITOR", "true")
    result = cli_invoke("edit", key)
    assert result.exit_code == 0 and "nothing changed" in result.output
    assert store.get(key).state == states.HELD


def test_bad_edits_are_refused_with_what_is_allowed(cli_invoke, store):
    key = _held_for_postcode(store, cli_invoke)
    cases = {
        ("--set", "ship_to.zip=1"): "'ship_to.zip' is not a field that can be edited",
        ("--set", "lines.9.qty=1"): "the order has no line 9; its lines are 1, 2",
        ("--set", "lines.1.qty=lots"): "lines.1.qty: 'lots' is not a number",
        ("--set", "requested_date=next week"): "write YYYY-MM-DD",
        ("--set", "po_number=PO-8"): "'po_number' is not a field that can be edited",
        ("--set", "notes"): "write FIELD=VALUE",
    }
    for args, message in cases.items():
        result = cli_invoke("edit", key, *args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    assert store.get(key).state == states.HELD
    assert json.loads(cli_invoke("show", key, "--json").stdout)["order"]["lines"][0]["qty"] == "3"


def test_identity_cannot_change_in_the_editor(cli_invoke, store, tmp_path, monkeypatch):
    key = _held_for_postcode(store, cli_invoke)
    _editor_replacing("PO-7", "PO-70", tmp_path, monkeypatch)
    result = cli_invoke("edit", key)
    assert result.exit_code == 2 and "cannot change" in result.output, result.output
    assert store.get(key).state == states.HELD


def test_only_held_orders_not_yet_in_the_erp_can_be_edited(cli_invoke, store):
    fresh = store.add_order(sample_order(po="PO-1")).key
    result = cli_invoke("edit", fresh, "--set", "notes=x")
    assert result.exit_code == 2 and "only held orders can be edited" in result.output
    in_erp = store.add_order(sample_order(po="PO-2")).key
    store.transition(in_erp, states.VALIDATED, actor="validate")
    store.transition(in_erp, states.IN_ERP, actor="erp_entry", erp_number="SO-000123")
    store.hold_or_reject(in_erp, BusinessError("short stock", code="stock"), "wms_release", states.WMS_RELEASE)
    result = cli_invoke("edit", in_erp, "--set", "lines.1.qty=1")
    assert result.exit_code == 2 and "already in the ERP as SO-000123" in result.output
    assert store.get(in_erp).state == states.HELD
