"""The ops digest bot: one email per period listing what needs a person.

A run collects the held and failed orders (with their reasons and the files
under ``runlog/artifacts/*/<sanitised order key>/``) and the notices the
notifier gave up on, and enqueues one ``ops_digest`` notice to
``smtp.ops_address`` with dedupe key ``ops_digest:<period>``, where the period
is the current UTC day (``2024-05-01``) or hour (``2024-05-01T13Z``) as set by
``notifier.digest_period``. Running again in the same period enqueues nothing
new (the outbox keeps each dedupe key once); nothing to report enqueues nothing,
so a problem appearing later in the period is reported in that period's digest.
The notifier bot delivers it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bots.notifier import NotifierConfig, smtp_config
from orderbots import config, states
from orderbots.bot import BotContext
from orderbots.errors import ConfigError
from orderbots.notices import Notice
from orderbots.runlog import safe_part
from orderbots.store import WorkItem

MAX_ARTIFACTS = 20
PERIOD_FORMATS = {"day": "%Y-%m-%d", "hour": "%Y-%m-%dT%HZ"}


def period_label(period: str, now: datetime | None = None) -> str:
    """The UTC ``day`` or ``hour`` that ``now`` falls in, as used in the dedupe key."""
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime(PERIOD_FORMATS[period])


def artifacts(settings: config.Settings, key: str) -> list[str]:
    """Files saved for order ``key`` by any run, relative to the home, at most ``MAX_ARTIFACTS``."""
    files = sorted(p for p in settings.artifacts_dir.glob(f"*/{safe_part(key)}/**/*") if p.is_file())
    shown = [_relative(p, settings.home) for p in files[:MAX_ARTIFACTS]]
    if len(files) > MAX_ARTIFACTS:
        shown.append(f"... and {len(files) - MAX_ARTIFACTS} more under {settings.artifacts_dir}")
    return shown


def _relative(path: Path, home: Path) -> str:
    try:
        return str(path.relative_to(home))
    except ValueError:
        return str(path)


def order_entry(item: WorkItem, settings: config.Settings, locale: str) -> dict[str, Any]:
    """What the digest shows for one held or failed order."""
    reasons = [f"{f.code}: {f.text(locale)}" for f in item.findings if f.severity in ("hold", "reject")]
    if item.state == states.FAILED or (item.last_error and not reasons):
        reasons.append(f"{item.resume_step or 'step'} failed after {item.attempts} attempts: {item.last_error}")
    return {"key": item.key, "customer_id": item.order.customer.id, "customer_name": item.order.customer.name,
            "po_number": item.order.po_number, "state": item.state, "updated_at": item.updated_at,
            "reasons": reasons, "artifacts": artifacts(settings, item.key)}


def digest_payload(ctx: BotContext, cfg: NotifierConfig, label: str) -> dict[str, Any]:
    """The digest's content: held and failed orders and undeliverable notices."""
    entries = {state: [order_entry(i, ctx.settings, cfg.ops_locale) for i in ctx.store.items(state)]
               for state in (states.HELD, states.FAILED)}
    undeliverable = [{"id": r["id"], "kind": r["kind"], "recipient": r["recipient"], "order_key": r["order_key"],
                      "attempts": r["attempts"], "last_error": r["last_error"]}
                     for r in ctx.store.notices("undeliverable")]
    return {"period": label, "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "held": entries[states.HELD], "failed": entries[states.FAILED], "undeliverable": undeliverable}


def run(ctx: BotContext, period: str | None = None) -> None:
    """Enqueue this period's digest if there is anything to report; see module docstring."""
    cfg = NotifierConfig.load(ctx.settings)
    period = period or cfg.digest_period
    if period not in PERIOD_FORMATS:
        raise ConfigError(f"digest period {period!r} is not one of {', '.join(PERIOD_FORMATS)}")
    ops_address = smtp_config(ctx.settings).ops_address
    if not ops_address:
        raise ConfigError(f"{ctx.settings.home / config.CONFIG_FILE}: smtp.ops_address is not set; "
                          "the ops digest has nowhere to go")
    label = period_label(period)
    payload = digest_payload(ctx, cfg, label)
    if not (payload["held"] or payload["failed"] or payload["undeliverable"]):
        ctx.run.count("nothing_to_report")
        return
    ctx.store.enqueue([Notice("ops_digest", recipient=ops_address, locale=cfg.ops_locale, payload=payload,
                              dedupe_key=f"ops_digest:{label}")])
    ctx.run.count("digest")
    ctx.run.count("held", len(payload["held"]))
    ctx.run.count("failed", len(payload["failed"]))
    ctx.run.count("undeliverable", len(payload["undeliverable"]))
