"""The notifier bot: delivers due outbox notices over SMTP, each one once.

Every run opens at most one SMTP session (reconnecting after a lost
connection) and, for each due notice, oldest first: claims it
(``store.claim_notices``, in chunks of ``CLAIM_CHUNK`` with one commit each: a
lease, so a second notifier skips them), renders it, sends it and marks it
sent; claimed notices left unsent when the run stops are made due again.

Exactly once:
- The notice row was written in the same transaction as the state change that
  caused it, so no notice is lost and none exists without its cause.
- ``mark_sent`` is one small committed UPDATE issued the moment the server has
  accepted the message (250 after DATA); rendering and building happen before
  sending. The only duplicate risk is a crash (or a lost connection) in the
  window between the server's acceptance and that commit: the claim then
  expires after ``lease`` seconds and the notice is sent again, with the same
  Message-ID (derived from the outbox row), so mail systems can recognise it.
- A crash before the server accepted the message only delays it by the lease.

Failures (see ``connectors.smtp`` for the error classes):
- ``Undeliverable`` (5xx refusal of the recipient or message, invalid address):
  given up at once, ``last_error`` recorded; the ops digest lists it.
- Transient errors (4xx, connection lost) and template problems (``ConfigError``
  from rendering, fixed by an operator): retried with exponential backoff
  (``backoff`` doubling up to ``max_backoff``), given up after ``max_attempts``.
- ``SmtpUnavailable`` (server down): the attempt is recorded with backoff and
  the run stops (the other notices stay due); an outage is never a reason to
  give up, so every notice goes out once the server is back.
- The server refusing our login is a ``ConfigError`` that ends the run; no
  notice is charged (the claimed one is due again after its lease).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sqlite3
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import Message
from pathlib import Path

from connectors.smtp import SmtpConfig, SmtpSender, SmtpUnavailable, Undeliverable, build_message, mailbox
from orderbots import config
from orderbots.bot import BotContext
from orderbots.errors import ApplicationError, ConfigError
from orderbots.render import Renderer, renderer_for

log = logging.getLogger(__name__)

DIGEST_PERIODS = ("hour", "day")
CLAIM_CHUNK = 50  # notices leased per commit


@dataclass(frozen=True)
class NotifierConfig:
    """The ``notifier:`` section of ``orderbots.yaml`` (every key optional)."""

    templates: Path
    max_attempts: int = 8
    backoff: float = 60.0
    max_backoff: float = 3600.0
    lease: float = 300.0
    batch: int = 500
    digest_period: str = "day"
    ops_locale: str = "en"

    @classmethod
    def load(cls, settings: config.Settings) -> "NotifierConfig":
        section = dict(settings.section("notifier"))
        where = settings.home / config.CONFIG_FILE
        unknown = sorted(set(section) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"{where}: notifier.{unknown[0]} is not a known setting; "
                              f"use one of {sorted(cls.__dataclass_fields__)}")
        try:
            cfg = cls(templates=settings.path(section.pop("templates", "templates")),
                      **{k: type(getattr(cls, k))(v) for k, v in section.items()})
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: notifier: {exc}") from exc
        if cfg.digest_period not in DIGEST_PERIODS:
            raise ConfigError(f"{where}: notifier.digest_period is {cfg.digest_period!r}; "
                              f"use one of {', '.join(DIGEST_PERIODS)}")
        return cfg

    def delay(self, attempt: int) -> float:
        """Seconds before the next try after failed attempt number ``attempt`` (1-based)."""
        return min(self.backoff * 2 ** max(attempt - 1, 0), self.max_backoff)


def smtp_config(settings: config.Settings) -> SmtpConfig:
    """The validated ``smtp:`` section."""
    return SmtpConfig.from_mapping(settings.section("smtp"), source=str(settings.home / config.CONFIG_FILE))


def message_id(row: sqlite3.Row, domain: str) -> str:
    """A Message-ID fixed per outbox row, so a re-sent duplicate carries the same one."""
    digest = hashlib.sha256(f"{row['dedupe_key']}|{row['created_at']}".encode()).hexdigest()[:24]
    return f"<notice.{row['id']}.{digest}@{domain}>"


def compose(row: sqlite3.Row, renderer: Renderer, smtp: SmtpConfig) -> tuple[Message, Address]:
    """The email for one outbox row and its recipient.

    ``ConfigError`` for a template problem, ``Undeliverable`` for an invalid recipient address.
    """
    payload = json.loads(row["payload_json"])
    rendered = renderer.render(row["kind"], row["locale"], payload)
    recipient = mailbox(row["recipient"], payload.get("customer_name") or "")
    message = build_message(
        sender=mailbox(smtp.from_address, smtp.from_name), recipient=recipient,
        subject=rendered.subject, text=rendered.text, html=rendered.html,
        message_id=message_id(row, smtp.from_address.rsplit("@", 1)[1]),
        reply_to=payload.get("reply_to") if isinstance(payload.get("reply_to"), dict) else None)
    return message, recipient


def run(ctx: BotContext, limit: int | None = None) -> None:
    """Send the due notices (at most ``limit``, default ``notifier.batch``); see module docstring."""
    cfg = NotifierConfig.load(ctx.settings)
    smtp = smtp_config(ctx.settings)
    password = config.secret(smtp.password_env, "SMTP password") if smtp.user else None
    renderer = renderer_for(str(cfg.templates))
    store = ctx.store
    left, last_id = limit or cfg.batch, 0
    with SmtpSender(smtp, password) as sender:
        while left > 0 and not ctx.stopping():  # one pass over the due notices, oldest first
            rows = store.claim_notices(min(left, CLAIM_CHUNK), cfg.lease, after_id=last_id)
            if not rows:
                break
            left, last_id = left - len(rows), rows[-1]["id"]
            settled: set[int] = set()
            try:
                if not _send_all(ctx, rows, settled, sender, renderer, smtp, cfg):
                    break
            finally:
                store.release_notices([r["id"] for r in rows if r["id"] not in settled])


def _send_all(ctx: BotContext, rows: list[sqlite3.Row], settled: set[int], sender: SmtpSender,
              renderer: Renderer, smtp: SmtpConfig, cfg: "NotifierConfig") -> bool:
    """Send claimed notices in turn, adding each sent or failed one to ``settled``; False if the run
    must stop (server down, or stopping)."""
    for row in rows:
        if ctx.stopping():
            return False
        try:
            message, recipient = compose(row, renderer, smtp)
        except (ConfigError, Undeliverable) as exc:
            _record_failure(ctx, row, exc, cfg)
            settled.add(row["id"])
            continue
        try:
            sender.send(message, recipient)
        except ApplicationError as exc:
            _record_failure(ctx, row, exc, cfg)
            settled.add(row["id"])
            if isinstance(exc, SmtpUnavailable):
                return False
            continue
        ctx.store.mark_sent(row["id"])
        settled.add(row["id"])
        ctx.run.count("sent")
    return True


def _record_failure(ctx: BotContext, row: sqlite3.Row, exc: Exception, cfg: NotifierConfig) -> None:
    attempt = row["attempts"] + 1
    error = f"{type(exc).__name__}: {exc}"
    give_up = isinstance(exc, Undeliverable) or (
        attempt >= cfg.max_attempts and not isinstance(exc, SmtpUnavailable))
    if give_up:
        ctx.store.mark_send_failed(row["id"], error, math.inf)
        ctx.run.count("undeliverable")
        log.warning("notice %s (%s) given up after attempt %d: %s", row["id"], row["kind"], attempt, error)
    else:
        delay = cfg.delay(attempt)
        ctx.store.mark_send_failed(row["id"], error, delay)
        ctx.run.count("retry")
        log.info("notice %s (%s) attempt %d failed, retry in %.0fs: %s", row["id"], row["kind"], attempt, delay, error)
