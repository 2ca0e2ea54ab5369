"""portal_intake against the real portal with real Chromium: first and incremental sync, mapping, acknowledging,
cancellations and changes, crash between commit and acknowledge, several portals, export mode, layouts."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from orderbots import config, states
from orderbots.errors import ApplicationError, ConfigError
from tests.plugins.portal import portal_entry, run_intake, store_orders, write_portals

REPO = Path(__file__).resolve().parents[1]
PO = {"number": "PO-7", "delivery_date": "2031-05-02", "notes": "Ring the bell",
      "lines": [{"buyer_item": "B-1001", "supplier_item": "SKU-1001", "description": "Bottle", "qty": "12",
                 "unit": "EA", "unit_price": "8.50"},
                {"buyer_item": "B-2002", "supplier_item": "", "description": "Pens", "qty": "3", "unit": "BX",
                 "unit_price": "9.80"},
                {"buyer_item": "X-999", "supplier_item": "", "description": "Mystery", "qty": "1", "unit": "EA",
                 "unit_price": "1.00"}]}


def by_po(home) -> dict:
    return {item.order.po_number: item for item in store_orders(home)}


def test_first_sync_imports_maps_and_acknowledges(home, portal):
    portal.seed(5, pos=[PO])
    write_portals(home, portal_entry(portal, workers=3, trace=True))
    run = run_intake(home)
    assert run.counts["imported"] == 6 and run.counts["acknowledged"] == 6
    assert {p["status"] for p in portal.pos().values()} == {"acknowledged"}
    items = by_po(home)
    assert len(items) == 6
    item = items["PO-7"]
    order = item.order
    assert (order.channel, order.source_ref, order.customer.id) == ("portal", "portal:acme/PO-7", "C1001")
    assert str(order.requested_date) == "2031-05-02" and order.notes == "Ring the bell"
    assert (order.ship_to.name, order.ship_to.postcode, order.ship_to.country) == (
        "Acme Retail DC Daventry", "NN11 8YH", "GB")
    assert [(l.sku, l.qty, l.unit_price) for l in order.lines] == [
        ("SKU-1001", Decimal("12"), Decimal("8.50")), ("SKU-2002", Decimal("3"), Decimal("9.80")),
        ("", Decimal("1"), Decimal("1.00"))]  # by supplier item, by item_map, unmapped
    assert item.state == states.HELD  # the unmapped line needs a person
    assert "buyer item 'X-999' has no supplier item number" in " ".join(f.text() for f in item.findings)
    raw = Path(order.raw_path)
    assert raw.parent == home / "runlog" / "raw" / "portal" / "acme" and "Purchase order PO-7" in raw.read_text()
    assert {i.state for k, i in items.items() if k != "PO-7"} <= {states.VALIDATED, states.HELD}
    with config.load(home).open_store() as store:
        assert store.get_sync("portal:acme")["changed"] == max(p["changed_at"] for p in portal.pos().values())


def test_incremental_sync_takes_only_what_changed(home, portal):
    portal.seed(4)
    write_portals(home, portal_entry(portal))
    run_intake(home)
    second = run_intake(home)
    assert second.counts["imported"] == 0 and second.counts["acknowledged"] == 0
    portal.seed(2)
    third = run_intake(home)
    assert third.counts["imported"] == 2 and third.counts["acknowledged"] == 2
    assert sorted(by_po(home)) == sorted(portal.pos())
    assert {p["status"] for p in portal.pos().values()} == {"acknowledged"}


def test_cancellations_and_changes(home, portal):
    numbers = portal.seed(5)
    write_portals(home, portal_entry(portal))
    portal.cancel(numbers[4])  # cancelled before we ever saw it
    run_intake(home)
    items = by_po(home)
    assert numbers[4] not in items and len(items) == 4
    assert {i.state for i in items.values()} == {states.VALIDATED}  # generated POs pass every rule
    with config.load(home).open_store() as store:  # one order reached the ERP, one was rejected by a person
        store.transition(items[numbers[1]].key, states.ENTERING_ERP, actor="test")
        store.transition(items[numbers[1]].key, states.IN_ERP, actor="test", erp_number="SO-100001")
        store.reject(items[numbers[2]].key, actor="test", reason="test")
    portal.cancel(numbers[0])
    portal.cancel(numbers[1])
    portal.cancel(numbers[2])
    portal.change(numbers[3], delivery_date="2031-07-01", notes="new dock")
    run = run_intake(home)
    assert run.counts["cancelled_at_source_held"] == 2 and run.counts["cancelled_at_source_noted"] == 1
    assert run.counts["changed_at_source_held"] == 1 and run.counts["acknowledged"] == 1
    items = by_po(home)
    assert items[numbers[0]].state == states.HELD
    assert items[numbers[0]].findings[-1].code == "cancelled_at_source"
    assert items[numbers[1]].state == states.HELD and "in the ERP as SO-100001" in items[numbers[1]].findings[-1].text()
    assert items[numbers[2]].state == states.REJECTED
    assert items[numbers[3]].state == states.HELD and items[numbers[3]].findings[-1].code == "changed_at_source"
    assert portal.pos()[numbers[3]]["status"] == "acknowledged"  # the change was acknowledged
    with config.load(home).open_store() as store:
        events = store.events(items[numbers[2]].key)
        assert events[-1]["reason"].startswith("cancelled_at_source") and events[-1]["to_state"] == "rejected"
        approved_to = store.approve(items[numbers[1]].key, actor="test")
    assert approved_to == states.IN_ERP  # approving resumes where it was held, never re-enters the ERP
    again = run_intake(home)
    assert again.counts["imported"] == 0 and not any(k.startswith(("cancelled", "changed")) for k in again.counts)


def test_cancelled_while_a_bot_works_on_it_waits_for_the_next_run(home, portal):
    numbers = portal.seed(2)
    write_portals(home, portal_entry(portal))
    run_intake(home)
    key = by_po(home)[numbers[0]].key
    with config.load(home).open_store() as store:
        with store.claim(states.ERP_ENTRY, "erp-bot") as item:
            assert item.key == key
            store.transition(key, states.ENTERING_ERP, actor="erp-bot")
            portal.cancel(numbers[0])
            portal.cancel(numbers[1])
            run = run_intake(home)
            assert run.counts["cancelled_at_source_deferred"] == 1 and run.counts["cancelled_at_source_held"] == 1
            store.transition(key, states.IN_ERP, actor="erp-bot", erp_number="SO-100009")
    later = run_intake(home)
    assert later.counts["cancelled_at_source_held"] == 1
    assert by_po(home)[numbers[0]].state == states.HELD


LATENCY = 1.5


def test_a_cancellation_in_the_same_second_as_the_import_is_seen(home, portal):
    """The portal's clock shows whole seconds: a PO cancelled within the second it was created keeps its
    "last changed" time, and must still count as a new revision."""
    [number] = portal.seed(1)
    write_portals(home, portal_entry(portal))
    assert run_intake(home).counts["imported"] == 1
    created = portal.pos()[number]["changed_at"]
    portal.cancel(number)
    with sqlite3.connect(portal.server.db_path, timeout=10) as conn:  # the clock has not ticked yet
        conn.execute("UPDATE portal_pos SET changed_at = ? WHERE number = ?", (created, number))
    assert (portal.pos()[number]["status"], portal.pos()[number]["changed_at"]) == ("cancelled", created)

    assert run_intake(home).counts["cancelled_at_source_held"] == 1
    assert by_po(home)[number].findings[-1].code == "cancelled_at_source"


def test_crash_between_commit_and_acknowledge(home, portal):
    """A real bot process is killed right after its first commit, before the portal acknowledged that PO."""
    portal.seed(3)
    write_portals(home, portal_entry(portal, navigation_timeout=30, action_timeout=30))
    portal.server.set_faults(latency=LATENCY)
    env = {**os.environ, "ORDERBOTS_HOME": str(home)}
    log = home / "bot.log"
    with log.open("wb") as out:
        bot = subprocess.Popen([str(Path(sys.executable).parent / "orderbots"), "run", "portal_intake"], cwd=REPO,
                               env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not store_orders(home) and time.monotonic() < deadline and bot.poll() is None:
            time.sleep(0.05)
        assert store_orders(home), f"the bot committed no order: {log.read_text()}"
    finally:
        if bot.poll() is None:
            os.killpg(bot.pid, signal.SIGKILL)  # the bot and its Chromium
        bot.wait()
    # The "Acknowledge" the bot sent just before it died may still wait out the latency in the portal: the
    # portal now fails it (HTTP 500 after the latency, nothing acknowledged) and the test waits it out.
    portal.server.set_faults(error_rate=1)
    time.sleep(LATENCY * 2)
    committed = [i.order.po_number for i in store_orders(home)]
    assert len(committed) == 1 and portal.pos()[committed[0]]["status"] == "new"  # committed, not acknowledged
    portal.server.set_faults()
    run = run_intake(home)
    assert run.counts["imported"] == 2 and run.counts["acknowledged"] == 3, run.counts
    assert sorted(i.order.po_number for i in store_orders(home)) == sorted(portal.pos())  # no duplicate
    assert {p["status"] for p in portal.pos().values()} == {"acknowledged"}


def test_several_portals_each_with_own_customer_and_credentials(home, portal_factory):
    acme, nordic = portal_factory(), portal_factory()
    acme.seed(2)
    nordic.seed(pos=[{**PO, "number": "N-1", "lines": PO["lines"][:1]}], buyer="Nordic Outdoor Oy")
    write_portals(home, portal_entry(acme), portal_entry(nordic, name="nordic", customer="C1002", mode="export"))
    run = run_intake(home)
    assert run.counts["imported"] == 3 and run.counts["acknowledged"] == 3
    items = by_po(home)
    assert items["N-1"].order.customer.id == "C1002" and items["N-1"].order.source_ref == "portal:nordic/N-1"
    assert items["N-1"].order.raw_path.endswith(".csv") and "N-1" in Path(items["N-1"].order.raw_path).read_text()
    assert {i.order.customer.id for k, i in items.items() if k != "N-1"} == {"C1001"}
    assert acme.password != nordic.password


def test_a_portal_that_refuses_the_login_does_not_stop_the_others(home, portal_factory, monkeypatch):
    bad, good = portal_factory(), portal_factory()
    bad.seed(1)
    good.seed(1)
    monkeypatch.setenv(bad.password_env, "wrong-password")
    write_portals(home, portal_entry(bad, name="bad"), portal_entry(good, name="good"))
    with pytest.raises(ApplicationError, match="portal bad: .*refused the login"):
        run_intake(home)
    assert [i.order.source_ref for i in store_orders(home)] == [f"portal:good/{next(iter(good.pos()))}"]


@pytest.mark.parametrize("entry, message", [
    ({"customer": "C9999"}, "customer 'C9999' is not in rules/data/customers.csv"),
    ({"mode": "api"}, "mode must be one of detail, export"),
    ({"item_map": {"B-1": "SKU-0000"}}, "names SKU(s) not in rules/data/items.csv: SKU-0000"),
    ({"password_env": "NOT_SET_ANYWHERE"}, "NOT_SET_ANYWHERE"),
    ({"colour": "red"}, "colour is not a known key"),
])
def test_bad_configuration_names_file_and_line(home, entry, message):
    base = {"name": "acme", "url": "http://127.0.0.1:9/", "customer": "C1001", "user": "u",
            "password_env": "HOME"}
    write_portals(home, {**base, **entry})
    with pytest.raises(ConfigError) as caught:
        run_intake(home)
    assert message in str(caught.value) and "orderbots.yaml:" in str(caught.value)
