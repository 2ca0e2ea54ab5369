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

import dataclasses
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
        return _encode(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Order":
        d = dict(data)
        d["customer"] = Customer(**d["customer"])
        d["ship_to"] = Address(**d.get("ship_to") or {})
        d["lines"] = [
            OrderLine(**{**l, "qty": Decimal(l["qty"]),
                         "unit_price": None if l.get("unit_price") is None else Decimal(l["unit_price"])})
            for l in d["lines"]
        ]
        d["received_at"] = datetime.fromisoformat(d["received_at"])
        d["requested_date"] = date.fromisoformat(d["requested_date"]) if d.get("requested_date") else None
        d["problems"] = [Finding(**p) for p in d.get("problems") or []]
        return cls(**d)


def _encode(value: Any) -> Any:
    """JSON-safe plain data of ``value``; like ``dataclasses.asdict`` but without its deep copies."""
    if value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if dataclasses.is_dataclass(value):
        names = _FIELD_NAMES.get(type(value))
        if names is None:
            names = _FIELD_NAMES[type(value)] = tuple(f.name for f in dataclasses.fields(value))
        return {name: _encode(getattr(value, name)) for name in names}
    return value


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
