"""Turning a table of cells (a worksheet, a CSV) into canonical orders; shared by every channel.

``orders_from_table(table, ...)`` finds the header row (the row among the first
30 that names the most known columns; blank or title rows before it are fine),
maps header texts to order fields through ``aliases`` (``header_aliases()``
gives the defaults, extended by configuration), and groups data rows into one
``Order`` per (customer, PO) with one line per row.

Contract:
- Missing required columns (PO, SKU, quantity; a customer column unless a
  default customer is given) raise ``InputError`` listing what is missing and
  the header texts accepted. A table without data rows raises ``InputError``
  ("no order rows").
- A bad row (no SKU, unreadable quantity, values beyond the header, a formula-
  looking text) never sinks the table: it adds a ``Finding`` (severity ``hold``)
  naming sheet, row, column and the fix to the problems of its order.
- A row with a blank PO continues the order above it (master/detail layouts,
  merged PO cells); the order gets a ``warn`` finding saying so.
- Cell text is never evaluated. Dates: spreadsheet dates, Excel serial
  numbers, ISO text, dd/mm/yyyy or mm/dd/yyyy when only one reading is possible
  (otherwise a finding). Numbers: decimal comma or point, thousands separators.
- ``order.source_ref`` is ``"<source_ref>#<sheet>!<first row>-<last row>"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from operator import itemgetter
from typing import Any, Callable, Iterable, Mapping

from .errors import ConfigError, InputError
from .masterdata import MasterData
from .model import Customer, Finding, Order, OrderLine

HEADER_SCAN_ROWS = 30

DEFAULT_ALIASES: dict[str, tuple[str, ...]] = {
    "po_number": ("PO Number", "PO#", "PO", "PO No", "Purchase Order", "Purchase Order Number", "Customer PO",
                  "Order Number", "Order No", "Order ID", "Bestellnummer", "客户订单号", "订单号", "采购单号",
                  "订单编号"),
    "sku": ("SKU", "Item", "Item No", "Item Number", "Item Code", "Article", "Article Number", "Part Number",
            "Product Code", "Product ID", "Material", "Artikelnummer", "物料编码", "商品编码", "货号", "物料号"),
    "qty": ("Qty", "Quantity", "Order Qty", "Units", "Menge", "数量", "订购数量"),
    "unit_price": ("Unit Price", "Price", "Net Price", "Einzelpreis", "单价", "含税单价"),
    "description": ("Description", "Item Description", "Product Name", "Product", "Bezeichnung", "品名",
                    "描述", "物料描述", "商品名称"),
    "unit": ("Unit", "UOM", "Unit of Measure", "单位"),
    "customer_id": ("Customer ID", "Customer No", "Customer Number", "Customer Code", "Account", "Account No",
                    "Kundennummer", "客户编号", "客户代码"),
    "customer_name": ("Customer", "Customer Name", "Company", "Kunde", "客户名称", "客户"),
    "customer_email": ("Customer Email", "Email", "E-mail", "Buyer Email", "邮箱", "电子邮件"),
    "ship_name": ("Ship To", "Ship To Name", "Recipient", "Consignee", "收货人", "收货单位"),
    "ship_street": ("Ship To Address", "Ship Address", "Address", "Street", "Delivery Address", "收货地址", "地址"),
    "ship_city": ("City", "Ship City", "Ship To City", "城市"),
    "ship_postcode": ("Postcode", "Postal Code", "Post Code", "Zip", "Zip Code", "Ship Postal Code", "邮编",
                      "邮政编码"),
    "ship_country": ("Country", "Ship Country", "Ship To Country", "Country/Region", "国家"),
    "requested_date": ("Requested Date", "Requested Delivery Date", "Delivery Date", "Required Date", "Need By",
                       "Due Date", "Liefertermin", "交货日期", "要求交货日期", "交期"),
    "currency": ("Currency", "Curr", "Währung", "币种", "货币"),
    "notes": ("Notes", "Note", "Comment", "Comments", "Remarks", "Bemerkung", "备注"),
}
REQUIRED = ("po_number", "sku", "qty")
CUSTOMER_FIELDS = ("customer_id", "customer_email", "customer_name")
ORDER_FIELDS = ("currency", "requested_date", "ship_name", "ship_street", "ship_city", "ship_postcode",
                "ship_country", "notes")
IDENTIFIERS = ("po_number", "sku", "customer_id")
FORMULA_START = ("=", "+", "-", "@")
_FORMULA_CHARS = "=+-@"
_UNSET = object()
LABELS = {"po_number": "PO number", "sku": "SKU", "qty": "quantity", "customer": "customer"}


@dataclass
class Table:
    """One worksheet, text file or table typed into a mail, as rows of cell values; ``first_row`` and
    ``first_col`` place ``rows[0][0]`` in the source, for messages."""

    name: str
    rows: list[list[Any]]
    first_row: int = 1
    first_col: int = 0
    hidden: bool = False


@dataclass
class TableResult:
    """Orders from one table; ``rows`` data rows were read, ``lines`` became order lines.

    Every data row is either a line or the subject of a finding on one of ``orders``.
    """

    orders: list[Order]
    header_row: int
    columns: dict[str, str]
    rows: int = 0
    lines: int = 0


def header_aliases(overrides: Mapping[str, Iterable[str] | str] | None = None,
                   where: str = "aliases") -> dict[str, tuple[str, ...]]:
    """The default header aliases, each field extended by ``overrides`` (``ConfigError`` on unknown field)."""
    merged = dict(DEFAULT_ALIASES)
    for name, extra in (overrides or {}).items():
        if name not in merged:
            raise ConfigError(f"{where}: unknown order field {name!r}; known fields: {', '.join(merged)}")
        extra = [extra] if isinstance(extra, str) else list(extra or [])
        merged[name] = (*[str(e) for e in extra], *merged[name])
    return merged


def orders_from_table(table: Table, *, channel: str, source_ref: str, received_at: datetime,
                      masterdata: MasterData, aliases: Mapping[str, Iterable[str]] | None = None,
                      default_customer: Customer | None = None, raw_path: str = "",
                      source_name: str = "") -> TableResult:
    """See module docstring. ``source_name`` (the file or attachment name) is used in messages."""
    return _TableReader(table, channel, source_ref, received_at, masterdata, aliases or DEFAULT_ALIASES,
                        default_customer, raw_path, source_name or raw_path.rsplit("/", 1)[-1]).read()


# -- cell values ------------------------------------------------------------------

_FLOAT_ID = re.compile(r"(\d+)\.0+")
_PLAIN_INT = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_THOUSANDS_COMMA = re.compile(r"[+-]?\d{1,3}(,\d{3})+")
_THOUSANDS_DOT = re.compile(r"[+-]?\d{1,3}(\.\d{3}){2,}")
_ISO_DATE = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T].*)?")
_CJK_DATE = re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日?")
_NUMERIC_DATE = re.compile(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})(?:[ T].*)?")
_NAMED_MONTH_FORMATS = ("%d %b %Y", "%d %B %Y", "%b %d %Y", "%B %d %Y", "%d-%b-%Y", "%d-%b-%y")
_EXCEL_EPOCH = date(1899, 12, 30)


def cell_text(value: Any) -> str:
    """A cell as text: integral floats without ``.0`` (``17850.0`` -> ``17850``), blank as ``""``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value).strip()


def _identifier(value: Any) -> str:
    """A cell as an identifier (PO, SKU, customer id): like ``cell_text``, but ``17850.0`` -> ``17850``."""
    text = cell_text(value)
    if "." in text and _FLOAT_ID.fullmatch(text):
        return text.split(".")[0]  # an id a spreadsheet turned into a float
    return text


@lru_cache(maxsize=65536, typed=True)
def parse_decimal(value: Any) -> Decimal | None:
    """A number from a cell (any hashable cell value), or None if it is not one. ``"1.234,5"``,
    ``"1,234.5"``, ``"1,7"`` all work.

    A single comma followed by exactly three digits (``"1,500"``) is a thousands separator.
    Results are cached per value and type: quantities and prices repeat across rows.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        return Decimal(int(value)) if value.is_integer() else Decimal(repr(value))
    text = str(value).strip()
    if _PLAIN_INT.fullmatch(text):
        return Decimal(text)
    text = re.sub(r"[\s\u00a0\u202f'€$£¥]", "", text)
    if "," in text and "." in text:
        decimal_mark = "," if text.rfind(",") > text.rfind(".") else "."
        text = text.replace("." if decimal_mark == "," else ",", "").replace(",", ".")
    elif "," in text:
        text = text.replace(",", "") if _THOUSANDS_COMMA.fullmatch(text) else text.replace(",", ".")
    elif _THOUSANDS_DOT.fullmatch(text):
        text = text.replace(".", "")
    if not _DECIMAL.fullmatch(text):
        return None
    number = Decimal(text)
    return Decimal(int(number)) if number == number.to_integral_value() else number


def parse_date(value: Any) -> tuple[date | None, str]:
    """``(date, "")`` for a readable date, ``(None, reason)`` otherwise. See module docstring."""
    if isinstance(value, datetime):
        return value.date(), ""
    if isinstance(value, date):
        return value, ""
    if isinstance(value, timedelta):
        return None, "is a time of day, not a date"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _from_serial(value)
    text = cell_text(value)
    if text.isdigit():
        return _from_serial(int(text))
    for pattern in (_ISO_DATE, _CJK_DATE):
        m = pattern.fullmatch(text)
        if m:
            return _make_date(int(m[1]), int(m[2]), int(m[3]), text)
    m = _NUMERIC_DATE.fullmatch(text)
    if m:
        a, sep, b, year = int(m[1]), m[2], int(m[3]), int(m[4])
        year += 2000 if year < 100 else 0
        if sep == "." or (a > 12 >= b) or a == b:
            return _make_date(year, b, a, text)
        if b > 12 >= a:
            return _make_date(year, a, b, text)
        return None, (f"is ambiguous: {a} {_month(b)} or {b} {_month(a)} {year}; "
                      "write dates as YYYY-MM-DD")
    for fmt in _NAMED_MONTH_FORMATS:
        try:
            return datetime.strptime(text.replace(",", ""), fmt).date(), ""
        except ValueError:
            continue
    return None, "is not a date; write dates as YYYY-MM-DD"


def _from_serial(serial: float) -> tuple[date | None, str]:
    if 1 <= serial < 2958466:
        return _EXCEL_EPOCH + timedelta(days=int(serial)), ""
    return None, "is not a date; write dates as YYYY-MM-DD"


def _make_date(year: int, month: int, day: int, text: str) -> tuple[date | None, str]:
    try:
        return date(year, month, day), ""
    except ValueError:
        return None, "is not a valid calendar date; write dates as YYYY-MM-DD"


def _month(n: int) -> str:
    return date(2000, n, 1).strftime("%B")


_parse_date = lru_cache(maxsize=4096, typed=True)(parse_date)  # dates repeat down a column; results are immutable


def _remembering(convert: Callable[[Any], str]) -> Callable[[Any], str]:
    """``convert`` remembering its result per ``str`` cell value (SKUs, descriptions, POs repeat down a
    column); other values are converted each time (``1``, ``1.0`` and ``True`` are equal keys)."""
    memo: dict[str, str] = {}

    def converted(value: Any) -> str:
        if value.__class__ is not str:
            return convert(value)
        text = memo.get(value)
        if text is None:
            text = memo[value] = convert(value)
        return text
    return converted


@lru_cache(maxsize=32)
def _header_lookup(aliases: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, str]:
    """Normalised header text -> order field, for ``aliases`` as a tuple of (field, texts); built once per
    alias set, and only read afterwards."""
    return {_normalise_header(a): name for name, names in aliases for a in names}


@lru_cache(maxsize=4096, typed=True)
def _normalise_header(text: Any) -> str:
    return re.sub(r"[\W_]+", "", cell_text(text).casefold())


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


# -- the reader ---------------------------------------------------------------------

@dataclass
class _Group:
    order: Order
    first_row: int
    last_row: int
    values: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    first_values: Any = _UNSET  # the order-level cells of the group's first row


class _TableReader:
    """One pass over one table; builds the groups. Not shared between tables."""

    def __init__(self, table, channel, source_ref, received_at, masterdata, aliases, default_customer,
                 raw_path, source_name):
        self.table, self.channel, self.source_ref = table, channel, source_ref
        self.received_at, self.masterdata, self.aliases = received_at, masterdata, aliases
        self.default_customer, self.raw_path, self.source_name = default_customer, raw_path, source_name
        self.lookup = _header_lookup(tuple((name, tuple(names)) for name, names in aliases.items()))
        self.order_columns: list[tuple[str, int]] = []
        self.customers: dict[Any, Customer | None] = {}  # by the row's customer cell value(s)
        self.text, self.identifier = _remembering(cell_text), _remembering(_identifier)

    def where(self, row_no: int, col: int | None = None) -> str:
        place = f"{self.source_name}, sheet {self.table.name!r}, row {row_no}"
        if col is None:
            return place
        return f"{place}, column {_column_letter(col + self.table.first_col)} ({self.headers[col]!r})"

    def read(self) -> TableResult:
        rows = self.table.rows
        header_index, self.columns = self._find_header(rows)
        self.order_columns = [(n, self.columns[n]) for n in ORDER_FIELDS if n in self.columns]
        self.customer_columns = [self.columns[n] for n in CUSTOMER_FIELDS if n in self.columns]
        self.order_values = itemgetter(*(i for _, i in self.order_columns)) if self.order_columns else None
        self.customer_values = itemgetter(*self.customer_columns) if self.customer_columns else lambda row: ()
        self.po_col, self.sku_col, self.qty_col = (self.columns[n] for n in REQUIRED)
        self.price_col, self.description_col, self.unit_col = map(
            self.columns.get, ("unit_price", "description", "unit"))
        self.headers = [cell_text(c) for c in rows[header_index]]
        self.width = max((i + 1 for i, h in enumerate(self.headers) if h), default=0)
        header_row = self.table.first_row + header_index
        groups: dict[tuple[str, str], _Group] = {}
        current: _Group | None = None
        orphans: list[int] = []
        result = TableResult([], header_row, {f: self.headers[i] for f, i in self.columns.items()})
        po_col, first_row = self.po_col, self.table.first_row
        header_po = rows[header_index][po_col]
        needed = max(self.columns.values()) + 1
        identifier, order_values = self.identifier, self.order_values
        for offset, row in enumerate(rows[header_index + 1:], start=header_index + 1):
            if (not row or row[0] is None or row[0] == "") and row.count(None) + row.count("") == len(row):
                continue
            if len(row) < needed:
                row = row + [None] * (needed - len(row))  # short rows: every mapped column exists
            if row[po_col] == header_po and self._repeats_header(row):
                continue  # the header repeated (printed pages, concatenated exports)
            row_no = first_row + offset
            result.rows += 1
            po = identifier(row[po_col])
            if po:
                customer = self._customer(row)
                key = (customer.id if customer else "", po)
                current = groups.get(key)
                if current is None:
                    current = groups[key] = self._new_group(po, customer, row_no)
            elif current is None:
                orphans.append(row_no)
                continue
            else:
                current.order.problems.append(Finding(
                    "po_filled_down", "warn",
                    {"en": f"{self.where(row_no)}: no PO number; taken as part of PO {current.order.po_number} "
                           "from the rows above"}, "po_number"))
            current.last_row = row_no
            if order_values is not None and order_values(row) != current.first_values:
                self._order_fields(current, row, row_no)  # the group's first row, or one with other values
            if self._add_line(current, row, row_no):
                result.lines += 1
        if not groups:
            raise InputError(f"{self.source_name}, sheet {self.table.name!r}: no order rows "
                             + (f"(rows {_spans(orphans)} have no PO number)" if orphans
                                else f"below the header in row {header_row}"))
        if orphans:
            first = next(iter(groups.values()))
            first.order.problems.append(Finding(
                "bad_row", "hold",
                {"en": f"{self.source_name}, sheet {self.table.name!r}: rows {_spans(orphans)} come before the "
                       "first PO number and belong to no order; they were not imported. Add the PO number "
                       "to them and send them again"}, "po_number"))
        for g in groups.values():
            g.order.source_ref = f"{self.source_ref}#{self.table.name}!{g.first_row}-{g.last_row}"
            result.orders.append(g.order)
        return result

    def _repeats_header(self, row: list[Any]) -> bool:
        return [cell_text(c) for c in row[:self.width]] == self.headers[:self.width]

    def _find_header(self, rows: list[list[Any]]) -> tuple[int, dict[str, int]]:
        best_index, best_columns = -1, {}
        for index, row in enumerate(rows[:HEADER_SCAN_ROWS]):
            columns: dict[str, int] = {}
            for i, cell in enumerate(row):
                name = self.lookup.get(_normalise_header(cell)) if cell is not None else None
                if name and name not in columns:
                    columns[name] = i
            if len(columns) > len(best_columns):
                best_index, best_columns = index, columns
        needed = [*REQUIRED, *([] if self.default_customer else ["customer"])]
        have = set(best_columns) | ({"customer"} if set(CUSTOMER_FIELDS) & set(best_columns) else set())
        missing = [f for f in needed if f not in have]
        if len(best_columns) < 2 or missing:
            if not any(any(cell_text(c) for c in r) for r in rows):
                raise InputError(f"{self.source_name}, sheet {self.table.name!r}: the sheet is empty (no order rows)")
            found = (f"the best header candidate is row {self.table.first_row + best_index}"
                     if best_index >= 0 else f"no row within the first {HEADER_SCAN_ROWS} looks like a header; the first reads "
                     + ", ".join(repr(cell_text(c)[:30]) for c in next(r for r in rows if any(r))[:8]))
            accepted = "; ".join(
                f"{LABELS[f]}: " + ", ".join(repr(a) for a in self._accepted(f)) for f in (missing or REQUIRED))
            raise InputError(
                f"{self.source_name}, sheet {self.table.name!r}: missing required column(s) "
                f"{', '.join(LABELS[f] for f in missing or REQUIRED)} ({found}). "
                f"Accepted header texts - {accepted}. Rename the columns, or add aliases in orderbots.yaml")
        return best_index, best_columns

    def _accepted(self, name: str) -> list[str]:
        if name == "customer":
            return [a for f in CUSTOMER_FIELDS for a in self.aliases[f]] + ["(or set a default customer)"]
        return list(self.aliases[name])

    def _text(self, row: list[Any], name: str) -> str:
        """The text of field ``name`` in ``row`` (padded to every mapped column); "" if not mapped."""
        i = self.columns.get(name)
        if i is None:
            return ""
        return _identifier(row[i]) if name in IDENTIFIERS else cell_text(row[i])

    def _customer(self, row: list[Any]) -> Customer | None:
        """The customer of ``row`` (cached per distinct cell values); None if blank and no default."""
        raw = self.customer_values(row)
        if raw not in self.customers:
            self.customers[raw] = self._resolve_customer(
                tuple(self._text(row, name) for name in CUSTOMER_FIELDS))
        return self.customers[raw]

    def _resolve_customer(self, ident: tuple[str, ...]) -> Customer | None:
        """The master-data customer by id, email or name; else what the sheet says (validation holds it)."""
        for text in ident:
            record = self.masterdata.find_customer(text) if text else None
            if record:
                return record.as_customer()
        if not any(ident):
            return self.default_customer
        cid, email, name = ident
        return Customer(cid or email or name, name, email)  # the rules flag an unknown customer

    def _new_group(self, po: str, customer: Customer | None, row_no: int) -> _Group:
        record = self.masterdata.customers.get(customer.id) if customer else None
        order = Order(channel=self.channel, source_ref=self.source_ref, customer=customer or Customer("unknown"),
                      po_number=po, lines=[], received_at=self.received_at, raw_path=self.raw_path,
                      currency=record.currency if record else "")  # a Currency column overrides it
        if customer is None:
            order.problems.append(Finding("missing_customer", "hold",
                                          {"en": f"{self.where(row_no)}: no customer given; fill in the customer "
                                                 "column"}, "customer"))
        self._check_formula(order, po, row_no, "po_number")
        return _Group(order, row_no, row_no)

    def _order_fields(self, group: _Group, row: list[Any], row_no: int) -> None:
        """Set the order-level fields of ``group`` from ``row``; the caller skips rows whose order-level cells
        equal those of the group's first row (which set or skipped each field: nothing new)."""
        if group.first_values is _UNSET:
            group.first_values = self.order_values(row)
        order = group.order
        for name, i in self.order_columns:
            if row[i] is None:
                continue
            raw = group.raw.get(name, _UNSET)
            if raw is not _UNSET and raw == row[i]:
                continue  # the same cell value as the first row of this order: nothing new
            text = cell_text(row[i])
            if not text:
                continue
            if name == "requested_date":
                when, reason = _parse_date(row[i])
                text = str(when or text)  # 47574 and 2030-04-01 are the same date
            previous = group.values.get(name)
            if previous is not None:
                if previous != text:
                    order.problems.append(Finding(
                        "conflicting_value", "warn",
                        {"en": f"{self.where(row_no, i)}: {text!r} differs from {previous!r} given above for "
                               f"PO {order.po_number}; the first value was kept"}, name))
                continue
            group.values[name], group.raw[name] = text, row[i]
            self._check_formula(order, text, row_no, name, i)
            if name == "requested_date":
                order.requested_date = when
                if reason:
                    order.problems.append(Finding("bad_date", "hold",
                                                  {"en": f"{self.where(row_no, i)}: {text!r} {reason}"}, name))
            elif name == "currency":
                order.currency = text.upper()
            elif name == "notes":
                order.notes = text
            else:
                setattr(order.ship_to, name.removeprefix("ship_"), text)

    def _add_line(self, group: _Group, row: list[Any], row_no: int) -> bool:
        """Add ``row`` as a line of ``group``; False (and a finding per problem) if it cannot be one."""
        sku = self.identifier(row[self.sku_col])
        qty = parse_decimal(row[self.qty_col])
        price_col = self.price_col
        price_text = "" if price_col is None or row[price_col] is None else self.text(row[price_col])
        price = parse_decimal(row[price_col]) if price_text else None
        beyond = len(row) > self.width and any(cell_text(c) for c in row[self.width:])
        if not sku or qty is None or (price_text and price is None) or beyond:
            self._bad_line(group.order, row, row_no, sku, qty, price_text, beyond)
            return False
        order = group.order
        description = "" if self.description_col is None else self.text(row[self.description_col])
        if sku[0] in _FORMULA_CHARS or description[:1] in _FORMULA_CHARS:
            for name, text in (("sku", sku), ("description", description)):
                self._check_formula(order, text, row_no, name, self.columns.get(name))
        unit = "" if self.unit_col is None else self.text(row[self.unit_col])
        order.lines.append(OrderLine(len(order.lines) + 1, sku, qty, description, unit or "EA", price))
        return True

    def _bad_line(self, order: Order, row: list[Any], row_no: int, sku: str, qty: Decimal | None,
                  price_text: str, beyond: bool) -> None:
        problems: list[tuple[int | None, str]] = []
        if beyond:
            problems.append((None, f"has values beyond the last column ({_column_letter(self.width)}); "
                                   "a value probably contains an unquoted delimiter or sits outside the table"))
        if not sku:
            problems.append((self.columns["sku"], "has no SKU; fill in the item code"))
        if qty is None:
            raw = cell_text(row[self.columns["qty"]])
            shown = repr(raw) if raw else "empty (a formula without a saved result?)"
            problems.append((self.columns["qty"], f"quantity is {shown}, not a number; correct the quantity"))
        if price_text and parse_decimal(price_text) is None:
            problems.append((self.columns["unit_price"], f"unit price {price_text!r} is not a number; "
                                                         "correct or clear the price"))
        for col, text in problems:
            order.problems.append(Finding("bad_row", "hold",
                                          {"en": f"{self.where(row_no, col)}: {text}. The line was not imported"},
                                          "lines"))

    def _check_formula(self, order: Order, text: str, row_no: int, name: str, col: int | None = None) -> None:
        if text.startswith(FORMULA_START) and parse_decimal(text) is None:
            order.problems.append(Finding(
                "formula_in_cell", "hold",
                {"en": f"{self.where(row_no, col if col is not None else self.columns.get(name))}: {text[:60]!r} "
                       "looks like a formula; it was kept as text and not evaluated. Check the value"}, name))


def _spans(numbers: list[int]) -> str:
    """``[2, 3, 4, 9]`` -> ``"2-4, 9"``."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
