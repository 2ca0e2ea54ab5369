"""Bot portal_intake: pull purchase orders from customers' supplier portals, exactly once, and acknowledge them.

Configuration: the ``portals:`` list of ``orderbots.yaml`` (see ``load_portals``);
each portal has its own customer, user and password (read from the environment
variable named by ``password_env``). Per portal and run:

1. List the POs changed since the watermark (the store's sync state
   ``portal:<name>`` = ``{"changed": "YYYY-MM-DD HH:MM:SS"}``, the portal's own
   clock): the "Changed from" filter takes the watermark's day, rows older than
   the watermark are skipped. ``mode: detail`` (default) reads the list pages
   and each new PO's detail page; ``mode: export`` reads the CSV export.
2. Oldest change first, per PO revision (``source_ref@<last changed>``, with
   ``/cancelled`` for a cancellation; recorded in the store's ``sources``):
   - new PO -> an order (channel ``portal``, ``source_ref``
     ``portal:<name>/<PO number>``, ``raw_path`` the saved detail HTML or CSV
     rows under ``<runlog>/raw/portal/<name>/``), committed together with its
     source records; then "Acknowledge" on the portal. A crash in between
     leaves the PO ``new`` on the portal and imported here: the next run only
     acknowledges it.
   - cancelled on the portal after import -> finding ``cancelled_at_source``;
     changed after import -> ``changed_at_source`` (the change is acknowledged:
     we have it; a person compares). The order is *held* if it is
     received, validated, in_erp, retry_wait or failed (approve resumes the step
     it was at); an order already held, released, done or rejected cannot be
     held (again), so the finding is added with an event (``Store.note``) for a
     person, and a rejected one only gets the event. An order a bot is working on
     (leased, entering_erp, releasing_wms) is left for the next run.
   - cancelled before import -> recorded, nothing imported.
   The POs are shared out to ``workers`` threads (each its own browser, session
   and store connection); different POs are independent.
3. The watermark moves to the last change of the oldest-first prefix of POs
   that were finished; a PO that failed (portal error, evidence under
   ``artifacts/<run>/<portal>/<PO>/``) or was left for later is looked at again
   next run, and so is everything after it (re-looking is harmless).

Lines map onto our items by the portal's supplier item number, else the
portal's ``item_map`` (buyer item -> our SKU); an unmapped line gets an empty
SKU and the hold finding ``unmapped_item`` naming the buyer item; a line with
an unreadable quantity or price is left out with finding ``bad_line``. After
every portal, received orders are validated (``bots.validate.validate``).
A portal that cannot be listed (down, login refused) does not stop the others;
the run then ends with an ``ApplicationError`` naming it. No "order received"
mail is sent: the acknowledgement on the portal is the customer's receipt.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Iterator

from connectors.browser import Browser, BrowserOptions
from connectors.portal import PoListing, PortalScreens, PurchaseOrder
from orderbots import config as config_mod
from orderbots import states, yamlfile
from orderbots.bot import BotContext
from orderbots.errors import ApplicationError, BusinessError, ConfigError, OrderbotsError
from orderbots.masterdata import MasterData
from orderbots.model import Address, Customer, Finding, Order, OrderLine
from orderbots.runlog import safe_part
from orderbots.store import Store

from .validate import validate

log = logging.getLogger(__name__)

MODES = ("detail", "export")
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
DECIMAL = re.compile(r"\d{1,12}(\.\d{1,6})?")
KEYS = {"name", "url", "customer", "user", "password_env", "mode", "item_map", "workers", "retries", "action_timeout",
        "navigation_timeout", "capture_timeout", "trace", "trace_snapshots"}
HOLDABLE = {states.RECEIVED: states.VALIDATE, states.VALIDATED: states.ERP_ENTRY, states.IN_ERP: states.WMS_RELEASE,
            states.RETRY_WAIT: None, states.FAILED: None}  # None: the step the item was at (resume_step)
BUSY = (states.ENTERING_ERP, states.RELEASING_WMS)


# -- configuration ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PortalConfig:
    """One configured portal; ``password`` is read from the environment, never from the file."""

    name: str
    url: str
    customer: Customer
    user: str
    password: str = field(repr=False)
    mode: str = "detail"
    item_map: dict[str, str] = field(default_factory=dict)
    workers: int = 2
    retries: int = 2
    options: BrowserOptions = field(default_factory=BrowserOptions)

    @property
    def sync_name(self) -> str:
        return f"portal:{self.name}"

    def ref(self, number: str) -> str:
        return f"portal:{self.name}/{number}"


def load_portals(settings: config_mod.Settings, masterdata: MasterData) -> list[PortalConfig]:
    """The ``portals:`` list; ``ConfigError`` naming ``orderbots.yaml:<line>`` for a bad entry."""
    file = settings.home / config_mod.CONFIG_FILE
    entries = settings.data.get("portals") or []
    if not isinstance(entries, list):
        raise ConfigError(f"{yamlfile.where(file, settings.data, 'portals')}: 'portals' must be a list of portals")
    portals: list[PortalConfig] = []
    for entry in entries:
        portal = _portal(settings, entry, masterdata)
        if portal.name in {p.name for p in portals}:
            raise ConfigError(f"{yamlfile.where(file, entry, 'name')}: a second portal is named {portal.name!r}")
        portals.append(portal)
    return portals


def _portal(settings: config_mod.Settings, entry, masterdata: MasterData) -> PortalConfig:
    file = settings.home / config_mod.CONFIG_FILE
    if not isinstance(entry, dict):
        raise ConfigError(f"{file}: each entry of 'portals' must be a mapping with name, url, customer, user, "
                          "password_env")

    def fail(key: str, problem: str) -> ConfigError:
        label = entry.get("name") if isinstance(entry.get("name"), str) else "?"
        return ConfigError(f"{yamlfile.where(file, entry, key)}: portal {label!r}: {key} {problem}")

    unknown = sorted(set(entry) - KEYS)
    if unknown:
        raise fail(unknown[0], f"is not a known key; known keys: {', '.join(sorted(KEYS))}")
    for key in ("name", "url", "customer", "user", "password_env"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise fail(key, "is required (a text)")
    if not NAME.match(entry["name"]):
        raise fail("name", "must be lower-case letters, digits, '-' or '_'")
    if not re.match(r"^https?://", entry["url"]):
        raise fail("url", f"must be the portal's http(s) address, not {entry['url']!r}")
    record = masterdata.find_customer(entry["customer"])
    if record is None:
        raise fail("customer", f"{entry['customer']!r} is not in rules/data/customers.csv")
    mode = entry.get("mode", "detail")
    if mode not in MODES:
        raise fail("mode", f"must be one of {', '.join(MODES)}, not {mode!r}")
    item_map = entry.get("item_map") or {}
    if not isinstance(item_map, dict):
        raise fail("item_map", "must map buyer item numbers to our SKUs")
    unknown_skus = sorted(str(s) for s in item_map.values() if str(s) not in masterdata.items)
    if unknown_skus:
        raise fail("item_map", f"names SKU(s) not in rules/data/items.csv: {', '.join(unknown_skus)}")

    def number(key: str, default: float, kind=float):
        value = entry.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise fail(key, f"must be a number >= 0, not {value!r}")
        return kind(value)

    def flag(key: str, default: bool) -> bool:
        value = entry.get(key, default)
        if not isinstance(value, bool):
            raise fail(key, "must be true or false")
        return value

    try:
        password = config_mod.secret(entry["password_env"], f"password of portal {entry['name']}")
    except ConfigError as exc:
        raise fail("password_env", f"names a variable that is not set: {exc}") from None
    options = BrowserOptions(executable=settings.chromium,
                             action_timeout=number("action_timeout", 10.0),
                             navigation_timeout=number("navigation_timeout", 20.0),
                             capture_timeout=number("capture_timeout", 10.0), trace=flag("trace", True),
                             trace_snapshots=flag("trace_snapshots", False))
    return PortalConfig(entry["name"], entry["url"], record.as_customer(), entry["user"], password, mode,
                        {str(k).strip(): str(v) for k, v in item_map.items()}, max(1, number("workers", 2, int)),
                        number("retries", 2, int), options)


# -- running ------------------------------------------------------------------------------------

def run(ctx: BotContext, portal: str | None = None) -> None:
    """Sync every configured portal (or the one named ``portal``); see module docstring."""
    masterdata = MasterData.load(ctx.settings.rules_dir / "data")
    portals = load_portals(ctx.settings, masterdata)
    if portal is not None:
        portals = [p for p in portals if p.name == portal]
    if not portals:
        raise ConfigError(f"no portal{' ' + repr(portal) if portal else 's'} in the portals: section of "
                          f"{ctx.settings.home / config_mod.CONFIG_FILE}; add one with name, url, customer, user "
                          "and password_env")
    failed = []
    for config in portals:
        if ctx.stopping():
            break
        try:
            PortalSync(ctx, config).run()
        except ApplicationError as exc:
            log.error("portal %s: %s", config.name, exc)
            ctx.run.count("portals_failed")
            failed.append(f"portal {config.name}: {exc}")
    validate(ctx)
    if failed:
        raise ApplicationError("; ".join(failed))


@contextmanager
def portal_screens(config: PortalConfig) -> Iterator[PortalScreens]:
    """A browser with one session on ``config``'s portal (signed in on first use), closed on exit."""
    with Browser(config.options) as browser:
        session = browser.new_session(secrets=(config.password,))
        try:
            yield PortalScreens(session, config.url, config.user, config.password, retries=config.retries)
        finally:
            session.close()


class PortalSync:
    """One portal in one run: steps 1-3 of the module docstring. The listing runs on this thread; the POs are
    shared out to ``config.workers`` threads (this one included), each with its own browser and store."""

    def __init__(self, ctx: BotContext, config: PortalConfig):
        self.ctx, self.config = ctx, config
        self.raw_dir = ctx.settings.runlog_dir / "raw" / "portal" / safe_part(config.name)
        self.evidence = ctx.run.artifacts_dir / safe_part(config.name)
        self._lock = threading.Lock()

    def count(self, outcome: str) -> None:
        with self._lock:
            self.ctx.run.count(outcome)

    def run(self) -> None:
        store = self.ctx.store
        watermark = store.get_sync(self.config.sync_name).get("changed", "")
        since = date.fromisoformat(watermark[:10]) if watermark else None
        with portal_screens(self.config) as app:
            with app.session.attempt(self.evidence / "list"):
                listed = app.export(since) if self.config.mode == "export" else app.list_changed(since)
            todo = sorted((r for r in listed if r.changed >= watermark), key=lambda r: (r.changed, r.number))
            finished = self.work_through(todo, app)
        done_through = watermark
        for row in todo:
            if not finished.get(row.number):
                break
            done_through = row.changed
        if done_through != watermark:
            store.set_sync(self.config.sync_name, {"changed": done_through})
        log.info("portal %s: %d PO(s) listed, %d finished, watermark %s", self.config.name, len(todo),
                 sum(finished.values()), done_through or "-")

    def work_through(self, todo: list, app: PortalScreens) -> dict[str, bool]:
        """Handle every row (oldest first, shared out to the workers); ``{PO number: finished}``."""
        rows = deque(todo)
        finished: dict[str, bool] = {}
        errors: list[BaseException] = []

        def work(handler: "PoHandler") -> None:
            while not self.ctx.stopping():
                try:
                    row = rows.popleft()
                except IndexError:
                    return
                finished[row.number] = handler.one(row)

        def helper() -> None:
            try:
                with portal_screens(self.config) as own_app, Store(self.ctx.settings.db_path) as own_store:
                    work(PoHandler(self, own_app, own_store))
            except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread
                errors.append(exc)

        threads = [threading.Thread(target=helper, name=f"portal-{self.config.name}-{n}", daemon=True)
                   for n in range(1, min(self.config.workers, len(todo)))]
        for t in threads:
            t.start()
        try:
            work(PoHandler(self, app, self.ctx.store))
        finally:
            for t in threads:
                t.join()
        unexpected = [e for e in errors if not isinstance(e, ApplicationError)]
        if unexpected:
            raise unexpected[0]
        for exc in errors:  # a helper whose browser failed: the others took its share
            log.warning("portal %s: a worker stopped: %s", self.config.name, exc)
        return finished


class PoHandler:
    """Handles listed POs with one browser session and one store connection (one worker thread)."""

    def __init__(self, sync: PortalSync, app: PortalScreens, store: Store):
        self.sync, self.config, self.app, self.store = sync, sync.config, app, store
        self.owner, self.count = sync.ctx.owner, sync.count

    def one(self, row: PoListing | PurchaseOrder) -> bool:
        """Handle one listed PO; True when it is finished (nothing left to do for this revision)."""
        try:
            with self.app.session.attempt(self.sync.evidence / safe_part(row.number)):
                return self.handle(row)
        except OrderbotsError as exc:
            log.warning("portal %s, PO %s: %s", self.config.name, row.number, exc)
            self.count("po_errors")
            return False

    def handle(self, row: PoListing | PurchaseOrder) -> bool:
        ref = self.config.ref(row.number)
        status = row.status
        if not self.store.source_seen(revision(ref, row.changed, row.status)):
            po = row if isinstance(row, PurchaseOrder) or row.status == "cancelled" else self.app.read_po(row.number)
            status = po.status
            if not self.store.source_seen(revision(ref, po.changed, status)) and not self.take(po, ref):
                return False
        if status == "new" and self.store.source_seen(ref):
            self.count("acknowledged" if self.app.acknowledge(row.number) == "acknowledged"
                       else "cancelled_while_acknowledging")  # the cancellation is a newer revision: next run
        return True

    def take(self, po: PoListing | PurchaseOrder, ref: str) -> bool:
        """Record one new revision of a PO; False if it must wait for the next run."""
        rev = revision(ref, po.changed, po.status)
        imported = self.store.source_seen(ref)
        where = f"PO {po.number} on portal {self.config.name}"
        if po.status == "cancelled":
            if not imported:
                self.store.record_source(rev, "portal", po.number, "cancelled on the portal before import")
                self.count("cancelled_before_import")
                return True
            return self.flag(ref, rev, "cancelled_at_source", f"{where} was cancelled by the customer "
                                                              f"({po.changed} portal time)")
        raw_path = self.keep_raw(po)
        if imported:
            return self.flag(ref, rev, "changed_at_source",
                             f"{where} was changed by the customer ({po.changed} portal time, version "
                             f"{po.header.get('version') or '?'}); compare the order with {raw_path} and edit it")
        order = to_order(po, self.config, ref, raw_path)
        with self.store.transaction():
            added = self.store.add_order(order, actor=self.owner)
            self.store.record_source(ref, "portal", po.number, f"imported as {added.key}", 1)
            self.store.record_source(rev, "portal", po.number, "imported")
        self.count("imported")
        return True

    def flag(self, ref: str, rev: str, code: str, text: str) -> bool:
        """Put finding ``code`` in front of a person: hold the order, or note it (module docstring)."""
        with self.store.transaction():
            key = self.store.order_from_source(ref)
            item = self.store.get(key)
            if item.lease_owner or item.state in BUSY:
                self.count(f"{code}_deferred")
                return False
            if item.erp_number:
                text += (f"; it is already in the ERP as {item.erp_number}"
                         + (f" and released to the warehouse as {item.wms_ref}" if item.wms_ref else "")
                         + ": change or cancel it there too")
            if item.state in HOLDABLE:
                step = HOLDABLE[item.state] or states.STEPS.get(item.resume_step or "", states.VALIDATE)
                self.store.hold_or_reject(key, BusinessError(text, code=code, severity="hold"), self.owner, step)
                outcome = "held"
            else:
                finding = None if item.state == states.REJECTED else Finding(code, "hold", {"en": text})
                self.store.note(key, self.owner, f"{code}: {text}", finding=finding)
                outcome = "noted"
            self.store.record_source(rev, "portal", ref.rsplit("/", 1)[1], f"{code}: order {key} {outcome}")
        self.count(f"{code}_{outcome}")
        return True

    def keep_raw(self, po: PurchaseOrder) -> Path:
        """Save the PO as read (detail HTML or CSV rows); one file per revision."""
        stamp = po.changed.replace("-", "").replace(":", "").replace(" ", "T")
        path = self.sync.raw_dir / f"{safe_part(po.number)}@{stamp}{po.raw_suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(po.raw, encoding="utf-8")
        tmp.replace(path)
        return path


def revision(ref: str, changed: str, status: str) -> str:
    """The source key of one revision of a PO (its state as of ``changed``). A cancellation is a revision of
    its own even in the second of the one before (the portal's clock shows whole seconds); acknowledging does
    not make one (it leaves ``changed`` alone)."""
    return f"{ref}@{changed}" + ("/cancelled" if status == "cancelled" else "")


# -- mapping a PO onto our order ------------------------------------------------------------------

def to_order(po: PurchaseOrder, config: PortalConfig, ref: str, raw_path: Path) -> Order:
    """The canonical order of a portal PO for ``config.customer``; see module docstring for lines."""
    h = po.header
    problems: list[Finding] = []
    where = f"portal {config.name}, PO {po.number}"
    requested = None
    if h["delivery_date"].strip():
        try:
            requested = date.fromisoformat(h["delivery_date"].strip())
        except ValueError:
            problems.append(Finding("bad_date", "hold", {"en": f"{where}: requested delivery date "
                                                               f"{h['delivery_date']!r} is not a date YYYY-MM-DD"},
                                    "requested_date"))
    lines: list[OrderLine] = []
    for n, line in enumerate(po.lines, start=1):
        at = f"{where}, line {line['line_no'] or n}"
        qty, price = _decimal(line["qty"]), _decimal(line["unit_price"]) if line["unit_price"].strip() else None
        bad = []
        if qty is None:
            bad.append(f"quantity {line['qty']!r} is not a number")
        if line["unit_price"].strip() and price is None:
            bad.append(f"unit price {line['unit_price']!r} is not a number")
        if bad:
            problems.append(Finding("bad_line", "hold", {"en": f"{at}: {'; '.join(bad)}. The line was not imported; "
                                                               "add it by hand"}, "lines"))
            continue
        buyer_item = line["buyer_item"].strip()
        sku = line["supplier_item"].strip().upper() or config.item_map.get(buyer_item, "")
        if not sku:
            problems.append(Finding("unmapped_item", "hold", {
                "en": f"{at}: buyer item {buyer_item!r} has no supplier item number and is not in the item_map of "
                      f"portal {config.name} in orderbots.yaml; add it there and edit the order"}, "lines.sku"))
        description = line["description"].strip() or (f"buyer item {buyer_item}" if buyer_item else "")
        lines.append(OrderLine(len(lines) + 1, sku, qty, description, line["unit"].strip() or "EA", price))
    return Order("portal", ref, config.customer, po.number, lines, currency=h["currency"].strip().upper(),
                 requested_date=requested,
                 ship_to=Address(h["ship_name"].strip(), h["street"].strip(), h["city"].strip(),
                                 h["postcode"].strip(), h["country"].strip().upper()),
                 notes=h["notes"].strip(), raw_path=str(raw_path), problems=problems)


def _decimal(text: str) -> Decimal | None:
    """A plain decimal such as ``12`` or ``8.50`` as the portal shows it, else None."""
    text = text.strip()
    return Decimal(text) if DECIMAL.fullmatch(text) else None
