"""validate_pending through a real on-disk store: rejected (with outbox notice), held, validated, stock holds."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import replace
from decimal import Decimal

import pytest

from orderbots import bot, states
from orderbots.errors import ConfigError
from orderbots.model import Address, Customer, OrderLine
from orderbots.pipeline import validate_pending
from orderbots.rules import rule
from orderbots.runlog import list_runs
from tests.plugins.rules import TODAY, acme_order, shanghai_order


def add(store, order):
    result = store.add_order(order)
    assert result.created
    return result.key


def validate(ctx, **kw):
    return validate_pending(ctx, today=TODAY, **kw)


def outbox(store):
    return [dict(r) for r in store.db.execute("SELECT * FROM outbox ORDER BY id")]


def test_each_order_ends_validated_held_or_rejected(bot_ctx, store):
    clean = add(store, acme_order("PO-1"))
    warned = add(store, acme_order("PO-2", requested_date=TODAY))  # within lead time: warn only
    bad_item = acme_order("PO-3")
    bad_item.lines[1] = replace(bad_item.lines[1], sku="SKU-7777")
    rejected = add(store, bad_item)
    held = add(store, acme_order("PO-4", ship_to=Address("Acme Retail Ltd", "", "Manchester", "M1 1AE", "GB")))

    counts = validate(bot_ctx)

    assert counts == {"validated": 2, "rejected": 1, "held": 1}
    assert bot_ctx.run.counts == counts
    assert store.get(clean).state == states.VALIDATED and store.get(clean).findings == []
    item = store.get(warned)
    assert item.state == states.VALIDATED and [f.code for f in item.findings] == ["delivery_too_soon"]
    item = store.get(rejected)
    assert item.state == states.REJECTED and [f.code for f in item.findings] == ["unknown_item"]
    assert store.events(rejected)[-1]["reason"] == "unknown_item"
    item = store.get(held)
    assert (item.state, item.resume_step) == (states.HELD, "validate")
    assert [f.code for f in item.findings] == ["address_incomplete"]
    # Only the rejected order told the customer, in their language, with the reason.
    [notice] = outbox(store)
    assert (notice["order_key"], notice["kind"], notice["recipient"], notice["locale"]) == \
        (rejected, "order_rejected", "orders@acme-retail.example", "en")
    assert json.loads(notice["payload_json"])["reasons"] == ["Line 2: item SKU-7777 is not in our catalogue."]
    assert validate(bot_ctx) == {}  # nothing left


def test_rejection_notice_is_in_the_customers_language(bot_ctx, store):
    order = shanghai_order()
    order.lines[0] = replace(order.lines[0], qty=Decimal("0"))
    key = add(store, order)
    validate(bot_ctx)
    [notice] = outbox(store)
    assert notice["locale"] == "zh-CN"
    assert json.loads(notice["payload_json"])["reasons"] == ["第 1 行：物料 SKU-3001 的数量 0 必须大于零。"]
    assert store.get(key).state == states.REJECTED


def test_duplicate_po_from_a_second_source_is_held(bot_ctx, store):
    first = add(store, acme_order("PO-77"))
    resent = acme_order("PO-77", source_ref="<resent-PO-77@acme-retail.example>")
    second = add(store, resent)
    assert second == "C1001/PO-77#2"
    validate(bot_ctx)
    assert store.get(first).state == states.VALIDATED
    item = store.get(second)
    assert item.state == states.HELD
    assert [f.code for f in item.findings] == ["duplicate_po"]
    assert "already received as order C1001/PO-77" in item.findings[0].text()


def small_shop(po, qty):
    """An order from Small Shop & Co (credit limit 500 EUR) worth qty x 39 EUR."""
    return acme_order(po, customer=Customer("C1005", "Small Shop & Co", "owner@smallshop.example"),
                      ship_to=Address("Small Shop & Co", "3 rue de la Paix", "Paris", "75002", "FR"),
                      lines=[OrderLine(1, "SKU-1003", Decimal(qty), "Trekking pole pair", "PR", Decimal("39.00"))])


def test_credit_limit_counts_orders_validated_earlier_and_in_this_batch(bot_ctx, store):
    first = add(store, small_shop("S-1", 6))  # 234 EUR
    validate(bot_ctx)
    assert store.get(first).state == states.VALIDATED
    second, third = add(store, small_shop("S-2", 6)), add(store, small_shop("S-3", 1))  # 234 and 39 EUR
    validate(bot_ctx)
    assert store.get(second).state == states.VALIDATED  # 234 + 234 = 468 <= 500
    item = store.get(third)
    assert item.state == states.HELD and [f.code for f in item.findings] == ["credit_limit"]
    assert "39.00 EUR plus open orders 468.00 EUR exceeds the credit limit of 500 EUR" in item.findings[0].text()


def test_rejected_and_done_orders_do_not_count_as_exposure(bot_ctx, store):
    old = add(store, small_shop("S-1", 10))  # 390 EUR
    validate(bot_ctx)
    store.reject(old, "ops", "customer cancelled")
    new = add(store, small_shop("S-2", 10))
    validate(bot_ctx)
    assert store.get(new).state == states.VALIDATED


def test_an_edited_held_order_is_validated_again(bot_ctx, store):
    key = add(store, acme_order("PO-9", ship_to=Address("Acme Retail Ltd", "12 Market Street", "Manchester", "M1", "GB")))
    validate(bot_ctx)
    item = store.get(key)
    assert item.state == states.HELD and [f.code for f in item.findings] == ["invalid_postcode"]
    fixed = replace(item.order, ship_to=replace(item.order.ship_to, postcode="M1 1AE"))
    store.edit(key, fixed, "ops", "postcode corrected")
    validate(bot_ctx)
    assert store.get(key).state == states.VALIDATED


def test_stock_shortage_holds_the_order_naming_sku_and_quantities(bot_ctx, store):
    short = add(store, acme_order("PO-S1"))
    fine = add(store, acme_order("PO-S2", lines=[OrderLine(1, "SKU-2001", Decimal("50"), unit_price=Decimal("4.20"))]))
    asked = []

    def stock_lookup(skus):
        asked.append((list(skus), threading.current_thread() is threading.main_thread()))
        # The store is not locked while the warehouse answers: another writer gets in at once.
        other = sqlite3.connect(store.path, timeout=0.5)
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        other.close()
        return {"SKU-1001": Decimal("60"), "SKU-1002": 500, "SKU-2001": Decimal("1000")}

    counts = validate(bot_ctx, stock_lookup=stock_lookup)
    assert counts == {"held": 1, "validated": 1}
    assert asked == [(["SKU-1001", "SKU-1002", "SKU-2001"], False), (["SKU-2001"], False)]
    item = store.get(short)
    assert item.state == states.HELD
    [finding] = item.findings
    assert (finding.code, finding.severity, finding.field) == ("stock", "hold", "lines[1].qty")
    assert finding.messages == {"en": "Not enough stock of SKU-1001: 100 requested, 60 available.",
                                "zh-CN": "物料 SKU-1001 库存不足：需求 100，可用 60。"}
    assert store.get(fine).state == states.VALIDATED


def test_stock_is_summed_per_sku_and_unreported_skus_count_as_none(bot_ctx, store):
    order = acme_order("PO-S3", lines=[OrderLine(1, "SKU-1001", Decimal("30"), unit_price=Decimal("8.50")),
                                       OrderLine(2, "SKU-1001", Decimal("30"), unit_price=Decimal("8.50")),
                                       OrderLine(3, "SKU-1004", Decimal("1"), unit_price=Decimal("22.40"))])
    key = add(store, order)
    validate(bot_ctx, stock_lookup=lambda skus: {"SKU-1001": Decimal("50")})
    texts = [f.text() for f in store.get(key).findings]
    assert texts == ["Not enough stock of SKU-1001: 60 requested, 50 available.",
                     "Not enough stock of SKU-1004: 1 requested, 0 available."]


@rule("test_meets_stock_lookup")
def meets_stock_lookup():
    """Evaluated while the stock lookup waits: each side waits for the other to have started."""
    def check(order, ctx):
        RENDEZVOUS["rules_running"].set()
        assert RENDEZVOUS["lookup_running"].wait(10), "stock lookup did not run while rules were evaluated"
        return ()
    return check


RENDEZVOUS: dict[str, threading.Event] = {}


def test_stock_lookup_runs_while_rules_are_evaluated(bot_ctx, store, home):
    RENDEZVOUS.update(rules_running=threading.Event(), lookup_running=threading.Event())
    (home / "rules" / "zz_rendezvous.yaml").write_text(
        "rules:\n  - code: rendezvous\n    kind: test_meets_stock_lookup\n    severity: warn\n"
        "    message: {en: x, zh-CN: x}\n", encoding="utf-8")

    def stock_lookup(skus):
        RENDEZVOUS["lookup_running"].set()
        assert RENDEZVOUS["rules_running"].wait(10), "rules were not evaluated while the lookup ran"
        return {sku: Decimal(10_000) for sku in skus}

    key = add(store, acme_order())
    assert validate(bot_ctx, stock_lookup=stock_lookup) == {"validated": 1}
    assert store.get(key).findings == []


def test_failing_stock_lookup_is_an_application_error_retried_later(bot_ctx, store):
    key = add(store, acme_order())

    def broken(skus):
        raise ConnectionError("WMS stock screen timed out")

    assert validate(bot_ctx, stock_lookup=broken) == {"error": 1}
    item = store.get(key)
    assert (item.state, item.resume_step, item.attempts) == (states.RETRY_WAIT, "validate", 1)
    assert "stock lookup failed: ConnectionError: WMS stock screen timed out" in item.last_error
    assert validate(bot_ctx, stock_lookup=broken) == {}  # backoff: not due yet
    store.retry(key, "ops")
    assert validate(bot_ctx, stock_lookup=lambda skus: {s: Decimal(999) for s in skus}) == {"validated": 1}
    assert store.get(key).attempts == 0


def test_stock_lookup_without_answer_times_out(bot_ctx, store):
    key = add(store, acme_order())
    release = threading.Event()
    try:
        counts = validate(bot_ctx, stock_lookup=lambda skus: release.wait(30) and {}, stock_timeout=0.2)
    finally:
        release.set()
    assert counts == {"error": 1}
    assert "stock lookup gave no answer within 0.2 s" in store.get(key).last_error


def test_limit_and_stop_request_end_the_batch(bot_ctx, store):
    keys = [add(store, acme_order(f"PO-L{i}")) for i in range(3)]
    assert validate(bot_ctx, limit=2) == {"validated": 2}
    assert store.get(keys[2]).state == states.RECEIVED
    bot_ctx.stop.set()
    assert validate(bot_ctx) == {}
    assert store.get(keys[2]).state == states.RECEIVED


def test_malformed_rule_file_stops_the_step_before_touching_orders(bot_ctx, store, home):
    key = add(store, acme_order())
    (home / "rules" / "extra.yaml").write_text("rules:\n  - code: x\n    kind: nope\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"extra.yaml:2: rule is missing 'severity'"):
        validate(bot_ctx)
    assert store.get(key).state == states.RECEIVED


def test_validate_bot_records_its_counts(settings, store):
    add(store, acme_order("PO-B1", requested_date=None))
    add(store, acme_order("PO-B2", po_number="", requested_date=None, source_ref="<b2@acme>"))
    run = bot.run_bot("validate", settings)
    assert run.counts == {"validated": 1, "rejected": 1}
    last = list_runs(store)[0]
    assert (last["bot"], last["status"], last["counts"]) == ("validate", "ok", {"validated": 1, "rejected": 1})


@rule("test_explodes_on_po")
def explodes_on_po(*, po, error="RuntimeError"):
    """Raises ``error`` for the order with PO ``po``: a buggy custom rule, or the process being interrupted."""
    exc = {"RuntimeError": RuntimeError, "KeyboardInterrupt": KeyboardInterrupt}[error]

    def check(order, ctx):
        if order.po_number == po:
            raise exc(f"custom rule blew up on {po}")
        return ()
    return check


def explode_on(home, po, error):
    (home / "rules" / "zz_explode.yaml").write_text(
        f"rules:\n  - code: explode\n    kind: test_explodes_on_po\n    severity: hold\n"
        f"    params: {{po: {po}, error: {error}}}\n    message: {{en: x, zh-CN: x}}\n", encoding="utf-8")


def test_a_failing_rule_retries_that_order_and_the_others_go_on(bot_ctx, store, home):
    keys = [add(store, acme_order(f"PO-E{i}")) for i in range(3)]
    explode_on(home, "PO-E1", "RuntimeError")
    assert validate(bot_ctx) == {"validated": 2, "error": 1}
    item = store.get(keys[1])
    assert item.state == states.RETRY_WAIT and "custom rule blew up on PO-E1" in item.last_error


def test_an_interrupted_group_leaves_no_half_made_decisions(bot_ctx, store, home):
    first = add(store, acme_order("PO-I0", po_number="", source_ref="<i0@acme>"))  # would be rejected
    second = add(store, acme_order("PO-I1"))
    third = add(store, acme_order("PO-I2"))
    explode_on(home, "PO-I2", "KeyboardInterrupt")
    with pytest.raises(KeyboardInterrupt):
        validate(bot_ctx)
    # The group's decisions were rolled back together: nothing decided, no notice, no lease left behind.
    assert [store.get(k).state for k in (first, second, third)] == [states.RECEIVED] * 3
    assert [store.get(k).lease_owner for k in (first, second, third)] == [None] * 3
    assert outbox(store) == []
    (home / "rules" / "zz_explode.yaml").unlink()
    assert validate(bot_ctx) == {"rejected": 1, "validated": 2}
    assert len(outbox(store)) == 1
