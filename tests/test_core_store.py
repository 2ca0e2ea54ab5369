"""The work-item store's contract: dedupe keys, legal transitions, history, outbox, people's actions."""

import sqlite3
from decimal import Decimal

import pytest

from orderbots import states
from orderbots.errors import ApplicationError, BusinessError
from orderbots.model import Address, Customer, Finding, Order, OrderLine
from orderbots.notices import Notice
from orderbots.store import IllegalTransition, Store, UnknownOrder


def make_order(po="PO-1", source="file:aaa#Sheet1!2-3", customer="C1001", email="orders@acme-retail.example"):
    return Order(
        channel="folder", source_ref=source, customer=Customer(customer, "Acme", email, "en"), po_number=po,
        lines=[OrderLine(1, "SKU-1001", Decimal("3"), unit_price=Decimal("8.50")),
               OrderLine(2, "SKU-1002", Decimal("1.5"), unit_price=Decimal("14.90"))],
        ship_to=Address("Acme DC", "1 Dock Rd", "Leeds", "LS1 1AA", "GB"), currency="EUR",
    )


def test_order_survives_a_round_trip_through_the_store(store):
    order = make_order()
    order.problems.append(Finding("bad_row", "hold", {"en": "row 3: qty", "zh-CN": "第3行"}, "qty"))
    store.add_order(order)
    back = store.get(order.key).order
    assert back == order
    assert back.total == Decimal("3") * Decimal("8.50") + Decimal("1.5") * Decimal("14.90")


def test_same_source_is_imported_once(store):
    assert store.add_order(make_order()).created
    again = store.add_order(make_order(po="PO-OTHER"))
    assert not again.created
    assert len(store.items()) == 1


def test_same_po_from_another_source_is_kept_as_a_duplicate(store):
    store.add_order(make_order())
    second = store.add_order(make_order(source="email:<x@y>#body"))
    assert second.created and second.duplicate_of == "C1001/PO-1"
    assert store.get(second.key).duplicate_of == "C1001/PO-1"
    assert [i.key for i in store.items()] == ["C1001/PO-1", "C1001/PO-1#2"]


def test_database_itself_refuses_a_second_live_order_for_the_same_po(store):
    store.add_order(make_order())
    with pytest.raises(sqlite3.IntegrityError):
        store.db.execute(
            "INSERT INTO orders (key, customer_id, po_number, channel, source_ref, state, order_json, received_at,"
            " created_at, updated_at) VALUES ('k2', 'C1001', 'PO-1', 'folder', 'other', 'received', '{}', '', '', '')")


def test_illegal_transition_is_refused_and_not_recorded(store):
    key = store.add_order(make_order()).key
    with pytest.raises(IllegalTransition):
        store.transition(key, states.IN_ERP, actor="test")
    assert store.get(key).state == states.RECEIVED
    assert [e["to_state"] for e in store.events(key)] == [states.RECEIVED]


def test_event_history_is_append_only(store):
    key = store.add_order(make_order()).key
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("DELETE FROM events")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("UPDATE events SET reason = 'x'")
    assert len(store.events(key)) == 1


def test_business_error_in_a_claim_rejects_and_tells_the_customer(store):
    key = store.add_order(make_order()).key
    with store.claim(states.VALIDATE, "w1") as item:
        raise BusinessError("SKU-1001 is not sold any more", code="inactive_item", severity="reject")
    item = store.get(key)
    assert item.state == states.REJECTED and item.lease_owner is None
    assert item.findings[-1].code == "inactive_item"
    [notice] = store.pending_notices()
    assert (notice["kind"], notice["recipient"]) == ("order_rejected", "orders@acme-retail.example")
    assert "SKU-1001 is not sold any more" in notice["payload_json"]


def test_application_errors_back_off_then_fail(store):
    key = store.add_order(make_order()).key
    step = states.Step("validate", takes=(states.RECEIVED,), on_approve=states.VALIDATED, max_attempts=3, backoff=0)
    for expected in (states.RETRY_WAIT, states.RETRY_WAIT, states.FAILED):
        with store.claim(step, "w1") as item:
            assert item.key == key
            raise ApplicationError("ERP timed out")
        assert store.get(key).state == expected
    assert store.get(key).attempts == 3
    assert "ERP timed out" in store.get(key).last_error
    with store.claim(step, "w1") as item:
        assert item is None


def test_retry_wait_is_not_claimed_before_its_time(store):
    key = store.add_order(make_order()).key
    with store.claim(states.VALIDATE, "w1"):
        raise ApplicationError("down")
    with store.claim(states.VALIDATE, "w1") as item:
        assert item is None
    store.retry(key, actor="person:ops")
    with store.claim(states.VALIDATE, "w1") as item:
        assert item.key == key and item.attempts == 0


def test_a_claimed_item_is_not_handed_out_twice(store, settings):
    store.add_order(make_order())
    with store.claim(states.VALIDATE, "w1") as first:
        with Store(settings.db_path) as other, other.claim(states.VALIDATE, "w2") as second:
            assert first is not None and second is None


def test_people_approve_reject_and_edit(store):
    key = store.add_order(make_order()).key
    with store.claim(states.VALIDATE, "bot"):
        raise BusinessError("address incomplete", code="address", severity="hold")
    assert store.approve(key, actor="person:ana", reason="checked by phone") == states.VALIDATED
    key2 = store.add_order(make_order(po="PO-2", source="s2")).key
    with store.claim(states.VALIDATE, "bot"):
        raise BusinessError("credit", code="credit_limit")
    edited = store.get(key2).order
    edited.ship_to.postcode = "LS2 2BB"
    store.edit(key2, edited, actor="person:ana")
    assert store.get(key2).state == states.RECEIVED
    assert store.get(key2).order.ship_to.postcode == "LS2 2BB"
    store.reject(key2, actor="person:ana", reason="customer cancelled by phone")
    history = [(e["actor"], e["to_state"]) for e in store.events(key2)]
    assert history[-1] == ("person:ana", states.REJECTED)
    with pytest.raises(UnknownOrder):
        store.get("C9999/none")


def test_outbox_sends_each_notice_once(store):
    key = store.add_order(make_order()).key
    store.enqueue([Notice("order_received", "a@b.example", order_key=key)])
    store.enqueue([Notice("order_received", "a@b.example", order_key=key)])
    [notice] = store.pending_notices()
    store.mark_send_failed(notice["id"], "421 try later", retry_in=3600)
    assert store.pending_notices() == []
    store.db.execute("UPDATE outbox SET next_attempt_at = 0")
    store.mark_sent(notice["id"])
    assert store.pending_notices() == []


def test_migrations_are_applied_once(settings):
    with Store(settings.db_path) as a, Store(settings.db_path) as b:
        assert a.db.execute("PRAGMA user_version").fetchone()[0] == b.db.execute("PRAGMA user_version").fetchone()[0] >= 1
        assert a.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_claim_batch_commits_all_transitions_and_releases_leases(store, settings):
    keys = [store.add_order(make_order(po=f"PO-{n}", source=f"s{n}")).key for n in range(5)]
    with store.claim_batch(states.VALIDATE, "w1", limit=3) as items:
        assert [i.key for i in items] == keys[:3]
        with Store(settings.db_path) as other, other.claim_batch(states.VALIDATE, "w2") as rest:
            assert [i.key for i in rest] == keys[3:]
        with store.transaction():
            for item in items:
                store.transition(item.key, states.VALIDATED, actor="w1")
    assert [store.get(k).state for k in keys] == [states.VALIDATED] * 3 + [states.RECEIVED] * 2
    assert all(store.get(k).lease_owner is None for k in keys)


def test_a_failing_batch_retries_only_the_items_it_did_not_finish(store):
    keys = [store.add_order(make_order(po=f"PO-{n}", source=f"s{n}")).key for n in range(3)]
    with store.claim_batch(states.VALIDATE, "w1") as items:
        store.transition(items[0].key, states.VALIDATED, actor="w1")
        raise RuntimeError("rules engine crashed")
    assert [store.get(k).state for k in keys] == [states.VALIDATED, states.RETRY_WAIT, states.RETRY_WAIT]
    assert "rules engine crashed" in store.get(keys[1]).last_error


def test_claimed_notices_are_skipped_by_other_senders_until_released(store):
    store.enqueue([Notice("order_received", f"c{n}@x.example", dedupe_key=f"n{n}") for n in range(3)])
    first = store.claim_notices(2)
    assert [r["recipient"] for r in first] == ["c0@x.example", "c1@x.example"]
    assert [r["recipient"] for r in store.claim_notices(10)] == ["c2@x.example"]
    assert store.claim_notices(10) == []
    store.mark_sent(first[0]["id"])
    store.release_notices([r["id"] for r in first])
    assert [r["recipient"] for r in store.pending_notices()] == ["c1@x.example"]


def _commit_levels(store):
    """The ``synchronous`` level each COMMIT of ``store`` runs at from now on (FULL fsyncs, NORMAL does not)."""
    levels, level = [], [store.synchronous]

    def trace(sql: str) -> None:
        if sql.startswith("PRAGMA synchronous = "):
            level[0] = sql.rsplit(" ", 1)[1]
        elif sql == "COMMIT":
            levels.append(level[0])
    store.db.set_trace_callback(trace)
    return levels


def _taken(levels):
    taken = list(levels)
    levels.clear()
    return taken


def test_commits_before_an_outside_effect_are_fsynced_and_the_others_are_not(store):
    """What a bot acts on outside the database (move a file, submit to the ERP, send a notice) is on disk
    first; leases and the results of steps ride along with the next fsynced commit."""
    levels = _commit_levels(store)
    key = store.add_order(make_order()).key
    assert _taken(levels) == ["FULL"]  # intake: the file is moved to done/ next
    with store.claim(states.VALIDATE, "w1") as item:
        store.transition(item.key, states.VALIDATED, actor="w1")
    assert _taken(levels) == ["NORMAL", "NORMAL", "NORMAL"]  # lease, validation result, release
    with store.claim(states.ERP_ENTRY, "w1") as item:
        assert store.extend_lease(item.key, "w1")
        store.transition(item.key, states.ENTERING_ERP, actor="w1")
        assert _taken(levels) == ["NORMAL", "NORMAL", "FULL"]  # the ERP submit comes next
        store.transition(item.key, states.IN_ERP, actor="w1", erp_number="SO-000001",
                         notices=[Notice("order_confirmed", "c@x.example")])
    assert _taken(levels) == ["NORMAL", "NORMAL"]  # the result (found again by a search) and the release
    assert [r["recipient"] for r in store.claim_notices(10)] == ["c@x.example"]
    assert _taken(levels) == ["FULL"]  # the notice is sent next
    store.release_notices([1])
    assert _taken(levels) == ["NORMAL"]
    store.transition(key, states.HELD, actor="w1", resume_step="wms_release")
    store.approve(key, "alice")
    assert _taken(levels) == ["NORMAL", "FULL"]  # a person's decision is kept once they are told
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again for what comes next
    with Store(store.path) as reopened:  # nothing is lost when the process ends
        assert reopened.get(key).state == states.IN_ERP
        assert reopened.db.execute("SELECT lease_owner FROM orders").fetchone()[0] is None


def test_orders_just_added_reach_their_first_claim_without_decoding_and_only_once(store):
    order = make_order()
    [added] = store.add_orders([(order, [])])
    with store.claim(states.VALIDATE, "w1") as first:
        assert first.order is order  # handed over, not decoded again
        first.order.po_number = "CHANGED IN MEMORY"
    with store.claim(states.VALIDATE, "w1") as second:
        assert second.key == added.key
        assert second.order is not order and second.order == make_order()  # from the stored JSON
