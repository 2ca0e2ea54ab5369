"""The work-item store: orders, their states, leases, event history and outbox, in SQLite.

Contract:
- ``Store(path)`` opens (creating) the database, sets WAL, a busy timeout and
  ``synchronous=FULL``, and applies migrations. One ``Store`` per thread.
- ``add_order`` inserts a new work item in ``received``, once per source and
  once per (customer, PO): a second source with the same PO is stored as a
  duplicate (``duplicate_of`` set) so the rules can hold or reject it.
  ``add_orders`` does the same for a batch, in one transaction (bulk intake). The
  first claim of those orders through the same ``Store`` gets the very ``Order``
  objects back instead of decoding their JSON again (the caller must not change
  them after adding; each is handed out once).
- ``claim(step, owner)`` is a context manager yielding one ``WorkItem`` (or
  ``None`` when there is no work). The claim takes a lease atomically: two
  workers, threads or processes, never hold the same item. On exit the lease is
  released; a ``BusinessError`` holds or rejects the item; any other exception
  counts an attempt and moves it to ``retry_wait`` with exponential backoff, or
  to ``failed`` after ``step.max_attempts``. ``BaseException`` (kill, Ctrl-C)
  leaves the lease to expire, and the item is then claimable again with
  ``item.recovered`` set when it sat in the step's ``working`` state.
- ``claim_batch(step, owner, limit)`` leases many items and commits all their
  transitions in one transaction (for steps without outside side effects).
- ``transition`` checks the move is legal, appends an event and writes any
  outbox notices in the same transaction. Events are never updated or deleted.
- Durability: a commit is fsynced when something outside the database may act on
  it: orders added (a file, mail or portal PO is moved on or acknowledged next), a
  move into a step's ``working`` state (the ERP submit, the WMS release follow),
  notices taken for sending, a notice marked sent, a person's decision, and every
  ``transaction()`` (durable unless asked otherwise). Other commits are not: leases
  (claim, release, extend) and transitions made outside ``transaction()`` that record
  a step's result (validation outcomes, ``in_erp``, ``released``). A killed process loses none of them
  (the WAL is in the OS already); a power cut may lose the latest, which only puts
  an item back where its step is safely done again: the ERP is searched before any
  re-submit, a WMS release is idempotent, and notices are fsynced before they are
  sent. WAL keeps commits in order, so each fsynced commit makes all before it durable.
"""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

from . import states
from .errors import ApplicationError, BusinessError, OrderbotsError
from .migrations import migrate
from . import notices as notices_for
from .model import Finding, Order
from .notices import Notice
from .states import Step

log = logging.getLogger(__name__)


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class UnknownOrder(OrderbotsError):
    """No order has the given key."""


class UnknownNotice(OrderbotsError):
    """No outbox notice with that id."""


class IllegalTransition(OrderbotsError):
    """A transition that the state machine does not allow."""


@dataclass
class AddResult:
    """What ``add_order`` did: ``created`` False means the source was seen before."""

    key: str | None
    created: bool
    duplicate_of: str | None = None


@dataclass
class WorkItem:
    """An order as a unit of work, as read from the store."""

    id: int
    key: str
    state: str
    order: Order
    findings: list[Finding]
    attempts: int
    resume_step: str | None
    erp_number: str | None
    wms_ref: str | None
    duplicate_of: str | None
    last_error: str | None
    lease_owner: str | None
    created_at: str
    updated_at: str
    recovered: bool = False

    @classmethod
    def from_row(cls, row: sqlite3.Row, recovered: bool = False, order: Order | None = None) -> "WorkItem":
        """The item of ``row``; ``order``, when given, is its order already decoded."""
        return cls(
            id=row["id"], key=row["key"], state=row["state"],
            order=order or Order.from_dict(json.loads(row["order_json"])),
            findings=[Finding(**f) for f in json.loads(row["findings_json"])],
            attempts=row["attempts"], resume_step=row["resume_step"],
            erp_number=row["erp_number"], wms_ref=row["wms_ref"],
            duplicate_of=row["duplicate_of"], last_error=row["last_error"],
            lease_owner=row["lease_owner"], created_at=row["created_at"],
            updated_at=row["updated_at"], recovered=recovered,
        )


def _decision(method):
    """A person's decision: read and recorded in one fsynced transaction (the person is told it is done)."""
    @functools.wraps(method)
    def decided(self: "Store", *args, **kwargs):
        with self.transaction():
            return method(self, *args, **kwargs)
    return decided


class Store:
    """See module docstring."""

    def __init__(self, path: str | Path, *, synchronous: str = "FULL"):
        self.path = Path(path)
        self.synchronous = synchronous.upper()
        self._added: dict[str, Order] = {}  # order JSON written by add_orders -> its Order, until claimed
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), timeout=60, isolation_level=None,
                                  check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA busy_timeout = 60000")
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute(f"PRAGMA synchronous = {synchronous}")
        self.db.execute("PRAGMA foreign_keys = ON")
        migrate(self.db)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``); nested calls join the outer one. ``durable=False``
        commits without an fsync (see "Durability" in the module docstring) unless the store was opened
        with a weaker ``synchronous`` anyway."""
        if self.db.in_transaction:
            yield self.db
            return
        relaxed = not durable and self.synchronous in ("FULL", "EXTRA")
        if relaxed:
            self.db.execute("PRAGMA synchronous = NORMAL")
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        finally:
            if relaxed:
                self.db.execute(f"PRAGMA synchronous = {self.synchronous}")

    # -- intake -------------------------------------------------------------

    def source_seen(self, ref: str) -> bool:
        """Whether a source (file sha256, Message-ID, ...) was recorded before."""
        return self.db.execute("SELECT 1 FROM sources WHERE ref = ?", (ref,)).fetchone() is not None

    def order_from_source(self, source_ref: str) -> str | None:
        """Key of the order imported from ``source_ref`` (``Order.source_ref``), or None."""
        row = self.db.execute("SELECT key FROM orders WHERE source_ref = ?", (source_ref,)).fetchone()
        return row["key"] if row else None

    def record_source(self, ref: str, kind: str, name: str = "", outcome: str = "", orders: int = 0) -> bool:
        """Record a source once; return False if it was already recorded."""
        cur = self.db.execute(
            "INSERT OR IGNORE INTO sources (ref, kind, name, seen_at, outcome, orders) VALUES (?,?,?,?,?,?)",
            (ref, kind, name, utcnow(), outcome, orders))
        return cur.rowcount == 1

    def add_order(self, order: Order, actor: str = "intake", notices: list[Notice] = ()) -> AddResult:
        """Insert ``order`` in ``received``; see module docstring for the dedupe rules."""
        return self.add_orders([(order, notices)], actor)[0]

    def add_orders(self, batch: Iterable[tuple[Order, list[Notice]]], actor: str = "intake") -> list[AddResult]:
        """``add_order`` for each ``(order, notices)`` of ``batch`` in turn, with the same results, in one
        transaction and a few statements for the whole batch (bulk intake: a file of 10,000 orders)."""
        batch = list(batch)
        results: list[AddResult] = []
        orders, events, outbox = [], [], []
        with self.transaction() as db:
            seen = self._known_sources([order.source_ref for order, _ in batch])
            originals = self._originals({(order.customer.id, order.po_number) for order, _ in batch})
            stored: dict[tuple[str, str], int] = {}  # rows per (customer, PO), for the duplicates' keys
            now = utcnow()
            for order, notices in batch:
                if order.source_ref in seen:
                    results.append(AddResult(None, False))
                    continue
                seen.add(order.source_ref)
                po = (order.customer.id, order.po_number)
                key, duplicate_of = order.key, originals.get(po)
                if duplicate_of is None:
                    originals[po], stored[po] = key, 1  # the first row of this (customer, PO)
                else:
                    if po not in stored:
                        stored[po] = db.execute("SELECT COUNT(*) FROM orders WHERE customer_id = ? AND po_number = ?",
                                                po).fetchone()[0]
                    stored[po] += 1
                    key = f"{order.key}#{stored[po]}"
                text = _JSON(order.to_dict())
                orders.append((key, order.customer.id, order.po_number, duplicate_of, order.channel,
                               order.source_ref, states.RECEIVED, text, order.received_at.isoformat(), now, now))
                self._remember(text, order)
                reason = f"duplicate of {duplicate_of}" if duplicate_of else f"from {order.channel}"
                events.append(_event_row(key, actor, None, states.RECEIVED, reason, {"source_ref": order.source_ref},
                                         now))
                outbox += _outbox_rows(key, notices, now)
                results.append(AddResult(key, True, duplicate_of))
            db.executemany(
                """INSERT INTO orders (key, customer_id, po_number, duplicate_of, channel, source_ref, state,
                       order_json, received_at, created_at, updated_at)
                   VALUES (?,?,?,?,?,?,?,?,?,?,?)""", orders)
            db.executemany(_EVENT_SQL, events)
            db.executemany(_OUTBOX_SQL, outbox)
        return results

    def _known_sources(self, refs: list[str]) -> set[str]:
        """Those of ``refs`` that an order was imported from."""
        known: set[str] = set()
        for chunk in _chunks(refs, 500):
            known.update(r[0] for r in self.db.execute(
                f"SELECT source_ref FROM orders WHERE source_ref IN ({','.join('?' * len(chunk))})", chunk))
        return known

    def _originals(self, pos: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Key of the original (not duplicate) order per (customer id, PO) of ``pos`` that has one."""
        found: dict[tuple[str, str], str] = {}
        for chunk in _chunks(list(pos), 400):
            rows = self.db.execute(
                f"""WITH wanted(customer_id, po_number) AS (VALUES {','.join(['(?,?)'] * len(chunk))})
                    SELECT o.customer_id, o.po_number, o.key FROM wanted w JOIN orders o
                      ON o.customer_id = w.customer_id AND o.po_number = w.po_number
                    WHERE o.duplicate_of IS NULL""", [v for po in chunk for v in po])
            found.update(((c, p), k) for c, p, k in rows)
        return found

    # -- reading ------------------------------------------------------------

    def get(self, key: str) -> WorkItem:
        """The work item with ``key`` (or numeric id); ``UnknownOrder`` if none."""
        row = self.db.execute("SELECT * FROM orders WHERE key = ? OR CAST(id AS TEXT) = ?", (key, key)).fetchone()
        if row is None:
            raise UnknownOrder(f"no order with key {key!r}; list them with `orderbots orders`")
        return WorkItem.from_row(row)

    def items(self, state: str | None = None, limit: int | None = None) -> list[WorkItem]:
        """Work items, oldest first, optionally only in ``state``."""
        sql, args = "SELECT * FROM orders", []
        if state:
            sql, args = sql + " WHERE state = ?", [state]
        sql += " ORDER BY id"
        if limit:
            sql, args = sql + " LIMIT ?", args + [limit]
        return [WorkItem.from_row(r) for r in self.db.execute(sql, args)]

    def counts(self) -> dict[str, int]:
        """Number of work items per state."""
        return {r[0]: r[1] for r in self.db.execute("SELECT state, COUNT(*) FROM orders GROUP BY state")}

    def events(self, key: str) -> list[dict[str, Any]]:
        """The full history of one order, oldest first."""
        rows = self.db.execute("SELECT * FROM events WHERE order_key = ? ORDER BY id", (key,))
        return [{**dict(r), "data": json.loads(r["data_json"])} for r in rows]

    # -- claiming -----------------------------------------------------------

    @contextmanager
    def claim(self, step: Step, owner: str, lease: float = 300.0) -> Iterator[WorkItem | None]:
        """Lease one item for ``step``; see module docstring for what exit does."""
        items = self._take(step, owner, lease, 1)
        if not items:
            yield None
            return
        item = items[0]
        try:
            yield item
        except BusinessError as exc:
            self._settle([item], owner, lambda: self.hold_or_reject(item.key, exc, owner, step))
        except Exception as exc:  # noqa: BLE001 - any failure of a step is an application exception
            self._settle([item], owner, lambda: self._fail_all([item], step, exc, owner))
        else:
            self._release([item], owner)

    @contextmanager
    def claim_batch(self, step: Step, owner: str, limit: int = 500,
                    lease: float = 300.0) -> Iterator[list[WorkItem]]:
        """Lease up to ``limit`` items at once, for bulk steps (validation).

        Do the work outside any transaction, then record all transitions in ONE commit
        (``transition_many``, or ``transition`` calls inside one ``store.transaction()``):
        what makes bulk steps fast. The leases are released on exit. If the body
        raises, every item still in the state it was claimed in counts a failed
        attempt (``retry_wait``/``failed``); if it is interrupted (Ctrl-C), the leases are
        released at once.
        """
        items = self._take(step, owner, lease, limit)
        try:
            yield items
        except Exception as exc:  # noqa: BLE001 - the batch failed as a whole: an application exception
            claimed = {i.id: i.state for i in items}
            current = {r["id"]: r["state"] for r in self.db.execute(
                f"SELECT id, state FROM orders WHERE id IN ({','.join('?' * len(items))})", list(claimed))}
            untouched = [i for i in items if current.get(i.id) == claimed[i.id]]
            self._settle(items, owner, lambda: self._fail_all(untouched, step, exc, owner))
        except BaseException:
            self._release(items, owner)  # interrupted: bulk steps have no outside effect to recover
            raise
        else:
            self._release(items, owner)

    def _fail_all(self, items: list[WorkItem], step: Step, exc: Exception, owner: str) -> None:
        if not isinstance(exc, ApplicationError):
            log.error("unexpected error in %s on %s", step.name, ", ".join(i.key for i in items), exc_info=exc)
        for item in items:
            self.fail_attempt(item.key, step, exc, owner)

    def _settle(self, items: list[WorkItem], owner: str, record) -> None:
        with self.transaction():
            record()
            self._release(items, owner)

    def has_work(self, step: Step) -> bool:
        """Whether ``claim(step)`` would find an item now (to skip costly set-up, such as a browser)."""
        sql, params = _claimable(step, time.time(), 1)
        return self.db.execute(sql, params).fetchone() is not None

    def _take(self, step: Step, owner: str, lease: float, limit: int) -> list[WorkItem]:
        now = time.time()
        claimable, params = _claimable(step, now, limit)
        with self.transaction(durable=False) as db:
            rows = db.execute(
                f"""UPDATE orders SET lease_owner = :owner, lease_expires = :expires
                    WHERE id IN ({claimable}) RETURNING *""",
                {**params, "owner": owner, "expires": now + lease}).fetchall()
            for row in rows:
                if row["state"] == step.working:
                    self._event(row["key"], owner, row["state"], row["state"],
                                "lease expired during the step: outcome unknown, recovering", {})
        rows.sort(key=lambda r: r["id"])
        return [WorkItem.from_row(r, r["state"] == step.working, self._added.pop(r["order_json"], None))
                for r in rows]

    def _remember(self, text: str, order: Order) -> None:
        """Keep ``order`` (stored as ``text``) for its first claim; at most ``ADDED_KEPT`` at a time."""
        if len(self._added) >= ADDED_KEPT:
            self._added.clear()
        self._added[text] = order

    def extend_lease(self, key: str, owner: str, lease: float = 300.0) -> bool:
        """Push the lease of an item this owner holds; False if it no longer holds it."""
        with self.transaction(durable=False) as db:
            cur = db.execute("UPDATE orders SET lease_expires = ? WHERE key = ? AND lease_owner = ?",
                             (time.time() + lease, key, owner))
        return cur.rowcount == 1

    def _release(self, items: list[WorkItem], owner: str) -> None:
        if items:
            with self.transaction(durable=False) as db:
                db.execute("UPDATE orders SET lease_owner = NULL, lease_expires = NULL"
                           f" WHERE lease_owner = ? AND id IN ({','.join('?' * len(items))})",
                           (owner, *(item.id for item in items)))

    # -- transitions --------------------------------------------------------

    def transition(self, key: str, to: str, *, actor: str, reason: str = "",
                   data: dict[str, Any] | None = None, notices: list[Notice] = (),
                   **fields: Any) -> None:
        """Move ``key`` to state ``to``, set ``fields`` (columns), append an event, enqueue notices."""
        self.transition_many([(key, to, {**fields, "reason": reason, "data": data, "notices": notices})],
                             actor=actor)

    def transition_many(self, moves: list[tuple[str, str, dict[str, Any]]], *, actor: str) -> None:
        """``transition(key, to, actor=actor, **fields)`` for each ``(key, to, fields)`` of ``moves`` in turn,
        with the same checks, columns, events and notices, in one transaction of a few statements: one read
        of the current states, then one executemany per set of columns and one for all events. An unknown
        key or an illegal move raises as ``transition`` does, and nothing of ``moves`` is recorded."""
        if not moves:
            return
        with self.transaction(durable=any(to in states.WORKING for _, to, _ in moves)) as db:
            current: dict[str, str] = {}
            for chunk in _chunks(list({key for key, _, _ in moves}), 500):
                current.update(db.execute(f"SELECT key, state FROM orders WHERE key IN "
                                          f"({','.join('?' * len(chunk))})", chunk).fetchall())
            now = utcnow()
            updates: dict[tuple[str, ...], list[tuple]] = {}  # rows per set of columns
            moved: set[str] = set()
            events, outbox = [], []
            for key, to, fields in moves:
                if key in moved:  # a second move of one key: its first must be written before it
                    _update_orders(db, updates)
                    moved.clear()
                moved.add(key)
                fields = dict(fields)
                reason, data, notices = fields.pop("reason", ""), fields.pop("data", None), fields.pop("notices", ())
                unknown = fields.keys() - _SETTABLE
                if unknown:
                    raise ValueError(f"cannot set {sorted(unknown)}")
                src = current.get(key)
                if src is None:
                    raise UnknownOrder(f"no order with key {key!r}")
                if not states.allowed(src, to):
                    raise IllegalTransition(f"{key}: cannot go from {src} to {to}")
                current[key] = to
                columns = {"state": to, "updated_at": now, **_column_values(fields)}
                updates.setdefault(tuple(columns), []).append((*columns.values(), key))
                events.append(_event_row(key, actor, src, to, reason, data or {}, now))
                outbox += _outbox_rows(key, notices, now)
            _update_orders(db, updates)
            db.executemany(_EVENT_SQL, events)
            if outbox:
                db.executemany(_OUTBOX_SQL, outbox)

    def hold_or_reject(self, key: str, exc: BusinessError, actor: str, step: Step,
                       notices: list[Notice] = ()) -> None:
        """Record a business exception: ``held`` or ``rejected`` with the reason."""
        finding = Finding(exc.code, exc.severity, {"en": str(exc)})
        item = self.get(key)
        findings = [*item.findings, finding]
        if exc.severity == "reject":
            notices = [*notices, *notices_for.rejected(item.order, key, findings)]
        self.transition(key, states.HELD if exc.severity == "hold" else states.REJECTED, actor=actor,
                        reason=f"{exc.code}: {exc}", findings=findings, resume_step=step.name, notices=notices)

    def note(self, key: str, actor: str, reason: str, *, finding: Finding | None = None,
             data: dict[str, Any] | None = None) -> None:
        """Record what happened to ``key`` without moving it (in any state, terminal ones too): an event from
        and to its current state, and ``finding`` (if given) added to its findings."""
        with self.transaction() as db:
            row = db.execute("SELECT state, findings_json FROM orders WHERE key = ?", (key,)).fetchone()
            if row is None:
                raise UnknownOrder(f"no order with key {key!r}")
            if finding is not None:
                findings = [*json.loads(row["findings_json"]), finding.__dict__]
                db.execute("UPDATE orders SET findings_json = ?, updated_at = ? WHERE key = ?",
                           (json.dumps(findings, ensure_ascii=False), utcnow(), key))
            self._event(key, actor, row["state"], row["state"], reason, data or {})

    def fail_attempt(self, key: str, step: Step, exc: BaseException, actor: str) -> str:
        """Count a failed attempt: ``retry_wait`` with backoff, or ``failed``. Returns the new state."""
        item = self.get(key)
        attempts = item.attempts + 1
        error = f"{type(exc).__name__}: {exc}"
        if attempts >= step.max_attempts:
            self.transition(key, states.FAILED, actor=actor, attempts=attempts, resume_step=step.name,
                            last_error=error, reason=f"attempt {attempts}/{step.max_attempts} failed, giving up: {error}")
            return states.FAILED
        delay = step.delay(attempts)
        self.transition(key, states.RETRY_WAIT, actor=actor, attempts=attempts, resume_step=step.name,
                        next_attempt_at=time.time() + delay, last_error=error,
                        reason=f"attempt {attempts}/{step.max_attempts} failed, retry in {delay:.0f}s: {error}")
        return states.RETRY_WAIT

    # -- people -------------------------------------------------------------

    @_decision
    def approve(self, key: str, actor: str, reason: str = "") -> str:
        """A person accepts a held order: it continues from the step that held it."""
        item = self.get(key)
        if item.state != states.HELD:
            raise IllegalTransition(f"{key} is {item.state}; only held orders can be approved")
        step = states.STEPS.get(item.resume_step or "validate", states.VALIDATE)
        self.transition(key, step.on_approve, actor=actor, reason=reason or "approved", attempts=0)
        return step.on_approve

    @_decision
    def reject(self, key: str, actor: str, reason: str) -> None:
        """A person rejects an order; the customer is told the reason through the outbox."""
        finding = Finding("rejected_by_person", "reject", {"en": reason})
        item = self.get(key)
        findings = [*item.findings, finding]
        self.transition(key, states.REJECTED, actor=actor, reason=reason, findings=findings,
                        notices=notices_for.rejected(item.order, key, findings))

    @_decision
    def retry(self, key: str, actor: str, reason: str = "") -> None:
        """A person asks for a failed or held item's step to run again now."""
        item = self.get(key)
        if item.state not in (states.FAILED, states.HELD, states.RETRY_WAIT):
            raise IllegalTransition(f"{key} is {item.state}; only failed, held or waiting orders can be retried")
        self.transition(key, states.RETRY_WAIT, actor=actor, reason=reason or "retry requested",
                        attempts=0, next_attempt_at=0, resume_step=item.resume_step or "validate")

    @_decision
    def edit(self, key: str, order: Order, actor: str, reason: str = "", changes: list[str] = ()) -> None:
        """A person corrects a held order; it goes back to ``received`` to be validated again.

        Refused once the order is in the ERP (it would be keyed twice): correct it there, then approve.
        ``changes`` (``field: old -> new``) are kept in the history.
        """
        item = self.get(key)
        if item.state != states.HELD:
            raise IllegalTransition(f"{key} is {item.state}; only held orders can be edited")
        if item.erp_number:
            raise IllegalTransition(f"{key} is already in the ERP as {item.erp_number}: correct it there, "
                                    "then approve it here")
        self.transition(key, states.RECEIVED, actor=actor, reason=reason or "edited", order=order, findings=[],
                        data={"changes": list(changes)} if changes else None)

    # -- events and outbox --------------------------------------------------

    def _event(self, key: str, actor: str, src: str | None, dst: str, reason: str, data: dict) -> None:
        self.db.execute(_EVENT_SQL, _event_row(key, actor, src, dst, reason, data, utcnow()))

    def _enqueue(self, key: str | None, notices: list[Notice]) -> None:
        if notices:
            self.db.executemany(_OUTBOX_SQL, _outbox_rows(key, notices, utcnow()))

    def enqueue(self, notices: list[Notice]) -> None:
        """Add notices not tied to a state change (digests); each dedupe key once."""
        with self.transaction():
            self._enqueue(None, notices)

    def pending_notices(self, limit: int = 100) -> list[sqlite3.Row]:
        """Unsent notices whose next attempt is due, oldest first."""
        return self.db.execute(
            "SELECT * FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= ? ORDER BY id LIMIT ?",
            (time.time(), limit)).fetchall()

    def claim_notices(self, limit: int, lease: float = 300.0, after_id: int = 0) -> list[sqlite3.Row]:
        """Take up to ``limit`` due, unsent notices with an id above ``after_id`` for sending, oldest first,
        in one commit: they are not due again for ``lease`` seconds, so a second sender skips them and a
        crashed sender's come back. Give back the ones neither sent nor failed with ``release_notices``."""
        now = time.time()
        with self.transaction() as db:  # fsynced: what is sent next must survive a power cut
            rows = db.execute(
                """UPDATE outbox SET next_attempt_at = ? WHERE id IN (
                       SELECT id FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= ? AND id > ?
                       ORDER BY id LIMIT ?)
                   RETURNING *""", (now + lease, now, after_id, limit)).fetchall()
        return sorted(rows, key=lambda r: r["id"])

    def release_notices(self, notice_ids: list[int]) -> None:
        """Make claimed notices that were neither sent nor failed due again at once."""
        if notice_ids:
            with self.transaction(durable=False) as db:
                db.execute(f"UPDATE outbox SET next_attempt_at = ? WHERE sent_at IS NULL AND id IN "
                           f"({','.join('?' * len(notice_ids))})", (time.time(), *notice_ids))

    def mark_sent(self, notice_id: int) -> None:
        self.db.execute("UPDATE outbox SET sent_at = ?, last_error = NULL WHERE id = ?", (utcnow(), notice_id))

    def mark_send_failed(self, notice_id: int, error: str, retry_in: float) -> None:
        """Count a failed attempt; due again in ``retry_in`` seconds (``math.inf``: given up, never due)."""
        self.db.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
                        (error, time.time() + retry_in, notice_id))

    def resend_notice(self, notice_id: int, actor: str, recipient: str | None = None) -> sqlite3.Row:
        """A person sends an unsent (e.g. given-up) notice again, with fresh attempts, optionally to
        ``recipient``; the order's history records it. A sent notice is never sent twice."""
        with self.transaction() as db:
            row = db.execute("SELECT * FROM outbox WHERE id = ?", (notice_id,)).fetchone()
            if row is None:
                raise UnknownNotice(f"no notice with id {notice_id}; see `orderbots notices`")
            if row["sent_at"]:
                raise IllegalTransition(f"notice {notice_id} was sent at {row['sent_at']}; it is not sent twice")
            to = recipient or row["recipient"]
            db.execute("UPDATE outbox SET recipient = ?, attempts = 0, next_attempt_at = 0, last_error = NULL"
                       " WHERE id = ?", (to, notice_id))
            if row["order_key"]:
                self.note(row["order_key"], actor, f"{row['kind']} notice {notice_id} to be sent again to {to}",
                          data={"notice": notice_id, "previous_recipient": row["recipient"],
                                "previous_error": row["last_error"]})
            return db.execute("SELECT * FROM outbox WHERE id = ?", (notice_id,)).fetchone()

    def notices(self, status: str = "undeliverable", limit: int = 100) -> list[sqlite3.Row]:
        """Outbox notices by ``status`` (a ``NOTICE_STATUS`` key): unsent oldest first, ``sent``/``all`` newest first."""
        where = NOTICE_STATUS[status]
        order = "DESC" if status in ("sent", "all") else ""
        return self.db.execute(f"SELECT * FROM outbox WHERE {where} ORDER BY id {order} LIMIT ?",
                               (limit,)).fetchall()

    # -- sync state (IMAP UIDs, portal watermarks) --------------------------

    def get_sync(self, name: str) -> dict[str, Any]:
        row = self.db.execute("SELECT data_json FROM sync_state WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else {}

    def set_sync(self, name: str, data: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO sync_state (name, data_json, updated_at) VALUES (?,?,?) "
            "ON CONFLICT(name) DO UPDATE SET data_json = excluded.data_json, updated_at = excluded.updated_at",
            (name, json.dumps(data), utcnow()))


def _update_orders(db: sqlite3.Connection, updates: dict[tuple[str, ...], list[tuple]]) -> None:
    """Run and clear ``updates``: rows of (values of the columns named by the key..., order key)."""
    for names, rows in updates.items():
        db.executemany(f"UPDATE orders SET {', '.join(f'{c} = ?' for c in names)} WHERE key = ?", rows)
    updates.clear()


def _column_values(fields: dict[str, Any]) -> dict[str, Any]:
    """The ``orders`` columns that ``transition`` ``fields`` set (findings and order as JSON)."""
    columns = {}
    for name, value in fields.items():
        if name == "findings":
            columns["findings_json"] = _JSON([f.__dict__ for f in value])
        elif name == "order":
            columns["order_json"] = _JSON(value.to_dict())
        else:
            columns[name] = value
    return columns


ADDED_KEPT = 50_000  # orders kept by Store._remember: a large file's worth
NOTICE_STATUS = {  # outbox rows by what happened to them; a given-up notice is due at +infinity
    "undeliverable": "sent_at IS NULL AND next_attempt_at >= 9e999",
    "waiting": "sent_at IS NULL AND next_attempt_at < 9e999",
    "sent": "sent_at IS NOT NULL",
    "all": "1",
}
_SETTABLE = {"erp_number", "wms_ref", "findings", "resume_step", "attempts", "next_attempt_at", "last_error", "order"}
_JSON = json.JSONEncoder(ensure_ascii=False).encode
_DATA_JSON = json.JSONEncoder(ensure_ascii=False, default=str).encode
_EVENT_SQL = ("INSERT INTO events (order_key, at, actor, from_state, to_state, reason, data_json)"
              " VALUES (?,?,?,?,?,?,?)")
_OUTBOX_SQL = ("INSERT OR IGNORE INTO outbox (dedupe_key, order_key, kind, recipient, locale, payload_json,"
               " created_at) VALUES (?,?,?,?,?,?,?)")


def _event_row(key: str, actor: str, src: str | None, dst: str, reason: str, data: dict, at: str) -> tuple:
    return key, at, actor, src, dst, reason, _DATA_JSON(data)


def _outbox_rows(key: str | None, notices: list[Notice], at: str) -> list[tuple]:
    rows = []
    for n in notices:
        order_key = n.order_key or key
        rows.append((n.dedupe_key or f"{order_key}:{n.kind}", order_key, n.kind, n.recipient, n.locale,
                     _DATA_JSON(n.payload), at))
    return rows


def _chunks(values: list, size: int) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _claimable(step: Step, now: float, limit: int) -> tuple[str, dict[str, Any]]:
    """SQL selecting the ids of up to ``limit`` items ``step`` may claim at ``now``, oldest first.

    One walk of index orders_state (state, id) per candidate state, each stopping after
    ``limit`` free rows, so a claim costs the same however many items are done (an OR of
    the states would sort every candidate row on each claim).
    """
    free = "(lease_owner IS NULL OR lease_expires < :now)"
    conditions = [f"state = :take{i}" for i in range(len(step.takes))]
    conditions.append("state = 'retry_wait' AND resume_step = :step AND next_attempt_at <= :now")
    if step.working:
        conditions.append("state = :working")
    first_free = " UNION ALL ".join(
        f"SELECT id FROM (SELECT id FROM orders WHERE {c} AND {free} ORDER BY id LIMIT :limit)" for c in conditions)
    params = {"now": now, "step": step.name, "limit": limit, "working": step.working,
              **{f"take{i}": s for i, s in enumerate(step.takes)}}
    return f"SELECT id FROM ({first_free}) ORDER BY id LIMIT :limit", params
