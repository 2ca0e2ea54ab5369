"""The validation step: every ``received`` order through the rules, to validated, held or rejected.

``validate_pending(ctx, *, limit=None, stock_lookup=None)`` loads the rule files
and master data once, then claims items with ``store.claim(states.VALIDATE, ...)``
(received orders, and validation retries that are due) until none is left,
``limit`` items were done, or ``ctx.stopping()``. Per order:

- any ``reject`` finding -> ``rejected``; the customer's rejection notice is
  written to the outbox in the same transaction;
- else any ``hold`` finding -> ``held`` (``resume_step`` "validate": approving it
  sends it on to ``validated``);
- else -> ``validated``; ``warn`` findings are recorded with it.

``stock_lookup(skus) -> {sku: available Decimal}`` is optional. When given, it
runs on one dedicated worker thread while the rules are evaluated; a sku asked
for more than is available holds the order with code ``stock``. An exception or
no answer within ``stock_timeout`` seconds is an application error: the item
goes to ``retry_wait`` (then ``failed``) like any step failure.

Items are claimed in batches of ``GROUP_SIZE`` (``store.claim_batch``) and
evaluated with the database unlocked (a stock lookup may take a while); the
batch's decisions then commit in one transaction (``store.transition_many``: a
few statements for the whole batch, not fsynced: a step's result, see the
``Store`` docstring). A crash loses at most the open batch's decisions, which are
simply made again once the leases expire: validation has no outside side effects,
and its notices are written in the same transaction as the decision. The cyclic garbage
collector is paused while a batch is handled (``orderbots.gcpause``).

Open exposure for the credit check is read once per call: the value of each
customer's orders that are past ``received`` and not done or rejected (held
ones included, duplicates not), kept current as this call decides orders.

Returns the count per outcome (``validated``, ``held``, ``rejected``, ``error``),
also added to ``ctx.run``.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import date
from decimal import Decimal
from typing import Callable

from . import notices, states
from .errors import ApplicationError
from .gcpause import paused_gc
from .masterdata import MasterData
from .model import Finding
from .rules import Exposure, RuleContext, RuleSet, load_rules
from .rules.builtin import line_value
from .rules.stock import requested_skus, stock_findings
from .store import Store, WorkItem

StockLookup = Callable[[list[str]], dict[str, Decimal]]
STOCK_TIMEOUT = 120.0
GROUP_SIZE = 200
ERROR = "error"
NOT_OPEN = (states.RECEIVED, states.DONE, states.REJECTED)


def validate_pending(ctx, *, limit: int | None = None, stock_lookup: StockLookup | None = None,
                     stock_timeout: float = STOCK_TIMEOUT, today: date | None = None) -> Counter:
    """Validate received orders; see module docstring. ``today`` defaults to the local date."""
    rules = load_rules(ctx.settings.rules_dir)
    masterdata = MasterData.load(ctx.settings.rules_dir / "data")
    batch = RuleContext(masterdata, today or date.today(), open_exposure(ctx.store, masterdata))
    counts: Counter = Counter()
    pool = ThreadPoolExecutor(1, thread_name_prefix="stock-lookup") if stock_lookup else None
    stock = _Stock(pool, stock_lookup, stock_timeout) if pool else None
    try:
        while _validate_group(ctx, rules, batch, stock, counts, GROUP_SIZE, limit):
            pass
    finally:
        if pool:
            pool.shutdown(wait=False, cancel_futures=True)
    return counts


def open_exposure(store: Store, masterdata: MasterData) -> Exposure:
    """Value of the open orders (see module docstring) of customers with orders to validate, in one query."""
    totals: dict[str, tuple[str, Decimal]] = {}
    marks = ",".join("?" * len(NOT_OPEN))
    rows = store.db.execute(
        f"""SELECT o.key, o.customer_id, json_extract(l.value, '$.sku'), json_extract(l.value, '$.qty'),
                   json_extract(l.value, '$.unit_price')
            FROM orders o, json_each(o.order_json, '$.lines') l
            WHERE o.state NOT IN ({marks}) AND o.duplicate_of IS NULL
              AND o.customer_id IN (SELECT customer_id FROM orders WHERE state IN (?, ?))""",
        (*NOT_OPEN, states.RECEIVED, states.RETRY_WAIT))
    for key, customer, sku, qty, price in rows:
        value = line_value(customer, sku, Decimal(str(qty)), None if price is None else Decimal(str(price)),
                           masterdata)
        before = totals.get(key, (customer, Decimal(0)))[1]
        totals[key] = (customer, before + value)
    return Exposure(totals)


class _Stock:
    """Runs ``lookup`` on the worker thread and turns its failures into ``ApplicationError``."""

    def __init__(self, pool: ThreadPoolExecutor, lookup: StockLookup, timeout: float):
        self.pool, self.lookup, self.timeout = pool, lookup, timeout

    def start(self, skus: list[str]) -> Future | None:
        return self.pool.submit(self.lookup, skus) if skus else None

    def result(self, future: Future | None) -> dict[str, Decimal]:
        if future is None:
            return {}
        try:
            return future.result(timeout=self.timeout)
        except FutureTimeout as exc:
            raise ApplicationError(f"stock lookup gave no answer within {self.timeout:g} s") from exc
        except Exception as exc:
            raise ApplicationError(f"stock lookup failed: {type(exc).__name__}: {exc}") from exc


def _validate_group(ctx, rules: RuleSet, batch: RuleContext, stock: _Stock | None, counts: Counter,
                    size: int, limit: int | None) -> bool:
    """Claim up to ``size`` items, evaluate them with the store unlocked, then record every decision in
    one transaction (one commit). False once there is no more work to do."""
    if limit is not None:
        size = min(size, limit - counts.total())
    if size <= 0 or ctx.stopping():
        return False
    decided: Counter = Counter()
    with paused_gc(), ctx.store.claim_batch(states.VALIDATE, ctx.owner, limit=size) as items:
        if not items:
            return False
        decisions = []
        for item in items:
            if ctx.stopping():
                break
            try:
                item_ctx = batch.for_item(item.key, item.duplicate_of)
                decisions.append(_decide(item, _evaluate(item, rules, item_ctx, stock), item_ctx))
            except Exception as exc:  # noqa: BLE001 - a failing rule or lookup retries this order only
                ctx.store.fail_attempt(item.key, states.VALIDATE, exc, ctx.owner)
                decided[ERROR] += 1
        ctx.store.transition_many(decisions, actor=ctx.owner)
        decided.update(to for _, to, _ in decisions)
    counts.update(decided)
    for outcome, n in decided.items():
        ctx.run.count(outcome, n)
    return True


def _evaluate(item: WorkItem, rules: RuleSet, item_ctx: RuleContext, stock: _Stock | None) -> list[Finding]:
    """The findings of the rules, and of the stock check while it runs alongside them."""
    pending = stock.start(requested_skus(item.order)) if stock else None
    findings = rules.evaluate(item.order, item_ctx)
    if stock:
        findings += stock_findings(item.order, stock.result(pending))
    return findings


def _decide(item: WorkItem, findings: list[Finding], item_ctx: RuleContext) -> tuple[str, str, dict]:
    """The outcome of ``findings`` on ``item`` as (key, new state, transition fields); the credit
    exposure of later orders in this call counts it at once."""
    severities = {f.severity for f in findings}
    order, key = item.order, item.key
    if "reject" in severities:
        to = states.REJECTED
        item_ctx.exposure.remove(key)
        extra = {"resume_step": states.VALIDATE.name,
                 "notices": notices.rejected(order, key, findings)}
    else:
        to = states.HELD if "hold" in severities else states.VALIDATED
        item_ctx.exposure.add(key, order.customer.id, item_ctx.order_value(order))
        extra = {"resume_step": states.VALIDATE.name} if to == states.HELD else {"attempts": 0}
    decisive = [f.code for f in findings if f.severity == ("reject" if to == states.REJECTED else "hold")]
    reason = ", ".join(decisive) or ("passed with warnings" if findings else "all rules passed")
    return key, to, {"reason": reason, "findings": findings, "data": {"codes": [f.code for f in findings]},
                     **extra}
