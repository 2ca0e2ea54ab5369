"""Bulk intake paths give the same results as the one-at-a-time ones they speed up."""

import gc
import json
from datetime import datetime, timezone

import pytest

from orderbots import notices, states
from orderbots.gcpause import paused_gc
from orderbots.model import Finding
from orderbots.store import IllegalTransition, Store, UnknownOrder
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


def _moves(keys: list[str]) -> list[tuple[str, str, dict]]:
    """Validation decisions of every kind, one key moved twice (held, then approved on)."""
    hold = Finding("price_deviation", "hold", {"en": "price"}, "lines[1].unit_price")
    reject = Finding("unknown_item", "reject", {"en": "unknown item"}, "lines[1].sku")
    order = make_order("PO-1", "file:a#S!2-3")
    return [
        (keys[0], states.VALIDATED, {"reason": "all rules passed", "findings": [], "data": {"codes": []},
                                     "attempts": 0}),
        (keys[1], states.HELD, {"reason": "price_deviation", "findings": [hold], "resume_step": "validate",
                                "data": {"codes": ["price_deviation"]}}),
        (keys[2], states.REJECTED, {"reason": "unknown_item", "findings": [reject], "resume_step": "validate",
                                    "notices": notices.rejected(order, keys[2], [reject])}),
        (keys[1], states.VALIDATED, {"reason": "approved", "attempts": 0}),
    ]


def _without_times(store: Store) -> list[tuple]:
    orders = [tuple(r) for r in store.db.execute(
        "SELECT key, state, findings_json, resume_step, attempts FROM orders ORDER BY id")]
    events = [tuple(r) for r in store.db.execute(
        "SELECT order_key, actor, from_state, to_state, reason, data_json FROM events ORDER BY id")]
    outbox = [tuple(r) for r in store.db.execute(
        "SELECT dedupe_key, order_key, kind, recipient, payload_json FROM outbox ORDER BY id")]
    return [orders, events, outbox]


def test_transition_many_matches_transition_one_by_one(tmp_path):
    one, bulk = Store(tmp_path / "one.db"), Store(tmp_path / "bulk.db")
    for store in (one, bulk):
        keys = [store.add_order(make_order(f"PO-{n}", f"file:a#S!{n}")).key for n in range(3)]
    for key, to, fields in _moves(keys):
        one.transition(key, to, actor="validate", **fields)
    bulk.transition_many(_moves(keys), actor="validate")

    assert _without_times(bulk) == _without_times(one)
    assert [r[1] for r in _without_times(bulk)[0]] == [states.VALIDATED, states.VALIDATED, states.REJECTED]


def test_transition_many_records_nothing_when_one_move_is_illegal(tmp_path):
    store = Store(tmp_path / "o.db")
    keys = [store.add_order(make_order(f"PO-{n}", f"file:a#S!{n}")).key for n in range(2)]
    before = _without_times(store)
    with pytest.raises(IllegalTransition, match="cannot go from received to in_erp"):
        store.transition_many([(keys[0], states.VALIDATED, {}), (keys[1], states.IN_ERP, {})], actor="validate")
    with pytest.raises(UnknownOrder):
        store.transition_many([(keys[0], states.VALIDATED, {}), ("C9/none", states.VALIDATED, {})], actor="v")
    assert _without_times(store) == before


def test_paused_gc_restores_the_collector_after_nested_blocks():
    assert gc.isenabled()
    with paused_gc():
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
