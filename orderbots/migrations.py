"""Versioned schema migrations, applied in order at start-up (``PRAGMA user_version``).

Append a new function to ``MIGRATIONS`` to change the schema; never edit one
that has shipped.
"""

from __future__ import annotations

import sqlite3


def _v1_initial(db: sqlite3.Connection) -> None:
    _run_script(
        db,
        """
        CREATE TABLE orders (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL UNIQUE,
            customer_id TEXT NOT NULL,
            po_number TEXT NOT NULL,
            duplicate_of TEXT,
            channel TEXT NOT NULL,
            source_ref TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL,
            order_json TEXT NOT NULL,
            findings_json TEXT NOT NULL DEFAULT '[]',
            received_at TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            resume_step TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL,
            lease_owner TEXT,
            lease_expires REAL,
            erp_number TEXT,
            wms_ref TEXT,
            last_error TEXT
        );
        -- The idempotency key: one live order per (customer, customer PO).
        CREATE UNIQUE INDEX orders_customer_po ON orders(customer_id, po_number)
            WHERE duplicate_of IS NULL;
        CREATE INDEX orders_state ON orders(state, id);

        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            order_key TEXT NOT NULL,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            from_state TEXT,
            to_state TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            data_json TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX events_order ON events(order_key, id);
        CREATE TRIGGER events_no_update BEFORE UPDATE ON events
            BEGIN SELECT RAISE(ABORT, 'event history is append-only'); END;
        CREATE TRIGGER events_no_delete BEFORE DELETE ON events
            BEGIN SELECT RAISE(ABORT, 'event history is append-only'); END;

        CREATE TABLE sources (
            ref TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            seen_at TEXT NOT NULL,
            outcome TEXT NOT NULL DEFAULT '',
            orders INTEGER NOT NULL DEFAULT 0
        );

        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            dedupe_key TEXT NOT NULL UNIQUE,
            order_key TEXT,
            kind TEXT NOT NULL,
            recipient TEXT NOT NULL,
            locale TEXT NOT NULL DEFAULT 'en',
            payload_json TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            sent_at TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0,
            last_error TEXT
        );
        CREATE INDEX outbox_pending ON outbox(sent_at, next_attempt_at);

        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            bot TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            status TEXT NOT NULL DEFAULT 'running',
            counts_json TEXT NOT NULL DEFAULT '{}',
            error TEXT,
            artifacts_dir TEXT NOT NULL DEFAULT ''
        );

        CREATE TABLE sync_state (
            name TEXT PRIMARY KEY,
            data_json TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        """
    )


MIGRATIONS = [_v1_initial]


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Run SQL statements one by one (``executescript`` would commit the open transaction)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""


def migrate(db: sqlite3.Connection) -> int:
    """Apply pending migrations, each in its own transaction; return the schema version."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] >= number:
                db.execute("ROLLBACK")
                continue
            step(db)
            db.execute(f"PRAGMA user_version = {number}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)
