"""Builders for the customer notices a state change causes (written to the outbox).

Each returns a ``Notice`` whose ``kind`` names a template in ``templates/`` and
whose payload holds what the template needs; the notifier renders and sends it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .model import Finding, Order


@dataclass
class Notice:
    """A message to send later through the outbox; ``kind`` names its template.

    ``dedupe_key`` (default ``"<order key>:<kind>"``) makes each notice unique:
    enqueueing it twice sends it once.
    """

    kind: str
    recipient: str
    locale: str = "en"
    payload: dict[str, Any] = field(default_factory=dict)
    order_key: str | None = None
    dedupe_key: str | None = None


def _notice(kind: str, order: Order, key: str, **payload) -> Notice:
    return Notice(kind, recipient=order.customer.email, locale=order.customer.locale, order_key=key,
                  payload={"po_number": order.po_number, "customer_name": order.customer.name,
                           "reply_to": order.reply_to, **payload})


def received(order: Order, key: str) -> list[Notice]:
    """'We have your order' for a customer with a known email address."""
    return [_notice("order_received", order, key)] if order.customer.email else []


def rejected(order: Order, key: str, findings: list[Finding]) -> list[Notice]:
    """'We cannot accept your order', with every reject reason in the customer's language."""
    if not order.customer.email:
        return []
    locale = order.customer.locale
    reasons = [f.text(locale) for f in findings if f.severity == "reject"]
    return [_notice("order_rejected", order, key, reasons=reasons)]


def confirmed(order: Order, key: str, erp_number: str, ship_date: str | None = None) -> list[Notice]:
    """'Your order is confirmed': the ERP number, the lines and the expected ship date (ISO or None)."""
    if not order.customer.email:
        return []
    lines = [{"line_no": l.line_no, "sku": l.sku, "description": l.description, "qty": l.qty,
              "unit": l.unit, "unit_price": l.unit_price} for l in order.lines]
    return [_notice("order_confirmed", order, key, erp_number=erp_number, lines=lines,
                    currency=order.currency, expected_ship_date=ship_date)]
