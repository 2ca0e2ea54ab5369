"""portal_intake under every fault of the sandbox, and with the portal's other layout: in the end every PO is
imported exactly once and acknowledged; pagination reads every PO of a long list whatever the page size."""

from datetime import date

import pytest

from orderbots.errors import ApplicationError
from bots.portal_intake import load_portals, portal_screens
from orderbots import config
from orderbots.masterdata import MasterData
from tests.plugins.portal import portal_entry, run_intake, store_orders, write_portals

FAULTS = {
    "latency": {"latency": 0.05},
    "http_500": {"error_rate": 0.2},
    "expired_session": {"drop_session": 0.1},
    "slow_page": {"slow_rate": 0.15, "slow_seconds": 2.5},
    "ghost_acknowledge": {"ghost_submit": 1},
}


def sync_until_settled(home, portal, runs: int = 8) -> list:
    """Run the bot until every PO is imported and acknowledged (or ``runs`` runs); the runs' counts."""
    counts = []
    for _ in range(runs):
        try:
            counts.append(run_intake(home).counts)
        except ApplicationError as exc:  # the listing itself failed this time; the next run tries again
            counts.append({"failed": str(exc)})
        if {p["status"] for p in portal.pos().values()} == {"acknowledged"} and \
                len(store_orders(home)) == len(portal.pos()):
            break
    return counts


@pytest.mark.parametrize("fault", FAULTS)
def test_every_fault_ends_with_each_po_imported_once_and_acknowledged(home, portal, fault):
    numbers = portal.seed(4)
    write_portals(home, portal_entry(portal, navigation_timeout=1.5, action_timeout=1.5, retries=2))
    portal.server.set_faults(**FAULTS[fault])
    counts = sync_until_settled(home, portal)
    assert sorted(i.order.po_number for i in store_orders(home)) == numbers, counts  # each once
    assert {p["status"] for p in portal.pos().values()} == {"acknowledged"}, counts
    evidence = [f for f in (home / "runlog" / "artifacts").rglob("*") if f.is_file()]
    failed_po_steps = sum(c.get("po_errors", 0) for c in counts)
    assert len([f for f in evidence if f.name == "error.txt"]) >= failed_po_steps, counts  # each left evidence
    # (a 500 usually succeeds on a retry within its step; test_portal_screens checks a 500's evidence for sure)
    assert not any(portal.password.encode() in f.read_bytes() for f in evidence)


@pytest.mark.parametrize("mode", ["detail", "export"])
def test_layout_v2_and_a_switch_between_runs(home, portal, mode):
    portal.seed(11)  # two pages of ten
    portal.set_layout("v2")
    write_portals(home, portal_entry(portal, mode=mode))
    assert run_intake(home).counts["imported"] == 11
    portal.set_layout("classic")
    portal.seed(2)
    assert run_intake(home).counts["imported"] == 2
    assert sorted(i.order.po_number for i in store_orders(home)) == sorted(portal.pos())
    assert {p["status"] for p in portal.pos().values()} == {"acknowledged"}
    lines = {i.order.po_number: [(l.sku, l.qty) for l in i.order.lines] for i in store_orders(home)}
    assert all(sku.startswith("SKU-") for po in lines.values() for sku, _ in po)  # columns found by name


def test_pagination_reads_all_500_pos_in_both_layouts(home, portal):
    numbers = portal.seed(500)
    write_portals(home, portal_entry(portal))
    settings = config.load(home)
    (acme,) = load_portals(settings, MasterData.load(settings.rules_dir / "data"))
    with portal_screens(acme) as app:
        classic = app.list_changed(None)  # 20 pages of 25
        portal.set_layout("v2")
        v2 = app.list_changed(date.today())  # 50 pages of 10
    assert sorted(r.number for r in classic) == numbers and sorted(r.number for r in v2) == numbers
    assert {r.status for r in v2} == {"new"}
