"""The `orderbots` command line against a real store: what an operator reads and decides."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from orderbots import states
from orderbots.cli import LAZY_COMMANDS, cli
from orderbots.errors import ApplicationError, BusinessError
from orderbots.runlog import record_run
from tests.plugins.cli import sample_order


@pytest.fixture
def orders_in_store(store):
    """Four orders: one received, one held (bad price), one retry_wait (ERP timeout), one failed."""
    keys = [store.add_order(sample_order(po=f"PO-{n}")).key for n in range(1, 5)]
    store.hold_or_reject(keys[1], BusinessError("unit price 8.50 differs from list price 9.00",
                                                code="price_mismatch"), "validate", states.VALIDATE)
    for key in keys[2:]:
        store.transition(key, states.VALIDATED, actor="validate")
    store.fail_attempt(keys[2], states.ERP_ENTRY, ApplicationError("ERP timed out after 30s"), "erp_entry")
    for _ in range(states.ERP_ENTRY.max_attempts):
        store.fail_attempt(keys[3], states.ERP_ENTRY, ApplicationError("element #submit not found"), "erp_entry")
    return keys


def test_every_command_has_a_description_usage_and_example(cli_invoke):
    top = cli_invoke("--help")
    assert top.exit_code == 0 and "Usage: orderbots" in top.output
    names = cli.list_commands(None)
    assert {"serve", "run", "bots", "orders", "show", "approve", "reject", "retry", "runs"} <= set(names)
    for name in names:
        result = cli_invoke(name, "--help")
        assert result.exit_code == 0, result.output
        assert f"Usage: orderbots {name}" in result.output
        command = cli.get_command(None, name)
        assert (command.help or "").strip(), f"{name} has no description"
        assert f"  {name} " in top.output, f"{name} is not listed in orderbots --help"
        assert "Example" in result.output, f"{name} --help shows no example"


def test_version(cli_invoke):
    result = cli_invoke("--version")
    assert result.exit_code == 0 and "orderbots, version" in result.output


def test_orders_lists_state_and_reason_as_json(cli_invoke, orders_in_store):
    result = cli_invoke("orders", "--json")
    assert result.exit_code == 0
    rows = {r["key"]: r for r in json.loads(result.stdout)}
    received, held, waiting, failed = (rows[k] for k in orders_in_store)
    assert received["state"] == "received" and received["reason"] == ""
    assert held["state"] == "held" and "price_mismatch" in held["reason"]
    assert waiting["state"] == "retry_wait" and "ERP timed out" in waiting["reason"]
    assert failed["state"] == "failed" and "#submit not found" in failed["reason"]
    assert received["lines"] == 2 and received["total"] == "76.50" and received["customer"] == "Acme Retail Ltd"


def test_orders_filters_by_state_and_limits_to_the_most_recent(cli_invoke, orders_in_store):
    held = json.loads(cli_invoke("orders", "--state", "held", "--json").stdout)
    assert [r["key"] for r in held] == [orders_in_store[1]]
    latest = json.loads(cli_invoke("orders", "--limit", "2", "--json").stdout)
    assert [r["key"] for r in latest] == orders_in_store[2:]


def test_orders_table_shows_every_order(cli_invoke, orders_in_store):
    result = cli_invoke("orders")
    assert result.exit_code == 0
    for key in orders_in_store:
        assert key in result.stdout
    assert "price_mismatch" in result.stdout


def test_customer_text_is_shown_literally_never_as_markup(cli_invoke, store):
    order = sample_order(po="[bold]PO-9[/bold]")
    order.customer.name = "[red]Evil[/red] :smile: Ltd"
    store.add_order(order)
    out = cli_invoke("orders").stdout
    assert "[red]Evil[/red] :smile: Ltd" in out and "[bold]PO-9[/bold]" in out


def test_show_has_lines_findings_history_and_artifacts(cli_invoke, settings, orders_in_store):
    held = orders_in_store[1]
    shot = settings.artifacts_dir / "17" / held.replace("/", "_") / "screenshot.png"
    shot.parent.mkdir(parents=True)
    shot.write_bytes(b"\x89PNG")
    data = json.loads(cli_invoke("show", held, "--json").stdout)
    assert data["key"] == held and data["state"] == "held"
    assert [l["sku"] for l in data["order"]["lines"]] == ["SKU-1001", "SKU-1002"]
    assert [(f["code"], f["severity"]) for f in data["findings"]] == [("price_mismatch", "hold")]
    assert [(e["from_state"], e["to_state"]) for e in data["events"]] == [(None, "received"), ("received", "held")]
    assert data["artifacts"] == [str(shot)]

    text = cli_invoke("show", held).stdout
    for expected in ("SKU-1002", "price_mismatch", "unit price 8.50 differs", "history", str(shot)):
        assert expected in text


def test_show_reports_erp_and_wms_references(cli_invoke, store):
    key = store.add_order(sample_order()).key
    store.transition(key, states.VALIDATED, actor="validate")
    store.transition(key, states.IN_ERP, actor="erp_entry", erp_number="SO-77001")
    store.transition(key, states.RELEASED, actor="wms_release", wms_ref="WMS-5")
    data = json.loads(cli_invoke("show", key, "--json").stdout)
    assert (data["erp_number"], data["wms_ref"]) == ("SO-77001", "WMS-5")
    assert "SO-77001" in cli_invoke("show", key).stdout


def test_unknown_order_is_a_one_line_error_with_exit_2(cli_invoke, store):
    result = cli_invoke("show", "NOPE/1")
    assert result.exit_code == 2
    assert "no order with key 'NOPE/1'" in result.stderr
    assert "Traceback" not in result.output and result.stderr.count("\n") == 1


def test_approve_sends_a_held_order_on_as_the_person(cli_invoke, store, orders_in_store, monkeypatch):
    monkeypatch.setenv("USER", "mei")
    held = orders_in_store[1]
    result = cli_invoke("approve", held, "--reason", "price agreed by phone")
    assert result.exit_code == 0 and "held -> validated" in result.stdout
    last = store.events(held)[-1]
    assert (last["actor"], last["to_state"], last["reason"]) == ("person:mei", "validated", "price agreed by phone")


def test_approve_of_an_order_that_is_not_held_is_refused(cli_invoke, store, orders_in_store):
    result = cli_invoke("approve", orders_in_store[0])
    assert result.exit_code == 2 and "only held orders can be approved" in result.stderr
    assert store.get(orders_in_store[0]).state == "received"


def test_reject_needs_a_reason_and_tells_the_customer(cli_invoke, store, orders_in_store):
    held = orders_in_store[1]
    missing = cli_invoke("reject", held)
    assert missing.exit_code == 2 and "--reason" in missing.output
    assert store.get(held).state == "held"

    result = cli_invoke("reject", held, "--reason", "item discontinued")
    assert result.exit_code == 0 and store.get(held).state == "rejected"
    notices = store.db.execute("SELECT kind, recipient FROM outbox WHERE order_key = ?", (held,)).fetchall()
    assert [tuple(n) for n in notices] == [("order_rejected", "orders@acme-retail.example")]


def test_retry_gives_a_failed_order_fresh_attempts(cli_invoke, store, orders_in_store):
    failed = orders_in_store[3]
    result = cli_invoke("retry", failed, "--reason", "ERP back")
    assert result.exit_code == 0 and "failed -> retry_wait" in result.stdout
    item = store.get(failed)
    assert item.attempts == 0 and item.resume_step == "erp_entry"
    with store.claim(states.ERP_ENTRY, "worker") as claimed:
        assert claimed.key == failed


def test_runs_lists_counts_and_errors(cli_invoke, store, settings):
    with record_run(store, "folder_intake", settings.artifacts_dir) as run:
        run.count("orders", 3)
    with pytest.raises(RuntimeError):
        with record_run(store, "erp_entry", settings.artifacts_dir):
            raise RuntimeError("ERP login page changed")
    rows = json.loads(cli_invoke("runs", "--json").stdout)
    assert [(r["bot"], r["status"]) for r in rows] == [("erp_entry", "error"), ("folder_intake", "ok")]
    assert rows[0]["error"] == "RuntimeError: ERP login page changed" and rows[1]["counts"] == {"orders": 3}
    assert [r["bot"] for r in json.loads(cli_invoke("runs", "--json", "--limit", "1").stdout)] == ["erp_entry"]
    text = cli_invoke("runs").stdout
    assert "ERP login page changed" in text and "orders 3" in text


def test_run_of_an_unknown_bot_exits_2(cli_invoke):
    result = cli_invoke("run", "no_such_bot")
    assert result.exit_code == 2 and "there is no bot called 'no_such_bot'" in result.stderr


def test_run_rejects_a_malformed_arg(cli_invoke):
    result = cli_invoke("run", "validate", "--arg", "limit")
    assert result.exit_code == 2 and "key=value" in result.output


def test_bots_lists_every_bot_module(cli_invoke):
    import bots

    out = cli_invoke("bots").stdout
    folder = Path(bots.__path__[0])
    modules = [p.stem for p in folder.glob("*.py") if not p.stem.startswith("_") and "def run(" in p.read_text()]
    for name in modules:
        assert name in out


def test_bad_config_file_is_reported_with_file_and_line(cli_invoke, home):
    (home / "orderbots.yaml").write_text("runlog: runlog\nbrowser: [unclosed\n")
    result = cli_invoke("orders")
    assert result.exit_code == 2 and f"{home / 'orderbots.yaml'}:" in result.stderr


def test_run_runs_a_real_bot_once_and_prints_its_counts(cli_invoke, store):
    keys = [store.add_order(sample_order(po=f"PO-{n}")).key for n in range(3)]
    result = cli_invoke("run", "validate", "--arg", "limit=2")
    assert result.exit_code == 0, result.output
    run = json.loads(cli_invoke("runs", "--json").stdout)[0]
    assert result.stdout.startswith(f"run {run['id']} of validate: ok - ")
    assert sum(run["counts"].values()) == 2 and run["status"] == "ok"
    assert [store.get(k).state == "received" for k in keys] == [False, False, True]


def test_run_of_a_failing_bot_exits_1_and_the_error_is_in_the_run_log(cli_invoke):
    result = cli_invoke("run", "validate", "--arg", "limit=lots")
    assert result.exit_code == 1
    assert "bot validate failed: ValueError" in result.stderr and "Traceback" not in result.output
    run = json.loads(cli_invoke("runs", "--json").stdout)[0]
    assert run["status"] == "error" and run["error"].startswith("ValueError")


def test_run_with_a_broken_rules_file_exits_2_naming_the_file(cli_invoke, home):
    (home / "rules" / "orders.yaml").write_text("rules: [unclosed\n")
    result = cli_invoke("run", "validate")
    assert result.exit_code == 2 and "orders.yaml" in result.stderr


@click.command("hello")
def _hello_command() -> None:
    """Say hello (a command registered lazily by a test).

    \b
    Example:
      orderbots hello
    """
    click.echo("hello from a lazily loaded command")


def test_a_command_added_to_lazy_commands_is_listed_and_runs(cli_invoke, monkeypatch):
    monkeypatch.setitem(LAZY_COMMANDS, "hello", "tests.test_cli:_hello_command")
    assert "  hello " in cli_invoke("--help").output
    result = cli_invoke("hello")
    assert result.exit_code == 0 and result.stdout == "hello from a lazily loaded command\n"
