"""The canonical order: one model for every channel (email, folder, portal, api).

An ``Order`` is what intake produces and what every later step reads. It is
plain data: ``to_dict``/``from_dict`` give a JSON-safe form for the store, with
``Decimal`` amounts kept as strings so no precision is lost.

Keys:
- ``order.key`` is the idempotency key, ``"<customer id>/<customer PO>"``; the
  store keeps it unique.
- ``order.source_ref`` names where the order came from (Message-ID and
  attachment, file sha256 with sheet and row span, portal order id); the same
  source is imported once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

CHANNELS = ("email", "folder", "portal", "api")
SEVERITIES = ("reject", "hold", "warn")
LOCALES = ("en", "zh-CN")


@dataclass
class Customer:
    """Who ordered. ``id`` is the master-data id when known, else what the source said."""

    id: str
    name: str = ""
    email: str = ""
    locale: str = "en"


@dataclass
class Address:
    """A ship-to address; ``country`` is an ISO 3166 alpha-2 code."""

    name: str = ""
    street: str = ""
    city: str = ""
    postcode: str = ""
    country: str = ""


@dataclass
class OrderLine:
    """One order line; ``unit_price`` is ``None`` when the customer gave none."""

    line_no: int
    sku: str
    qty: Decimal
    description: str = ""
    unit: str = "EA"
    unit_price: Decimal | None = None


@dataclass
class Finding:
    """A rule result or intake problem attached to an order.

    ``severity`` is ``reject`` (customer is told), ``hold`` (person reviews) or
    ``warn`` (recorded only). ``messages`` maps locale to text; ``text(locale)``
    falls back to English.
    """

    code: str
    severity: str
    messages: dict[str, str]
    field: str | None = None

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")

    def text(self, locale: str = "en") -> str:
        return self.messages.get(locale) or self.messages.get("en") or self.code


@dataclass
class Order:
    """A customer order as received, before any system has accepted it."""

    channel: str
    source_ref: str
    customer: Customer
    po_number: str
    lines: list[OrderLine]
    received_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    currency: str = ""
    requested_date: date | None = None
    ship_to: Address = field(default_factory=Address)
    notes: str = ""
    raw_path: str = ""
    problems: list[Finding] = field(default_factory=list)
    reply_to: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if self.channel not in CHANNELS:
            raise ValueError(f"channel must be one of {CHANNELS}, not {self.channel!r}")

    @property
    def key(self) -> str:
        return f"{self.customer.id}/{self.po_number}"

    @property
    def total(self) -> Decimal:
        """Sum of qty x unit price over lines that carry a price."""
        return sum((l.qty * l.unit_price for l in self.lines if l.unit_price is not None), Decimal(0))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe plain data (``Decimal`` as text, dates ISO); built field by field, as it runs per order."""
        return {
            "channel": self.channel, "source_ref": self.source_ref, "customer": vars(self.customer).copy(),
            "po_number": self.po_number,
            "lines": [{"line_no": l.line_no, "sku": l.sku,
                       "qty": str(l.qty) if l.qty.__class__ is Decimal else _number(l.qty),
                       "description": l.description, "unit": l.unit,
                       "unit_price": None if l.unit_price is None else _number(l.unit_price)} for l in self.lines],
            "received_at": self.received_at.isoformat(), "currency": self.currency,
            "requested_date": None if self.requested_date is None else self.requested_date.isoformat(),
            "ship_to": vars(self.ship_to).copy(), "notes": self.notes, "raw_path": self.raw_path,
            "problems": [{"code": f.code, "severity": f.severity, "messages": dict(f.messages), "field": f.field}
                         for f in self.problems],
            "reply_to": dict(self.reply_to),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Order":
        d = dict(data)
        d["customer"] = Customer(**d["customer"])
        d["ship_to"] = Address(**d.get("ship_to") or {})
        d["lines"] = [
            OrderLine(l["line_no"], l["sku"], _decimal(l["qty"]), l.get("description", ""), l.get("unit", "EA"),
                      None if (price := l.get("unit_price")) is None else _decimal(price))
            for l in d["lines"]
        ]
        d["received_at"] = datetime.fromisoformat(d["received_at"])
        d["requested_date"] = date.fromisoformat(d["requested_date"]) if d.get("requested_date") else None
        d["problems"] = [Finding(**p) for p in d.get("problems") or []]
        return cls(**d)


_DECIMALS: dict[str | int, Decimal] = {}


def _decimal(text: str | int) -> Decimal:
    """``Decimal(text)``, shared for the few thousand texts seen first (quantities and prices repeat
    across the lines of stored orders; a ``Decimal`` is immutable)."""
    try:
        return _DECIMALS[text]
    except KeyError:
        number = Decimal(text)
        if len(_DECIMALS) < 4096:
            _DECIMALS[text] = number
        return number


def _number(value: Decimal | int | None) -> str | int | None:
    """A ``Decimal`` as exact text; ``None`` (and plain ints) as they are."""
    return str(value) if isinstance(value, Decimal) else value
