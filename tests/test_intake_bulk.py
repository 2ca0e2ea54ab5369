"""Bulk intake paths give the same results as the one-at-a-time ones they speed up."""

import json
from datetime import datetime, timezone

from orderbots import notices
from orderbots.store import Store
from tests.test_core_store import make_order as core_order

RECEIVED = datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)


def make_order(po: str, source: str):
    order = core_order(po, source)
    order.received_at = RECEIVED
    return order


def _batch():
    """Orders of one file next to ones stored before: a repeated source, a PO repeated within the
    batch, a PO stored earlier, and a plain new one."""
    return [make_order("PO-1", "file:b#S!2-3"), make_order("PO-9", "file:a#S!2-3"),
            make_order("PO-1", "file:b#S!4-5"), make_order("PO-2", "file:b#S!6-7"),
            make_order("PO-3", "file:b#S!8-9"), make_order("PO-3", "file:b#S!8-9")]


def _stored(store: Store) -> list[tuple]:
    orders = [tuple(r) for r in store.db.execute(
        "SELECT key, customer_id, po_number, duplicate_of, source_ref, state, order_json FROM orders ORDER BY id")]
    events = [tuple(r) for r in store.db.execute(
        "SELECT order_key, actor, from_state, to_state, reason, data_json FROM events ORDER BY id")]
    outbox = [tuple(r) for r in store.db.execute("SELECT dedupe_key, order_key, kind, recipient FROM outbox ORDER BY id")]
    return [orders, events, outbox]


def test_add_orders_matches_add_order_one_by_one(tmp_path):
    one, bulk = Store(tmp_path / "one.db"), Store(tmp_path / "bulk.db")
    for store in (one, bulk):
        store.add_order(make_order("PO-1", "file:a#S!2-3"))
        store.add_order(make_order("PO-2", "file:a#S!4-5"))
    singles = [one.add_order(o, actor="bot", notices=notices.received(o, None)) for o in _batch()]
    bulked = bulk.add_orders([(o, notices.received(o, None)) for o in _batch()], actor="bot")

    assert bulked == singles
    assert [(r.key, r.created, r.duplicate_of) for r in bulked] == [
        ("C1001/PO-1#2", True, "C1001/PO-1"), (None, False, None), ("C1001/PO-1#3", True, "C1001/PO-1"),
        ("C1001/PO-2#2", True, "C1001/PO-2"), ("C1001/PO-3", True, None), (None, False, None)]
    assert _stored(bulk) == _stored(one)
    assert json.loads(_stored(bulk)[0][-1][-1])["po_number"] == "PO-3"
