"""The customer portal's data in the sandbox database: purchase orders a buyer addressed to us.

``PortalData(db)`` works on the ``portal_*`` tables of a ``SandboxDB``:

- A PO has a ``number`` (``4500000001``... when seeded), a ``status`` (``new``,
  ``acknowledged``, ``cancelled``), a ``version`` and ``changed_at``: the time
  of the buyer's last change (created, changed, cancelled) as
  ``YYYY-MM-DD HH:MM:SS`` UTC. Acknowledging is the supplier's action and
  does not touch ``changed_at``.
- ``list_pos`` filters by the date of ``changed_at`` (from/to, inclusive) and
  status, newest change first: a PO changed while a client pages through the
  list moves to the top, so later pages only repeat rows, never skip them.
- ``seed``, ``cancel`` and ``change`` are the buyer's side (used by the admin
  hooks); a change sets the PO back to ``new`` (the supplier acknowledges the
  new version). Bad input is ``ValueError`` naming the field; an unknown PO is
  ``LookupError``.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from sqlite3 import Connection, Row

from .db import SandboxDB, price_text, qty_text

STATUSES = ("new", "acknowledged", "cancelled")
SUPPLIER = "Orderbots Demo Supplier (vendor 20417)"
DEFAULT_BUYER = "Acme Retail Ltd"
DEFAULT_SHIP_TO = {"ship_name": "Acme Retail DC Daventry", "street": "Unit 4, Apex Park", "city": "Daventry",
                   "postcode": "NN11 8YH", "country": "GB"}
HEADER_FIELDS = ("delivery_date", "currency", "ship_name", "street", "city", "postcode", "country", "notes")
LINE_FIELDS = ("buyer_item", "supplier_item", "description", "qty", "unit", "unit_price")
PO_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,34}")


class Refused(Exception):
    """The portal refuses an action; the message is the alert to show."""


def now_text() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def buyer_item(sku: str) -> str:
    """The buyer's own number for one of our items in seeded POs: ``SKU-1001`` -> ``B-1001``."""
    return "B-" + sku.removeprefix("SKU-")


class PortalData:
    """See module docstring."""

    def __init__(self, db: SandboxDB):
        self.db = db

    # -- reading ------------------------------------------------------------------------------

    def list_pos(self, changed_from: str, changed_to: str, status: str, offset: int,
                 limit: int | None) -> tuple[list[Row], int]:
        """``(rows with their order value, total matching)``, newest change first; blank filters match all."""
        where, args = [], []
        if changed_from:
            where, args = where + ["changed_at >= ?"], args + [changed_from]
        if changed_to:
            where, args = where + ["changed_at < ?"], args + [_next_day(changed_to)]
        if status:
            where, args = where + ["status = ?"], args + [status]
        sql_where = f"WHERE {' AND '.join(where)}" if where else ""
        with self.db.read() as conn:
            total = conn.execute(f"SELECT count(*) FROM portal_pos {sql_where}", args).fetchone()[0]
            rows = conn.execute(f"SELECT * FROM portal_pos {sql_where} ORDER BY changed_at DESC, id DESC "
                                f"LIMIT ? OFFSET ?", (*args, -1 if limit is None else limit, offset)).fetchall()
        return rows, total

    def lines(self, po_ids: list[int]) -> dict[int, list[Row]]:
        """Lines of the given POs by PO id, in line order."""
        found: dict[int, list[Row]] = {i: [] for i in po_ids}
        with self.db.read() as conn:
            for start in range(0, len(po_ids), 500):
                chunk = po_ids[start:start + 500]
                for line in conn.execute(f"SELECT * FROM portal_po_lines WHERE po_id IN ({','.join('?' * len(chunk))}) "
                                         "ORDER BY po_id, line_no", chunk):
                    found[line["po_id"]].append(line)
        return found

    def po(self, number: str) -> tuple[Row, list[Row]] | None:
        with self.db.read() as conn:
            row = conn.execute("SELECT * FROM portal_pos WHERE number = ?", (number,)).fetchone()
        return (row, self.lines([row["id"]])[row["id"]]) if row else None

    # -- the supplier's action ------------------------------------------------------------------

    def acknowledge(self, number: str) -> None:
        """Mark a ``new`` PO acknowledged; ``Refused`` if it is cancelled or already acknowledged."""
        with self.db.transaction() as conn:
            row = self._row(conn, number)
            if row["status"] == "cancelled":
                raise Refused(f"Purchase order {number} is cancelled and cannot be acknowledged")
            if row["status"] == "acknowledged":
                raise Refused(f"Purchase order {number} is already acknowledged")
            conn.execute("UPDATE portal_pos SET status = 'acknowledged', acknowledged_at = ? WHERE id = ?",
                         (now_text(), row["id"]))

    # -- the buyer's side (admin hooks) ---------------------------------------------------------

    def seed(self, count: int = 0, pos: list[dict] | None = None, buyer: str = DEFAULT_BUYER) -> list[str]:
        """Add ``count`` generated POs and the explicit ``pos`` (dicts of header fields and ``lines``);
        returns their numbers. Generated POs order active items, some lines by buyer item number only."""
        if not isinstance(count, int) or count < 0 or count > 100_000:
            raise ValueError("count must be a whole number between 0 and 100000")
        if not isinstance(pos or [], list) or not all(isinstance(p, dict) for p in pos or []):
            raise ValueError("pos must be a list of objects")
        with self.db.read() as conn:
            items = conn.execute("SELECT sku, description, unit, unit_price FROM items WHERE active = 1 AND "
                                 "currency = 'EUR' ORDER BY sku").fetchall()
        numbers = []
        with self.db.transaction() as conn:
            next_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM portal_pos").fetchone()[0]
            specs = [_generated(next_id + i, items) for i in range(count)] + list(pos or [])
            for n, spec in enumerate(specs, start=next_id):
                numbers.append(self._insert(conn, n, spec, buyer))
        return numbers

    def cancel(self, number: str) -> dict:
        """The buyer cancels a PO (a new version); returns the PO's summary."""
        with self.db.transaction() as conn:
            row = self._row(conn, number)
            if row["status"] == "cancelled":
                raise ValueError(f"purchase order {number} is already cancelled")
            conn.execute("UPDATE portal_pos SET status = 'cancelled', version = version + 1, changed_at = ? "
                         "WHERE id = ?", (now_text(), row["id"]))
        return self.summary(number)

    def change(self, number: str, values: dict) -> dict:
        """The buyer changes header fields and/or replaces ``lines``; the PO becomes ``new`` again."""
        unknown = set(values) - {*HEADER_FIELDS, "lines"}
        if unknown:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))}; changeable: "
                             f"{', '.join((*HEADER_FIELDS, 'lines'))}")
        with self.db.transaction() as conn:
            row = self._row(conn, number)
            if row["status"] == "cancelled":
                raise ValueError(f"purchase order {number} is cancelled and cannot be changed")
            header = _header({**dict(row), **values})
            conn.execute(f"UPDATE portal_pos SET {', '.join(f'{k} = ?' for k in HEADER_FIELDS)}, status = 'new', "
                         "version = version + 1, changed_at = ?, acknowledged_at = NULL WHERE id = ?",
                         (*(header[k] for k in HEADER_FIELDS), now_text(), row["id"]))
            if "lines" in values:
                conn.execute("DELETE FROM portal_po_lines WHERE po_id = ?", (row["id"],))
                _insert_lines(conn, row["id"], values["lines"])
        return self.summary(number)

    def summary(self, number: str) -> dict:
        row, lines = self.po(number)
        return {"number": row["number"], "status": row["status"], "version": row["version"],
                "changed_at": row["changed_at"], "lines": len(lines)}

    # -- settings -------------------------------------------------------------------------------

    def setting(self, key: str, default: str) -> str:
        with self.db.read() as conn:
            row = conn.execute("SELECT value FROM portal_settings WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else default

    def set_setting(self, key: str, value: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO portal_settings VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = "
                         "excluded.value", (key, value))

    # -- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _row(conn: Connection, number: str) -> Row:
        row = conn.execute("SELECT * FROM portal_pos WHERE number = ?", (number,)).fetchone()
        if row is None:
            raise LookupError(f"unknown purchase order {number}")
        return row

    @staticmethod
    def _insert(conn: Connection, po_id: int, spec: dict, buyer: str) -> str:
        number = str(spec.get("number") or f"45{po_id:08d}")
        if not PO_NUMBER.fullmatch(number):
            raise ValueError(f"number {number!r} must be 1-35 letters, digits, '-' or '_'")
        if conn.execute("SELECT 1 FROM portal_pos WHERE number = ?", (number,)).fetchone():
            raise ValueError(f"purchase order {number} exists already")
        unknown = set(spec) - {*HEADER_FIELDS, "number", "lines", "po_date"}
        if unknown:
            raise ValueError(f"PO {number}: unknown field(s) {', '.join(sorted(unknown))}")
        header = _header({**DEFAULT_SHIP_TO, "currency": "EUR", "notes": "",
                          "delivery_date": (date.today() + timedelta(days=21)).isoformat(), **spec})
        changed = now_text()
        conn.execute(f"INSERT INTO portal_pos (id, number, buyer, supplier, status, po_date, version, changed_at, "
                     f"{', '.join(HEADER_FIELDS)}) VALUES (?, ?, ?, ?, 'new', ?, 1, ?, "
                     f"{', '.join('?' * len(HEADER_FIELDS))})",
                     (po_id, number, buyer, SUPPLIER, str(spec.get("po_date") or changed[:10]), changed,
                      *(header[k] for k in HEADER_FIELDS)))
        _insert_lines(conn, po_id, spec.get("lines"))
        return number


def _generated(n: int, items: list[Row]) -> dict:
    """A plausible PO: 1-3 lines of active items; every third line names only the buyer's item number."""
    lines = []
    for j in range(1 + n % 3):
        item = items[(n * 7 + j * 5) % len(items)]
        lines.append({"buyer_item": buyer_item(item["sku"]), "supplier_item": "" if (n + j) % 3 == 0 else item["sku"],
                      "description": item["description"], "qty": str(1 + (n * 3 + j) % 12), "unit": item["unit"],
                      "unit_price": item["unit_price"]})
    return {"delivery_date": (date.today() + timedelta(days=14 + n % 30)).isoformat(),
            "notes": f"Dock {1 + n % 6}, book a slot 24 h ahead" if n % 4 == 0 else "", "lines": lines}


def _header(values: dict) -> dict:
    header = {k: str(values.get(k) or "").strip() for k in HEADER_FIELDS}
    try:
        date.fromisoformat(header["delivery_date"])
    except ValueError:
        raise ValueError(f"delivery_date {header['delivery_date']!r} must be a date YYYY-MM-DD") from None
    return header


def _insert_lines(conn: Connection, po_id: int, lines) -> None:
    if not isinstance(lines, list) or not lines or not all(isinstance(l, dict) for l in lines):
        raise ValueError("lines must be a non-empty list of objects with buyer_item, supplier_item, description, "
                         "qty, unit, unit_price")
    rows = []
    for n, line in enumerate(lines, start=1):
        unknown = set(line) - set(LINE_FIELDS)
        if unknown:
            raise ValueError(f"line {n}: unknown field(s) {', '.join(sorted(unknown))}")
        try:
            qty, price = Decimal(str(line.get("qty", ""))), Decimal(str(line.get("unit_price", "0")))
        except InvalidOperation:
            raise ValueError(f"line {n}: qty and unit_price must be numbers") from None
        rows.append((po_id, n, str(line.get("buyer_item", "")), str(line.get("supplier_item", "")),
                     str(line.get("description", "")), qty_text(qty), str(line.get("unit") or "EA"),
                     price_text(price)))
    conn.executemany("INSERT INTO portal_po_lines VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)


def _next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()
