"""Import orders from new mail in an IMAP folder, exactly once, then file each message away.

Configuration: the ``imap:`` section of ``orderbots.yaml`` (see ``load_config``).
The store keeps ``{"uidvalidity", "last_uid"}`` per folder under the sync name
``imap:<user>@<host>/<folder>``. One run:

1. Connect, create the processed and attention folders if needed, select the folder.
2. A changed UIDVALIDITY resets ``last_uid`` to 0: every message is looked at again
   and recognised by Message-ID (see dedupe below): moved, never imported twice.
3. Messages with UID <= ``last_uid`` still in the folder were committed but not
   moved (a crash or lost connection in between): they are moved now, to where
   their recorded outcome says.
4. New messages, ``batch_size`` at a time: sizes first (larger than
   ``max_message_mb`` -> attention, never downloaded), then the rest in one
   ``UID FETCH BODY.PEEK[]`` (never marked seen). The batch's orders, source
   records, clarification notices and new ``last_uid`` are committed in ONE
   transaction; only then are its messages moved to the processed or attention
   folder (MOVE, or COPY + EXPUNGE).
5. A lost connection (``ApplicationError``) reconnects and resumes from step 1,
   up to ``max_reconnects`` times in a row without progress.

Then the imported orders are validated (``bots.validate.validate``).

Dedupe: a message is recorded in ``sources`` as ``email:<Message-ID>`` and by its
fingerprint (``mailparse.fingerprint``: Message-ID, From, Date, Subject and body,
not the trace headers). A message whose fingerprint is recorded was imported
before and is only moved. A *different* message reusing a recorded Message-ID
(it happens) is imported under ``email:<Message-ID>~<fingerprint>``.

What a message becomes (``MessageReader``): spreadsheet attachments, a typed
order in the text body, or order tables in the HTML body give orders. Unknown
sender -> the orders are held (finding ``unknown_sender``). No customer can be
named, no readable order, not an email at all, too big -> attention folder with
the reason recorded in ``sources.outcome``; a person can read it there. A
sender who wrote to us (not a bounce, list or auto-reply) and whose message had
no readable order gets a "we could not read your order" notice.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from connectors.imap import Fetched, ImapAccount, ImapMailbox
from connectors.spreadsheet import read_tables
from orderbots import mailparse, mailtext, notices, yamlfile
from orderbots.bot import BotContext
from orderbots.config import CONFIG_FILE, Settings, secret
from orderbots.errors import ApplicationError, ConfigError, InputError
from orderbots.masterdata import MasterData
from orderbots.model import Customer, Finding, Order
from orderbots.notices import Notice
from orderbots.tabular import header_aliases, orders_from_table

from .validate import validate

log = logging.getLogger(__name__)

PROCESSED, ATTENTION = "processed", "attention"
SPREADSHEET_EXTENSIONS = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods", ".csv", ".tsv")
SPREADSHEET_TYPES = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                     "application/vnd.ms-excel", "application/vnd.oasis.opendocument.spreadsheet",
                     "text/csv", "text/tab-separated-values")
_CJK = re.compile(r"[\u4e00-\u9fff]")


# -- configuration -------------------------------------------------------------

@dataclass
class EmailConfig:
    account: ImapAccount
    folder: str = "INBOX"
    processed_folder: str = "Processed"
    attention_folder: str = "Attention"
    batch_size: int = 50
    max_message_bytes: int = 25 * 1024 * 1024
    max_reconnects: int = 3
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def sync_name(self) -> str:
        return f"imap:{self.account.label}/{self.folder}"


_KEYS = {"host", "port", "security", "user", "password_env", "oauth2_token_env", "folder", "processed_folder",
         "attention_folder", "batch_size", "max_message_mb", "max_reconnects", "timeout", "aliases"}


def load_config(settings: Settings) -> EmailConfig:
    """The ``imap:`` section; ``ConfigError`` naming ``orderbots.yaml:<line>`` for a bad or missing value."""
    section = settings.section("imap")
    file = settings.home / CONFIG_FILE

    def at(key: str | None = None) -> str:
        return yamlfile.where(file, section, key) if section else f"{file}: imap"

    unknown = sorted(set(section) - _KEYS)
    if unknown:
        raise ConfigError(f"{at(unknown[0])}: unknown key(s) {', '.join(unknown)} in 'imap'; "
                          f"known keys: {', '.join(sorted(_KEYS))}")
    for key in ("host", "user"):
        if not section.get(key):
            raise ConfigError(f"{at(key)}: 'imap.{key}' is required for the email_intake bot")
    if not (section.get("password_env") or section.get("oauth2_token_env")):
        raise ConfigError(f"{at()}: set 'imap.password_env' (or 'imap.oauth2_token_env') to the NAME of the "
                          "environment variable holding the secret")

    def number(key: str, default: float, kind=int) -> Any:
        value = section.get(key, default)
        try:
            value = kind(value)
        except (TypeError, ValueError):
            value = None
        if value is None or value <= 0:
            raise ConfigError(f"{at(key)}: 'imap.{key}' must be a positive number, not {section.get(key)!r}")
        return value

    token_env = section.get("oauth2_token_env")
    try:
        account = ImapAccount(
            host=str(section["host"]), user=str(section["user"]),
            port=number("port", 0) if section.get("port") else None,
            security=str(section.get("security", "ssl")).lower(),
            password=None if token_env else secret(section["password_env"], "IMAP password"),
            oauth2_token=secret(token_env, "IMAP OAuth2 token") if token_env else None,
            timeout=number("timeout", 60, float))
    except ConfigError as exc:
        raise ConfigError(f"{at()}: {exc}") from exc
    return EmailConfig(
        account, folder=str(section.get("folder", "INBOX")),
        processed_folder=str(section.get("processed_folder", "Processed")),
        attention_folder=str(section.get("attention_folder", "Attention")),
        batch_size=number("batch_size", 50), max_message_bytes=int(number("max_message_mb", 25, float) * 1024 * 1024),
        max_reconnects=number("max_reconnects", 3),
        aliases=header_aliases(section.get("aliases"), where=at("aliases")))


# -- one message -> orders or a reason -----------------------------------------

@dataclass
class Outcome:
    """What a message becomes: orders (processed folder) or a reason (attention folder).

    ``source`` is the message's source reference, ``email:<Message-ID>``; a second,
    different message reusing a Message-ID gets ``email:<Message-ID>~<fingerprint>``.
    """

    source: str
    subject: str = ""
    fingerprint: str = ""
    orders: list[Order] = field(default_factory=list)
    attention: str = ""
    clarify: Notice | None = None

    @property
    def folder_kind(self) -> str:
        return ATTENTION if self.attention else PROCESSED


class RawArchive:
    """Raw messages kept as ``<folder>/<sha256>.eml`` (written once, atomically)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def keep(self, raw: bytes) -> Path:
        path = self.folder / f"{hashlib.sha256(raw).hexdigest()}.eml"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(raw)
            tmp.replace(path)
        return path


class MessageReader:
    """Turns parsed messages into ``Outcome``s; holds the master data and aliases for one run."""

    def __init__(self, masterdata: MasterData, aliases: dict[str, tuple[str, ...]], archive: RawArchive,
                 max_message_bytes: int):
        self.masterdata, self.aliases, self.archive = masterdata, aliases, archive
        self.max_message_bytes = max_message_bytes

    def read(self, raw: bytes, arrived: datetime | None = None) -> Outcome:
        """Parse and read one message under its own Message-ID."""
        mail = mailparse.parse(raw)
        return self.outcome(mail, raw, arrived, f"email:{mail.message_id}")

    def outcome(self, mail: mailparse.ParsedMail, raw: bytes, arrived: datetime | None, source: str) -> Outcome:
        """See the module docstring; never raises for bad input."""
        raw_path = self.archive.keep(raw)
        outcome = Outcome(source, mail.subject, mail.fingerprint)
        if mail.not_an_email:
            outcome.attention = mail.not_an_email
            return outcome
        if len(raw) > self.max_message_bytes:
            outcome.attention = too_big(len(raw), self.max_message_bytes)
            return outcome
        record = self.masterdata.find_customer(mail.sender_email) if mail.sender_email else None
        sender = record.as_customer() if record else (
            Customer(mail.sender_email, mail.sender_name, mail.sender_email, _locale(mail)) if mail.sender_email
            else None)
        received_at = arrived or datetime.now(timezone.utc)
        orders, problems = self._orders(mail, source, sender, received_at, str(raw_path))
        if orders and all(o.customer.id == "unknown" for o in orders):
            outcome.attention = ("no customer can be named: the sender address is missing or unreadable and the "
                                 "order names no customer")
            return outcome
        if not orders:
            found = "; ".join(problems) or ("no spreadsheet attachment and no order table (item and quantity "
                                            "columns) in the text")
            if mail.defects:
                found += f" (the message is malformed: {', '.join(mail.defects[:3])})"
            outcome.attention = f"no readable order: {found}"
            if mail.sender_email and not mail.automated:
                outcome.clarify = Notice(
                    "clarification_needed", recipient=mail.sender_email, locale=sender.locale,
                    payload={"subject": mail.subject, "reason": found, "reply_to": _reply_to(mail)},
                    dedupe_key=f"clarify:{source.removeprefix('email:')}")
            return outcome
        for order in orders:
            order.reply_to = _reply_to(mail)
            order.problems.extend(self._sender_findings(order, mail.sender_email))
            order.problems.extend(Finding("unread_content", "hold", {"en": f"part of the email was not read: {p}"},
                                          "source") for p in problems)
        outcome.orders = orders
        return outcome

    def _orders(self, mail: mailparse.ParsedMail, source: str, sender: Customer | None, received_at: datetime,
                raw_path: str) -> tuple[list[Order], list[str]]:
        """Orders from attachments, else the text bodies, else the HTML bodies; plus what could not be read.

        Why a body gave no order counts only when no part gave one (plain and HTML bodies repeat each other).
        """
        orders: list[Order] = []
        problems: list[str] = []
        for att in mail.attachments:
            if not _is_spreadsheet(att):
                continue
            try:
                tables = read_tables(att.data, att.filename)
            except InputError as exc:
                problems.append(f"attachment {att.label!r}: {exc}")
                continue
            orders += self._from_tables(tables, source, att.label, sender, received_at, raw_path, problems)
        body_problems: list[str] = []
        for html in (False, True):
            if orders:
                break
            for body in (b for b in mail.bodies if b.html == html):
                find = mailtext.html_tables if html else mailtext.text_tables
                tables = find(body.text, self.aliases)
                orders += self._from_tables(tables, source, body.label, sender, received_at, raw_path,
                                             body_problems)
        return orders, problems + mail.problems + ([] if orders else body_problems)

    def _from_tables(self, tables: list, source: str, label: str, sender: Customer | None,
                     received_at: datetime, raw_path: str, problems: list[str]) -> list[Order]:
        orders = []
        for table in tables:
            if getattr(table, "hidden", False):
                continue
            try:
                result = orders_from_table(
                    table, channel="email", source_ref=f"{source}#{label}", received_at=received_at,
                    masterdata=self.masterdata, aliases=self.aliases, default_customer=sender, raw_path=raw_path,
                    source_name=label)
            except InputError as exc:
                problems.append(str(exc))
                continue
            orders += result.orders
        return orders

    def _sender_findings(self, order: Order, sender_email: str) -> list[Finding]:
        """``unknown_sender`` unless the sender is the registered address of the order's customer."""
        record = self.masterdata.customers.get(order.customer.id)
        if record and sender_email and record.email == sender_email:
            return []
        if record:
            text = (f"the order names customer {order.customer.id} ({order.customer.name}) but was sent from "
                    f"{sender_email or 'an unknown address'}, which is not their registered address; confirm "
                    "with the customer before approving")
        else:
            text = (f"the sender {sender_email or '(no address)'} is not a known customer; add them to "
                    "rules/data/customers.csv or correct the customer, then approve")
        return [Finding("unknown_sender", "hold", {"en": text}, "customer")]


def too_big(size: int, limit: int) -> str:
    return (f"message is {size / 2**20:.1f} MB, over the {limit / 2**20:g} MB limit (imap.max_message_mb); "
            "ask the sender to send smaller files, or raise the limit")


def _is_spreadsheet(att: mailparse.Attachment) -> bool:
    return att.filename.lower().endswith(SPREADSHEET_EXTENSIONS) or att.content_type in SPREADSHEET_TYPES


def _reply_to(mail: mailparse.ParsedMail) -> dict[str, str]:
    return {"message_id": mail.message_id, "references": mail.references}


def _locale(mail: mailparse.ParsedMail) -> str:
    sample = mail.subject + " ".join(b.text[:2000] for b in mail.bodies[:2])
    return "zh-CN" if _CJK.search(sample) else "en"


# -- the mailbox loop ------------------------------------------------------------

class EmailIntake:
    """One run over one folder; see the module docstring."""

    def __init__(self, ctx: BotContext, cfg: EmailConfig, reader: MessageReader):
        self.ctx, self.cfg, self.reader = ctx, cfg, reader
        self.store = ctx.store

    def run(self, limit: int | None = None) -> None:
        failures = 0
        while True:
            progress = self.ctx.run.counts.total()
            try:
                with ImapMailbox(self.cfg.account) as mailbox:
                    self._session(mailbox, limit)
                return
            except ApplicationError as exc:
                failures = 0 if self.ctx.run.counts.total() > progress else failures + 1
                if failures > self.cfg.max_reconnects:
                    raise
                self.ctx.run.count("reconnect")
                log.warning("IMAP connection lost (%s); reconnecting (%d/%d)", exc, failures,
                            self.cfg.max_reconnects)
                time.sleep(min(0.2 * 2 ** failures, 5))

    def _session(self, mailbox: ImapMailbox, limit: int | None) -> None:
        for folder in (self.cfg.processed_folder, self.cfg.attention_folder):
            mailbox.ensure_folder(folder)
        state = mailbox.select(self.cfg.folder)
        sync = self.store.get_sync(self.cfg.sync_name)
        if sync.get("uidvalidity") != state.uidvalidity:
            if sync:
                log.warning("UIDVALIDITY of %s changed (%s -> %s): resyncing by Message-ID",
                            self.cfg.folder, sync.get("uidvalidity"), state.uidvalidity)
                self.ctx.run.count("resync")
            sync = {"uidvalidity": state.uidvalidity, "last_uid": 0}
            with self.store.transaction():
                self.store.set_sync(self.cfg.sync_name, sync)
        self._batch(mailbox, mailbox.uids(upto=sync["last_uid"]), sync)  # committed, not yet moved
        pending = mailbox.uids(after=sync["last_uid"])
        if limit is not None:
            pending = pending[:limit]
        for start in range(0, len(pending), self.cfg.batch_size):
            if self.ctx.stopping():
                return
            self._batch(mailbox, pending[start:start + self.cfg.batch_size], sync)

    def _batch(self, mailbox: ImapMailbox, uids: list[int], sync: dict[str, int]) -> None:
        """Read, commit (one transaction), then move ``uids``; ``sync`` is updated in place."""
        if not uids:
            return
        moves: dict[str, list[int]] = {PROCESSED: [], ATTENTION: []}
        outcomes: list[tuple[int, Outcome]] = []
        wanted: list[int] = []
        for env in mailbox.envelopes(uids):
            if env.size > self.cfg.max_message_bytes:  # never downloaded
                message_id = env.message_id or f"<imap-{sync['uidvalidity']}-{env.uid}@orderbots.invalid>"
                outcomes.append((env.uid, Outcome(f"email:{message_id}",
                                                  attention=too_big(env.size, self.cfg.max_message_bytes))))
            else:
                wanted.append(env.uid)
        batch: dict[str, str] = {}  # fingerprints and sources read in this batch -> folder kind
        for message in mailbox.fetch(wanted):
            mail = mailparse.parse(message.raw)
            seen = batch.get(mail.fingerprint) or self._recorded(f"email-fp:{mail.fingerprint}")
            if seen:
                moves[seen].append(message.uid)
                self.ctx.run.count("already_imported")
                continue
            source = f"email:{mail.message_id}"
            if source in batch or self.store.source_seen(source):  # another mail reusing this Message-ID
                source = f"{source}~{mail.fingerprint[:12]}"
            outcome = self._read(mail, message, source)
            outcomes.append((message.uid, outcome))
            batch[outcome.source] = batch[outcome.fingerprint] = outcome.folder_kind
        sync["last_uid"] = max(sync["last_uid"], *uids)
        self._commit([o for _, o in outcomes], sync)
        for uid, outcome in outcomes:
            moves[outcome.folder_kind].append(uid)
        targets = {PROCESSED: self.cfg.processed_folder, ATTENTION: self.cfg.attention_folder}
        for kind, kind_uids in moves.items():
            mailbox.move(sorted(kind_uids), targets[kind])

    def _read(self, mail: mailparse.ParsedMail, message: Fetched, source: str) -> Outcome:
        try:
            return self.reader.outcome(mail, message.raw, message.arrived, source)
        except Exception as exc:  # noqa: BLE001 - one unreadable message must not stop the bot
            log.exception("cannot read message UID %s", message.uid)
            return Outcome(source, mail.subject, mail.fingerprint,
                           attention=f"the message could not be read ({type(exc).__name__}: {exc})")

    def _commit(self, outcomes: list[Outcome], sync: dict[str, int]) -> None:
        """Every message's orders, source records and notice, and the last UID, in one transaction."""
        with self.store.transaction():
            for outcome in outcomes:
                result = f"{ATTENTION}: {outcome.attention}" if outcome.attention else PROCESSED
                self.store.record_source(outcome.source, "email", name=outcome.subject, orders=len(outcome.orders),
                                         outcome=result)
                if outcome.fingerprint:
                    self.store.record_source(f"email-fp:{outcome.fingerprint}", "email-fingerprint",
                                             name=outcome.source, outcome=result)
                for order in outcome.orders:
                    known = not any(f.code == "unknown_sender" for f in order.problems)
                    self.store.add_order(order, notices=notices.received(order, None) if known else [])
                if outcome.clarify:
                    self.store.enqueue([outcome.clarify])
            self.store.set_sync(self.cfg.sync_name, sync)
        for outcome in outcomes:
            if outcome.attention:
                log.warning("message %s needs attention: %s", outcome.source, outcome.attention)
            self.ctx.run.count(outcome.folder_kind)
            self.ctx.run.count("orders", len(outcome.orders))

    def _recorded(self, ref: str) -> str | None:
        """``processed`` / ``attention`` if the source ``ref`` was committed before, else None."""
        row = self.store.db.execute("SELECT outcome FROM sources WHERE ref = ?", (ref,)).fetchone()
        if row is None:
            return None
        return ATTENTION if row[0].startswith(ATTENTION) else PROCESSED


def run(ctx: BotContext, limit: int | None = None) -> None:
    """Import new mail from the configured IMAP folder, then validate the new orders."""
    cfg = load_config(ctx.settings)
    reader = MessageReader(MasterData.load(ctx.settings.rules_dir / "data"), cfg.aliases,
                           RawArchive(ctx.settings.runlog_dir / "raw" / "email"), cfg.max_message_bytes)
    EmailIntake(ctx, cfg, reader).run(None if limit is None else int(limit))
    validate(ctx)
