"""Evaluating compiled rules against orders.

``RuleSet.evaluate(order, ctx)`` returns every ``Finding`` for one order: the
intake problems already on ``order.problems`` first, then one finding per hit
of each rule, in rule-file order. Rules are compiled once (``loader.load_rules``);
evaluation does no I/O: what a check needs beyond the order comes from the
``RuleContext`` (master data, today's date, the customer's open exposure, and
whether the store recorded the order as a duplicate PO).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from ..masterdata import MasterData
from ..model import Finding, Order
from .builtin import order_value
from .registry import Check, Hit


class Exposure:
    """Open order value per customer, computed once per batch and kept current as orders are decided.

    ``of(customer, key)`` is the sum over the customer's open orders other than ``key``.
    """

    def __init__(self, totals: dict[str, tuple[str, Decimal]] | None = None):
        self._orders: dict[str, tuple[str, Decimal]] = {}
        self._per_customer: dict[str, Decimal] = {}
        for key, (customer, total) in (totals or {}).items():
            self.add(key, customer, total)

    def of(self, customer_id: str, key: str = "") -> Decimal:
        own = self._orders.get(key)
        total = self._per_customer.get(customer_id, Decimal(0))
        return total - own[1] if own and own[0] == customer_id else total

    def add(self, key: str, customer_id: str, total: Decimal) -> None:
        """Count order ``key`` as open (replacing what was counted for it before)."""
        self.remove(key)
        self._orders[key] = (customer_id, total)
        self._per_customer[customer_id] = self._per_customer.get(customer_id, Decimal(0)) + total

    def remove(self, key: str) -> None:
        """Stop counting order ``key`` (rejected or done)."""
        old = self._orders.pop(key, None)
        if old:
            self._per_customer[old[0]] -= old[1]


@dataclass(slots=True)
class RuleContext:
    """What checks may know besides the order. ``key``/``duplicate_of`` describe the order at hand."""

    masterdata: MasterData
    today: date = field(default_factory=date.today)
    exposure: Exposure = field(default_factory=Exposure)
    key: str = ""
    duplicate_of: str | None = None
    _value: tuple[Order, Decimal] | None = None

    def for_item(self, key: str, duplicate_of: str | None) -> "RuleContext":
        """The same batch context for one stored order."""
        return RuleContext(self.masterdata, self.today, self.exposure, key, duplicate_of)

    def order_value(self, order: Order) -> Decimal:
        """``builtin.order_value(order)``, computed once per item context (the credit rule and the
        exposure bookkeeping both need it)."""
        if self._value is None or self._value[0] is not order:
            self._value = (order, order_value(order, self.masterdata))
        return self._value[1]


class _Placeholders(dict):
    """Message values; an unknown placeholder stays visible instead of failing."""

    def __missing__(self, name: str) -> str:
        return "{" + name + "}"


@dataclass(slots=True)
class Rule:
    """One compiled rule: a check plus the code, severity and messages of its findings."""

    code: str
    severity: str
    messages: dict[str, str]
    check: Check
    kind: str = ""
    where: str = ""

    def finding(self, order: Order, hit: Hit) -> Finding:
        values = _Placeholders(po_number=order.po_number, customer=order.customer.id)
        values.update(hit.values)
        return Finding(self.code, self.severity,
                       {locale: text.format_map(values) for locale, text in self.messages.items()}, hit.field)


@dataclass
class RuleSet:
    """The compiled rules of all rule files, in order."""

    rules: list[Rule]

    def evaluate(self, order: Order, ctx: RuleContext) -> list[Finding]:
        findings = list(order.problems)
        for r in self.rules:
            hits = r.check(order, ctx)
            if hits:
                findings += [r.finding(order, hit) for hit in hits]
        return findings
