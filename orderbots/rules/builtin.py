"""The built-in rule kinds. Each factory validates its params once and returns a fast check.

Kinds and what they find (placeholders in brackets, besides po_number and customer):

- ``required`` (fields): a listed field is blank; ``lines.x`` fields per line [field, line_no, sku]
- ``email`` (field): a present address that is not an email address [field, value]
- ``postcode`` (countries): ship-to postcode not in its country's format [postcode, country]
- ``date`` (field, max_days_ahead): a date that is not a date or is implausibly far ahead [field, value, max_days_ahead]
- ``positive_qty``: qty is zero or negative [line_no, sku, qty]
- ``max_qty``: qty above the item's max_qty in master data [line_no, sku, qty, max_qty, unit]
- ``known_customer``: customer id not in master data [customer_name]
- ``known_item`` / ``active_item``: sku not in master data / marked inactive [line_no, sku, description]
- ``currency``: the price list for the sku is in another currency than the order [line_no, sku, currency, expected_currency]
- ``price_tolerance`` (tolerance_percent): unit price too far from the price list [line_no, sku, price, expected, currency, deviation, tolerance]
- ``duplicate_po``: the store recorded the order as a second copy of a PO [original]
- ``credit_limit``: order value plus open exposure above the credit limit [total, exposure, limit, currency]
- ``delivery_in_past`` / ``delivery_too_soon`` (lead_days): requested date before today / within the lead time [date, today, earliest, lead_days]
- ``address_complete`` (fields): ship-to fields missing [missing]

Checks return a list (empty when the order is fine): they run for every order,
so they avoid generators and repeated lookups. The price list is the customer's price first, then the item's list price
(``MasterData.price``). An order without a currency is taken to be in the
customer's master-data currency.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from operator import attrgetter

from ..masterdata import MasterData
from . import fields as F
from .postcodes import compile_patterns
from .registry import Hit, rule

ZERO = Decimal(0)
EMAIL = re.compile(r"[^\s@<>(),;:\"\[\]]+@(?:[^\s@<>(),;:\"\[\].]+\.)+[^\s@<>(),;:\"\[\].]{2,}")
ADDRESS_FIELDS = ("name", "street", "city", "postcode", "country")


def _string_list(value, what: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} must be a non-empty list of names")
    return value


def _non_negative_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a whole number >= 0, not {value!r}")
    return value


def order_currency(order, masterdata: MasterData) -> str:
    """The order's currency, else the customer's master-data currency, else ''."""
    if order.currency:
        return order.currency
    record = masterdata.customers.get(order.customer.id)
    return record.currency if record else ""


def line_value(customer_id: str, sku: str, qty: Decimal, unit_price: Decimal | None,
               masterdata: MasterData) -> Decimal:
    """What a line is worth for credit purposes: its own price, else the price list, else 0."""
    if unit_price is None:
        listed = masterdata.price(customer_id, sku)
        unit_price = listed[1] if listed else ZERO
    return qty * unit_price


def order_value(order, masterdata: MasterData) -> Decimal:
    """Sum of ``line_value`` over the order's lines."""
    cid = order.customer.id
    total = ZERO
    for line in order.lines:
        total += line_value(cid, line.sku, line.qty, line.unit_price, masterdata)
    return total


@rule("required", placeholders=("field", "line_no", "sku"))
def required(*, fields):
    paths = _string_list(fields, "fields")
    order_getters = [(p, F.getter(p)) for p in paths if not F.is_line_path(p)]
    line_getters = [(p[6:], F.getter(p)) for p in paths if F.is_line_path(p)]
    blank = F.is_blank

    def check(order, ctx):
        hits = [Hit(path, {"field": path, "line_no": "", "sku": ""})
                for path, get in order_getters if blank(get(order))]
        lines = order.lines
        if line_getters and not all(_all_filled(list(map(get, lines))) for _, get in line_getters):
            hits += [Hit(f"lines[{line.line_no}].{name}", {"field": name, "line_no": line.line_no, "sku": line.sku})
                     for line in lines for name, get in line_getters if blank(get(line))]
        return hits
    return check


def _all_filled(values: list) -> bool:
    """No value is blank (``fields.is_blank``); texts are tested at C speed, as this runs per line."""
    try:
        return all(map(str.strip, values))
    except TypeError:  # not all texts
        return not any(map(F.is_blank, values))


@rule("email", placeholders=("field", "value"))
def email(*, field="customer.email"):
    get = F.getter(field)
    fullmatch = EMAIL.fullmatch

    def check(order, ctx):
        value = get(order)
        if value and not fullmatch(str(value).strip()):
            return [Hit(field, {"field": field, "value": value})]
        return []
    return check


@rule("postcode", placeholders=("postcode", "country"))
def postcode(*, countries=None):
    if countries is not None and not isinstance(countries, dict):
        raise ValueError("countries must map a country code to a regular expression")
    patterns = compile_patterns(countries)

    def check(order, ctx):
        address = order.ship_to
        pattern = patterns.get(address.country.strip().upper())
        code = address.postcode.strip()
        if pattern and code and not pattern.fullmatch(code.upper()):
            return [Hit("ship_to.postcode", {"postcode": code, "country": address.country})]
        return []
    return check


@rule("date", placeholders=("field", "value", "max_days_ahead"))
def date_plausible(*, field="requested_date", max_days_ahead=365):
    get = F.getter(field)
    ahead = timedelta(days=_non_negative_int(max_days_ahead, "max_days_ahead"))

    def check(order, ctx):
        value = get(order)
        if value is None or value == "" or (isinstance(value, date) and value <= ctx.today + ahead):
            return []
        return [Hit(field, {"field": field, "value": value, "max_days_ahead": max_days_ahead})]
    return check


@rule("positive_qty", placeholders=("line_no", "sku", "qty"))
def positive_qty():
    def check(order, ctx):
        return [Hit(f"lines[{line.line_no}].qty", {"line_no": line.line_no, "sku": line.sku, "qty": line.qty})
                for line in order.lines if line.qty <= ZERO]
    return check


@rule("max_qty", placeholders=("line_no", "sku", "qty", "max_qty", "unit"))
def max_qty():
    def check(order, ctx):
        items = ctx.masterdata.items
        hits = []
        for line in order.lines:
            item = items.get(line.sku)
            if item is not None and line.qty > item.max_qty:
                hits.append(Hit(f"lines[{line.line_no}].qty", {"line_no": line.line_no, "sku": line.sku,
                                                               "qty": line.qty, "max_qty": item.max_qty,
                                                               "unit": item.unit}))
        return hits
    return check


@rule("known_customer", placeholders=("customer_name",))
def known_customer():
    def check(order, ctx):
        if order.customer.id in ctx.masterdata.customers:
            return []
        return [Hit("customer.id", {"customer_name": order.customer.name or order.customer.email})]
    return check


@rule("known_item", placeholders=("line_no", "sku", "description"))
def known_item():
    def check(order, ctx):
        items = ctx.masterdata.items
        return [Hit(f"lines[{line.line_no}].sku", {"line_no": line.line_no, "sku": line.sku,
                                                   "description": line.description})
                for line in order.lines if line.sku and line.sku not in items]
    return check


@rule("active_item", placeholders=("line_no", "sku", "description"))
def active_item():
    def check(order, ctx):
        items = ctx.masterdata.items
        hits = []
        for line in order.lines:
            item = items.get(line.sku)
            if item is not None and not item.active:
                hits.append(Hit(f"lines[{line.line_no}].sku", {"line_no": line.line_no, "sku": line.sku,
                                                               "description": item.description}))
        return hits
    return check


@rule("currency", placeholders=("line_no", "sku", "currency", "expected_currency"))
def currency():
    def check(order, ctx):
        md = ctx.masterdata
        ordered_in = order_currency(order, md)
        hits = []
        if ordered_in:
            cid = order.customer.id
            for line in order.lines:
                listed = md.price(cid, line.sku)
                if listed is not None and listed[0] != ordered_in:
                    hits.append(Hit(f"lines[{line.line_no}].unit_price", {
                        "line_no": line.line_no, "sku": line.sku, "currency": ordered_in,
                        "expected_currency": listed[0]}))
        return hits
    return check


@rule("price_tolerance", placeholders=("line_no", "sku", "price", "expected", "currency", "deviation", "tolerance"))
def price_tolerance(*, tolerance_percent=2):
    if isinstance(tolerance_percent, bool) or not isinstance(tolerance_percent, (int, float)) or tolerance_percent < 0:
        raise ValueError(f"tolerance_percent must be a number >= 0, not {tolerance_percent!r}")
    tolerance = Decimal(str(tolerance_percent))
    hundred = Decimal(100)

    def check(order, ctx):
        md = ctx.masterdata
        ordered_in = order_currency(order, md)
        cid = order.customer.id
        hits = []
        for line in order.lines:
            price = line.unit_price
            if price is None:
                continue
            listed = md.price(cid, line.sku)
            if listed is None or listed[1] == price or (ordered_in and listed[0] != ordered_in):
                continue  # unknown item or other currency: other rules report it
            expected = listed[1]
            deviation = abs(price - expected) * hundred / expected if expected else hundred
            if deviation > tolerance:
                hits.append(Hit(f"lines[{line.line_no}].unit_price", {
                    "line_no": line.line_no, "sku": line.sku, "price": price, "expected": expected,
                    "currency": listed[0], "deviation": deviation.quantize(Decimal("0.1")),
                    "tolerance": tolerance_percent}))
        return hits
    return check


@rule("duplicate_po", placeholders=("original",))
def duplicate_po():
    def check(order, ctx):
        return [Hit("po_number", {"original": ctx.duplicate_of})] if ctx.duplicate_of else []
    return check


@rule("credit_limit", placeholders=("total", "exposure", "limit", "currency"))
def credit_limit():
    def check(order, ctx):
        md = ctx.masterdata
        record = md.customers.get(order.customer.id)
        if record is None:
            return []
        total = ctx.order_value(order)
        exposure = ctx.exposure.of(record.id, ctx.key)
        if total + exposure <= record.credit_limit:
            return []
        return [Hit(None, {"total": total, "exposure": exposure, "limit": record.credit_limit,
                           "currency": record.currency})]
    return check


@rule("delivery_in_past", placeholders=("date", "today", "earliest", "lead_days"))
def delivery_in_past():
    def check(order, ctx):
        wanted = order.requested_date
        if isinstance(wanted, date) and wanted < ctx.today:
            return [Hit("requested_date", {"date": wanted, "today": ctx.today, "earliest": ctx.today,
                                           "lead_days": 0})]
        return []
    return check


@rule("delivery_too_soon", placeholders=("date", "today", "earliest", "lead_days"))
def delivery_too_soon(*, lead_days=2):
    lead = timedelta(days=_non_negative_int(lead_days, "lead_days"))

    def check(order, ctx):
        wanted = order.requested_date
        if isinstance(wanted, date) and ctx.today <= wanted < ctx.today + lead:
            return [Hit("requested_date", {"date": wanted, "today": ctx.today, "earliest": ctx.today + lead,
                                           "lead_days": lead_days})]
        return []
    return check


@rule("address_complete", placeholders=("missing",))
def address_complete(*, fields=ADDRESS_FIELDS):
    names = _string_list(list(fields), "fields")
    for name in names:
        F.getter(f"ship_to.{name}")
    values_of = attrgetter(*names) if len(names) > 1 else lambda address: (getattr(address, names[0]),)
    strip = str.strip

    def check(order, ctx):
        values = values_of(order.ship_to)
        if all(map(strip, values)):
            return []
        missing = [n for n, v in zip(names, values) if not v.strip()]
        return [Hit("ship_to", {"missing": ", ".join(missing)})]
    return check
