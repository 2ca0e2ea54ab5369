"""The sandbox's own SQLite database: schema, seeding, and the ERP/WMS operations.

``SandboxDB(path)`` opens (``migrate()``) a file of its own, separate from the
orderbots store. ``seed(rules_data_dir, stock_csv)`` fills customers, items and
prices from the master data CSVs (via ``orderbots.masterdata``) and stock from
``stock.csv`` (sku, warehouse, on_hand) when the database is new.

Amounts and quantities are stored as decimal TEXT exactly as shown on screens
("12", "8.50"). Order numbers are ``SO-100001``..., WMS references
``WMS-000001``.... Every write is one ``BEGIN IMMEDIATE`` transaction, so a
release either reserves all its stock or nothing.
"""

from __future__ import annotations

import csv
import queue
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Iterator

from orderbots.errors import ConfigError
from orderbots.masterdata import MasterData

STOCK_CSV = Path(__file__).with_name("stock.csv")

MIGRATIONS = [
    """
    CREATE TABLE customers (id TEXT PRIMARY KEY, name TEXT NOT NULL, country TEXT NOT NULL,
                            currency TEXT NOT NULL, email TEXT NOT NULL);
    CREATE TABLE items (sku TEXT PRIMARY KEY, description TEXT NOT NULL, unit TEXT NOT NULL,
                        unit_price TEXT NOT NULL, currency TEXT NOT NULL, active INTEGER NOT NULL);
    CREATE TABLE prices (customer_id TEXT NOT NULL, sku TEXT NOT NULL, currency TEXT NOT NULL,
                         unit_price TEXT NOT NULL, PRIMARY KEY (customer_id, sku));
    CREATE TABLE stock (sku TEXT NOT NULL, warehouse TEXT NOT NULL, on_hand TEXT NOT NULL,
                        reserved TEXT NOT NULL DEFAULT '0', PRIMARY KEY (sku, warehouse));
    CREATE TABLE orders (id INTEGER PRIMARY KEY, number TEXT UNIQUE NOT NULL,
                         customer_id TEXT NOT NULL, customer_po TEXT NOT NULL,
                         requested_date TEXT NOT NULL, currency TEXT NOT NULL,
                         ship_name TEXT NOT NULL, street TEXT NOT NULL, city TEXT NOT NULL,
                         postcode TEXT NOT NULL, country TEXT NOT NULL, notes TEXT NOT NULL,
                         status TEXT NOT NULL, created_at TEXT NOT NULL);
    CREATE INDEX orders_po ON orders (customer_po);
    CREATE TABLE order_lines (order_id INTEGER NOT NULL REFERENCES orders(id), line_no INTEGER NOT NULL,
                              sku TEXT NOT NULL, description TEXT NOT NULL, qty TEXT NOT NULL,
                              unit TEXT NOT NULL, unit_price TEXT NOT NULL,
                              PRIMARY KEY (order_id, line_no));
    CREATE TABLE releases (id INTEGER PRIMARY KEY, wms_ref TEXT UNIQUE NOT NULL,
                           order_number TEXT UNIQUE NOT NULL, released_at TEXT NOT NULL);
    CREATE TABLE release_lines (release_id INTEGER NOT NULL REFERENCES releases(id), sku TEXT NOT NULL,
                                warehouse TEXT NOT NULL, qty TEXT NOT NULL);
    """,
    # the customer portal (sandbox/portal_db.py): purchase orders a buyer addressed to us
    """
    CREATE TABLE portal_pos (id INTEGER PRIMARY KEY, number TEXT UNIQUE NOT NULL, buyer TEXT NOT NULL,
                             supplier TEXT NOT NULL, status TEXT NOT NULL, po_date TEXT NOT NULL,
                             delivery_date TEXT NOT NULL, currency TEXT NOT NULL, ship_name TEXT NOT NULL,
                             street TEXT NOT NULL, city TEXT NOT NULL, postcode TEXT NOT NULL,
                             country TEXT NOT NULL, notes TEXT NOT NULL, version INTEGER NOT NULL,
                             changed_at TEXT NOT NULL, acknowledged_at TEXT);
    CREATE INDEX portal_pos_changed ON portal_pos (changed_at, id);
    CREATE TABLE portal_po_lines (po_id INTEGER NOT NULL REFERENCES portal_pos(id), line_no INTEGER NOT NULL,
                                  buyer_item TEXT NOT NULL, supplier_item TEXT NOT NULL,
                                  description TEXT NOT NULL, qty TEXT NOT NULL, unit TEXT NOT NULL,
                                  unit_price TEXT NOT NULL, PRIMARY KEY (po_id, line_no));
    CREATE TABLE portal_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
]

HEADER_COLUMNS = ("customer_id", "customer_po", "requested_date", "currency", "ship_name", "street",
                  "city", "postcode", "country", "notes")


def qty_text(value: Decimal) -> str:
    """A quantity as plain decimal text without trailing zeros: ``12``, ``2.5``."""
    return format(value.normalize(), "f")


def price_text(value: Decimal) -> str:
    """A price with at least two decimals: ``8.50``, ``0.125``."""
    return format(value.quantize(Decimal("0.01")) if value.as_tuple().exponent >= -2 else value.normalize(), "f")


class ReleaseRefused(Exception):
    """A WMS release was refused; ``messages`` are the alert lines to show."""

    def __init__(self, messages: list[str]):
        super().__init__("; ".join(messages))
        self.messages = messages


class DuplicatePO(Exception):
    """``--unique-po``: a live order already carries this customer + PO; ``order_number`` names it."""

    def __init__(self, order_number: str):
        super().__init__(order_number)
        self.order_number = order_number


@dataclass
class Release:
    wms_ref: str
    lines: list[dict]


class SandboxDB:
    """The database at ``path``; connections are pooled and handed to one thread at a time."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._pool: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A connection in autocommit mode, back to the pool afterwards."""
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = self.connect()
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.close()
            else:
                self._pool.put(conn)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``): committed on success, rolled back on error."""
        with self.read() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- set-up ---------------------------------------------------------------------------------

    def reset(self) -> None:
        """Delete the database file (and its WAL files) so the next ``migrate`` starts fresh."""
        while not self._pool.empty():
            self._pool.get_nowait().close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def migrate(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.read() as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")

    def seed(self, rules_data: Path, stock_csv: Path = STOCK_CSV) -> None:
        """Fill master data and stock if the database has no customers yet."""
        master = MasterData.load(rules_data)
        stock = read_stock(stock_csv)
        with self.transaction() as conn:
            if conn.execute("SELECT count(*) FROM customers").fetchone()[0]:
                return
            conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?)",
                             [(c.id, c.name, c.country, c.currency, c.email) for c in master.customers.values()])
            conn.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?)",
                             [(i.sku, i.description, i.unit, price_text(i.unit_price), i.currency, int(i.active))
                              for i in master.items.values()])
            conn.executemany("INSERT INTO prices VALUES (?, ?, ?, ?)",
                             [(cid, sku, cur, price_text(p)) for (cid, sku), (cur, p) in master.prices.items()])
            conn.executemany("INSERT INTO stock (sku, warehouse, on_hand) VALUES (?, ?, ?)", stock)

    # -- master data ----------------------------------------------------------------------------

    def customer(self, customer_id: str) -> sqlite3.Row | None:
        with self.read() as conn:
            return conn.execute("SELECT * FROM customers WHERE id = ?", (customer_id,)).fetchone()

    def customers(self, text: str = "") -> list[sqlite3.Row]:
        """Customers whose number or name contains ``text`` (case-insensitive), by number."""
        needle = text.strip().casefold()
        with self.read() as conn:
            rows = conn.execute("SELECT * FROM customers ORDER BY id").fetchall()
        return [r for r in rows if needle in f"{r['id']} {r['name']}".casefold()]

    def item(self, sku: str) -> sqlite3.Row | None:
        with self.read() as conn:
            return conn.execute("SELECT * FROM items WHERE sku = ?", (sku,)).fetchone()

    def price(self, customer_id: str, sku: str) -> str | None:
        """The customer's price for ``sku`` (their price list first, else the list price)."""
        with self.read() as conn:
            row = (conn.execute("SELECT unit_price FROM prices WHERE customer_id = ? AND sku = ?",
                                (customer_id, sku)).fetchone()
                   or conn.execute("SELECT unit_price FROM items WHERE sku = ?", (sku,)).fetchone())
        return row["unit_price"] if row else None

    # -- ERP orders -----------------------------------------------------------------------------

    def create_order(self, header: dict, lines: list[dict], unique_po: bool = False) -> str:
        """Store an order with status ``Open``; returns its number. ``DuplicatePO`` if ``unique_po`` forbids it."""
        with self.transaction() as conn:
            if unique_po:
                dup = conn.execute("SELECT number FROM orders WHERE customer_id = ? AND customer_po = ? "
                                   "ORDER BY id LIMIT 1", (header["customer_id"], header["customer_po"])).fetchone()
                if dup:
                    raise DuplicatePO(dup["number"])
            order_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM orders").fetchone()[0]
            number = f"SO-{100000 + order_id}"
            conn.execute(
                f"INSERT INTO orders (id, number, {', '.join(HEADER_COLUMNS)}, status, created_at) "
                f"VALUES (?, ?, {', '.join('?' * len(HEADER_COLUMNS))}, 'Open', ?)",
                (order_id, number, *(header[c] for c in HEADER_COLUMNS), _now()))
            conn.executemany(
                "INSERT INTO order_lines VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(order_id, n, l["sku"], l["description"], l["qty"], l["unit"], l["unit_price"])
                 for n, l in enumerate(lines, start=1)])
        return number

    def find_orders(self, customer_po: str, offset: int, limit: int) -> list[sqlite3.Row]:
        """Orders with exactly this customer PO (all when blank), newest first."""
        where, args = ("WHERE customer_po = ?", [customer_po]) if customer_po else ("", [])
        with self.read() as conn:
            return conn.execute(f"SELECT * FROM orders {where} ORDER BY id DESC LIMIT ? OFFSET ?",
                                (*args, limit, offset)).fetchall()

    def order(self, number: str) -> tuple[sqlite3.Row, list[sqlite3.Row], sqlite3.Row | None] | None:
        """``(order joined with customer name, lines, release or None)``, or ``None`` if unknown."""
        with self.read() as conn:
            order = conn.execute("SELECT o.*, c.name AS customer_name FROM orders o "
                                 "LEFT JOIN customers c ON c.id = o.customer_id WHERE o.number = ?",
                                 (number,)).fetchone()
            if order is None:
                return None
            lines = conn.execute("SELECT * FROM order_lines WHERE order_id = ? ORDER BY line_no",
                                 (order["id"],)).fetchall()
            release = conn.execute("SELECT * FROM releases WHERE order_number = ?", (number,)).fetchone()
        return order, lines, release

    # -- WMS ------------------------------------------------------------------------------------

    def stock(self, sku: str = "") -> list[dict]:
        """Stock rows (sku, warehouse, on_hand, reserved, available) for ``sku`` or all items."""
        where, args = ("WHERE sku = ?", [sku]) if sku else ("", [])
        with self.read() as conn:
            rows = conn.execute(f"SELECT * FROM stock {where} ORDER BY sku, warehouse", args).fetchall()
        return [{"sku": r["sku"], "warehouse": r["warehouse"], "on_hand": r["on_hand"], "reserved": r["reserved"],
                 "available": qty_text(Decimal(r["on_hand"]) - Decimal(r["reserved"]))} for r in rows]

    def release(self, order_number: str) -> Release:
        """Reserve stock for every line of an ERP order, all or nothing; ``ReleaseRefused`` says why not."""
        with self.transaction() as conn:
            order = conn.execute("SELECT id FROM orders WHERE number = ?", (order_number,)).fetchone()
            if order is None:
                raise ReleaseRefused([f"Unknown ERP order {order_number}"])
            done = conn.execute("SELECT wms_ref FROM releases WHERE order_number = ?", (order_number,)).fetchone()
            if done:
                raise ReleaseRefused([f"Order {order_number} is already released as {done['wms_ref']}"])
            wanted: dict[str, Decimal] = {}
            for line in conn.execute("SELECT sku, qty FROM order_lines WHERE order_id = ? ORDER BY line_no",
                                     (order["id"],)):
                wanted[line["sku"]] = wanted.get(line["sku"], Decimal(0)) + Decimal(line["qty"])
            allocations, short = [], []
            for sku, qty in wanted.items():
                bins = conn.execute("SELECT warehouse, on_hand, reserved FROM stock WHERE sku = ? ORDER BY warehouse",
                                    (sku,)).fetchall()
                free = [(b["warehouse"], Decimal(b["on_hand"]) - Decimal(b["reserved"]), Decimal(b["reserved"]))
                        for b in bins]
                available = sum((f for _, f, _ in free if f > 0), Decimal(0))
                if available < qty:
                    short.append(f"Insufficient stock: {sku} requested {qty_text(qty)}, available {qty_text(available)}")
                    continue
                remaining = qty
                for warehouse, free_qty, reserved in free:
                    take = min(remaining, max(free_qty, Decimal(0)))
                    if take > 0:
                        allocations.append((sku, warehouse, take, reserved + take))
                        remaining -= take
            if short:
                raise ReleaseRefused(short)
            release_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM releases").fetchone()[0]
            wms_ref = f"WMS-{release_id:06d}"
            conn.execute("INSERT INTO releases VALUES (?, ?, ?, ?)", (release_id, wms_ref, order_number, _now()))
            for sku, warehouse, take, new_reserved in allocations:
                conn.execute("UPDATE stock SET reserved = ? WHERE sku = ? AND warehouse = ?",
                             (qty_text(new_reserved), sku, warehouse))
                conn.execute("INSERT INTO release_lines VALUES (?, ?, ?, ?)",
                             (release_id, sku, warehouse, qty_text(take)))
            conn.execute("UPDATE orders SET status = 'Released' WHERE id = ?", (order["id"],))
        return Release(wms_ref, [{"sku": s, "warehouse": w, "qty": qty_text(t)} for s, w, t, _ in allocations])


def read_stock(path: Path) -> list[tuple[str, str, str]]:
    """``(sku, warehouse, on_hand)`` rows of a stock CSV; ``ConfigError`` naming file:line on bad data."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read stock list: {exc}") from exc
    rows = []
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ("sku", "warehouse", "on_hand") if c not in (reader.fieldnames or [])]
        if missing:
            raise ConfigError(f"{path}:1: missing column(s) {', '.join(missing)}")
        for row in reader:
            try:
                on_hand = Decimal(row["on_hand"].strip())
            except InvalidOperation:
                raise ConfigError(f"{path}:{reader.line_num}: column 'on_hand': {row['on_hand']!r} "
                                  f"is not a number") from None
            if not on_hand.is_finite() or on_hand < 0:
                raise ConfigError(f"{path}:{reader.line_num}: column 'on_hand' must be a number >= 0")
            rows.append((row["sku"].strip(), row["warehouse"].strip(), qty_text(on_hand)))
    return rows


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
