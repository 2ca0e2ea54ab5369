"""Master data from ``rules/data/``: customers, items and customer price lists (CSV, UTF-8).

``MasterData.load(dir)`` reads ``customers.csv`` (id, name, email, locale,
currency, credit_limit, country), ``items.csv`` (sku, description, unit,
unit_price, currency, max_qty, active) and ``prices.csv`` (customer_id, sku,
currency, unit_price). A missing column or a bad number is a ``ConfigError``
naming file, line and column.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from .errors import ConfigError
from .model import Customer


@dataclass(frozen=True)
class CustomerRecord:
    id: str
    name: str
    email: str
    locale: str
    currency: str
    credit_limit: Decimal
    country: str

    def as_customer(self) -> Customer:
        return Customer(self.id, self.name, self.email, self.locale)


@dataclass(frozen=True)
class ItemRecord:
    sku: str
    description: str
    unit: str
    unit_price: Decimal
    currency: str
    max_qty: Decimal
    active: bool


@dataclass
class MasterData:
    customers: dict[str, CustomerRecord] = field(default_factory=dict)
    items: dict[str, ItemRecord] = field(default_factory=dict)
    prices: dict[tuple[str, str], tuple[str, Decimal]] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path) -> "MasterData":
        directory = Path(directory)
        data = cls()
        for row in _rows(directory / "customers.csv", ("id", "name", "email", "locale", "currency",
                                                        "credit_limit", "country")):
            data.customers[row["id"]] = CustomerRecord(
                row["id"], row["name"], row["email"].lower(), row["locale"], row["currency"],
                row.decimal("credit_limit"), row["country"])
        for row in _rows(directory / "items.csv", ("sku", "description", "unit", "unit_price", "currency",
                                                    "max_qty", "active")):
            data.items[row["sku"]] = ItemRecord(
                row["sku"], row["description"], row["unit"], row.decimal("unit_price"), row["currency"],
                row.decimal("max_qty"), row["active"].lower() in ("yes", "true", "1"))
        prices = directory / "prices.csv"
        if prices.exists():
            for row in _rows(prices, ("customer_id", "sku", "currency", "unit_price")):
                data.prices[(row["customer_id"], row["sku"])] = (row["currency"], row.decimal("unit_price"))
        return data

    def find_customer(self, text: str) -> CustomerRecord | None:
        """The customer whose id, email or name (case-insensitive) is ``text``."""
        text = (text or "").strip()
        if text in self.customers:
            return self.customers[text]
        folded = text.casefold()
        for c in self.customers.values():
            if folded and folded in (c.email.casefold(), c.name.casefold(), c.id.casefold()):
                return c
        return None

    def price(self, customer_id: str, sku: str) -> tuple[str, Decimal] | None:
        """(currency, unit price) for this customer: their price list first, else the list price."""
        if (customer_id, sku) in self.prices:
            return self.prices[(customer_id, sku)]
        item = self.items.get(sku)
        return (item.currency, item.unit_price) if item else None


class _Row(dict):
    file: Path
    line: int

    def decimal(self, column: str) -> Decimal:
        try:
            return Decimal(self[column])
        except InvalidOperation as exc:
            raise ConfigError(f"{self.file}:{self.line}: column {column!r}: {self[column]!r} is not a number") from exc


def _rows(path: Path, required: tuple[str, ...]):
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read master data: {exc}") from exc
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise ConfigError(f"{path}:1: missing column(s) {', '.join(missing)}")
        for row in reader:
            r = _Row({k: (v or "").strip() for k, v in row.items() if k})
            r.file, r.line = path, reader.line_num
            yield r
