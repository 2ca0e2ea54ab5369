"""The ``orderbots`` command line.

Every command works on one home (``--home``, else ``$ORDERBOTS_HOME``, else the
current directory). An ``OrderbotsError`` ends the command with a one-line red
message on stderr and exit status 2; a bot that fails in ``run`` exits 1.

More commands plug in without touching this module's code: add
``"name": "module:attribute"`` (a click command) to ``LAZY_COMMANDS``; the
module is imported only when the command is used or help is listed.
"""

from __future__ import annotations

import getpass
import importlib
import json
import logging
import os
import sys
import threading
import traceback
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import click
import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import config, editing, states
from .errors import OrderbotsError
from .rules.builtin import EMAIL
from .runlog import list_runs, safe_part
from .store import NOTICE_STATUS, Store, WorkItem

LAZY_COMMANDS: dict[str, str] = {
    "sandbox": "sandbox.cli:main",
    "report": "orderbots.report_cli:command",
    "demo": "sandbox.demo:command",
}

REASON_STATES = (states.HELD, states.REJECTED)
ERROR_STATES = (states.RETRY_WAIT, states.FAILED)


class OrderbotsGroup(click.Group):
    """A click group that loads ``LAZY_COMMANDS`` on demand and turns ``OrderbotsError`` into exit 2."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS:
            module, attr = LAZY_COMMANDS[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OrderbotsError as exc:
            if ctx.obj and ctx.obj.verbose:
                traceback.print_exc()
            click.secho(f"error: {exc}", fg="red", err=True)
            ctx.exit(2)


class Home:
    """What commands share: the home's settings (loaded on first use) and flags."""

    def __init__(self, home: Path | None, verbose: bool):
        self.home, self.verbose = home, verbose
        self._settings: config.Settings | None = None

    @property
    def settings(self) -> config.Settings:
        if self._settings is None:
            self._settings = config.load(self.home)
        return self._settings

    @contextmanager
    def store(self) -> Iterator[Store]:
        with self.settings.open_store() as store:
            yield store


pass_home = click.make_pass_decorator(Home)


def actor() -> str:
    """Who a human action is recorded as: ``person:<login name>``."""
    return f"person:{os.environ.get('USER') or getpass.getuser()}"


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _console() -> Console:
    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 200)


def _row(table: Table, *cells: Any) -> None:
    """Add a row of plain text: data from customers is never read as rich markup."""
    table.add_row(*(c if isinstance(c, Text) else Text(str(c)) for c in cells))


def _when(iso: str | None) -> str:
    """An ISO timestamp as local time ``YYYY-MM-DD HH:MM:SS`` (JSON output keeps the stored ISO text)."""
    if not iso:
        return ""
    moment = datetime.fromisoformat(iso)
    return (moment.astimezone() if moment.tzinfo else moment).strftime("%Y-%m-%d %H:%M:%S")


# -- the group ---------------------------------------------------------------


@click.group("orderbots", cls=OrderbotsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The orderbots home (folder with orderbots.yaml). Default: $ORDERBOTS_HOME or the current folder.")
@click.option("-v", "--verbose", is_flag=True, help="Log debug details and show tracebacks.")
@click.version_option(package_name="orderbots", prog_name="orderbots")
@click.pass_context
def cli(ctx: click.Context, home: Path | None, verbose: bool) -> None:
    """Order-intake bots: read orders from email, spreadsheets and portals, validate them,
    key them into ERP and WMS screens, and tell customers - exactly once.

    \b
    Examples:
      orderbots serve                 run the schedule (schedules.yaml)
      orderbots orders --state held   what needs a person
      orderbots show ACME/PO-1001     everything about one order
    """
    if verbose:
        logging.getLogger().setLevel(logging.DEBUG)
        logging.getLogger("apscheduler").setLevel(logging.DEBUG)
    ctx.obj = Home(home, verbose)


# -- running bots ------------------------------------------------------------


@cli.command()
@click.option("--schedules", "schedules_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Schedule file. Default: schedules.yaml in the home.")
@click.option("--until-idle", is_flag=True,
              help="Stop once every interval job has had a run that found nothing to do (for demos and tests).")
@click.option("--max-seconds", type=click.FloatRange(min=0, min_open=True),
              help="Stop after this many seconds (graceful, like SIGTERM).")
@pass_home
def serve(home: Home, schedules_path: Path | None, until_idle: bool, max_seconds: float | None) -> None:
    """Run every enabled job of the schedule until stopped.

    Jobs never overlap themselves; a file dropped into a watched folder's inbox
    starts the folder intake at once. SIGTERM or Ctrl-C lets each running bot
    finish its current item, then exits 0 (a second Ctrl-C exits at once).

    \b
    Example:
      orderbots serve --until-idle --max-seconds 600
    """
    from . import schedule, scheduler

    jobs = schedule.load(schedules_path or home.settings.home / schedule.SCHEDULES_FILE)
    scheduler.serve(home.settings, jobs, until_idle=until_idle, max_seconds=max_seconds)


@cli.command("schedule")
@click.option("--schedules", "schedules_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Schedule file. Default: schedules.yaml in the home.")
@pass_home
def schedule_command(home: Home, schedules_path: Path | None) -> None:
    """Check the schedule file and list its jobs.

    Any mistake is reported with file:line and what to fix (exit 2).

    \b
    Example:
      orderbots schedule --schedules /etc/orderbots/schedules.yaml
    """
    from . import schedule

    path = schedules_path or home.settings.home / schedule.SCHEDULES_FILE
    table = Table("job", "bot", "when", "args", "enabled", "misfire grace", title=str(path))
    for job in schedule.load(path):
        _row(table, job.name, job.bot, job.describe(), json.dumps(job.args) if job.args else "",
             "yes" if job.enabled else "no", f"{job.misfire_grace_time}s")
    _console().print(table)


def _parse_arg(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{text!r} is not key=value", param_hint="--arg")
    try:
        parsed = yaml.safe_load(value) if value else ""
    except yaml.YAMLError:
        parsed = value
    return key, parsed if isinstance(parsed, (str, int, float, bool)) or parsed is None else value


@cli.command()
@click.argument("bot")
@click.option("--arg", "args", multiple=True, metavar="KEY=VALUE",
              help="An argument of the bot's run(); repeat for more. Numbers and true/false are converted.")
@pass_home
def run(home: Home, bot: str, args: tuple[str, ...]) -> None:
    """Run one bot once and print what it did.

    Exit status is 0 when the run finished, 1 when the bot failed (the error is
    in `orderbots runs`), 2 for a configuration problem. Ctrl-C lets the bot
    finish its current item.

    \b
    Example:
      orderbots run validate --arg limit=100
    """
    from .bot import run_bot
    from .schedule import check_bot_args
    from .scheduler import stop_on_signals

    kwargs = dict(_parse_arg(a) for a in args)
    check_bot_args(bot, kwargs)
    stop = threading.Event()
    try:
        with stop_on_signals(stop):
            result = run_bot(bot, home.settings, stop=stop, show_progress=sys.stdout.isatty(), **kwargs)
    except OrderbotsError:
        raise
    except Exception as exc:  # noqa: BLE001 - report the bot's failure in one line, exit 1
        if home.verbose:
            traceback.print_exc()
        click.secho(f"error: bot {bot} failed: {type(exc).__name__}: {exc} (recorded; see `orderbots runs`)",
                    fg="red", err=True)
        sys.exit(1)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items())) or "nothing to do"
    click.echo(f"run {result.id} of {bot}: ok - {counts}")


@cli.command()
def bots() -> None:
    """List the bots that can be scheduled or run, with what each does.

    A bot is a module bots/<name>.py with a run(ctx, ...) function.

    \b
    Example:
      orderbots bots
    """
    import ast

    import bots as package

    table = Table("bot", "what it does")
    for path in sorted(p for folder in package.__path__ for p in Path(folder).glob("*.py")):
        if path.stem.startswith("_"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(n, ast.FunctionDef) and n.name == "run" for n in tree.body):
            _row(table, path.stem, (ast.get_docstring(tree) or "").strip().split("\n")[0])
    _console().print(table)


# -- orders ------------------------------------------------------------------


def _reason(store: Store, item: WorkItem) -> str:
    """Why an order is where it is: last error when retrying/failed, last event reason when held/rejected."""
    if item.state in ERROR_STATES:
        return item.last_error or ""
    if item.state in REASON_STATES:
        events = store.events(item.key)
        return events[-1]["reason"] if events else ""
    return ""


def _summary(store: Store, item: WorkItem) -> dict[str, Any]:
    order = item.order
    priced = any(line.unit_price is not None for line in order.lines)
    return {"key": item.key, "state": item.state, "channel": order.channel,
            "customer_id": order.customer.id, "customer": order.customer.name or order.customer.id,
            "po_number": order.po_number, "lines": len(order.lines),
            "total": f"{order.total:.2f}" if priced else None, "currency": order.currency,
            "received_at": order.received_at.isoformat(), "updated_at": item.updated_at,
            "erp_number": item.erp_number, "wms_ref": item.wms_ref, "attempts": item.attempts,
            "reason": _reason(store, item)}


def _latest_items(store: Store, state: str | None, limit: int) -> list[WorkItem]:
    """The ``limit`` most recently received items (optionally in ``state``), oldest of them first."""
    where, args = ("WHERE state = ?", [state]) if state else ("", [])
    rows = store.db.execute(f"SELECT * FROM orders {where} ORDER BY id DESC LIMIT ?", (*args, limit))
    return [WorkItem.from_row(r) for r in reversed(rows.fetchall())]


@cli.command()
@click.option("--state", type=click.Choice(states.STATES), help="Only orders in this state.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1),
              help="Show at most this many of the most recent orders.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_home
def orders(home: Home, state: str | None, limit: int, as_json: bool) -> None:
    """List the most recent orders with their state and, for problem orders, why.

    \b
    Examples:
      orderbots orders --state held
      orderbots orders --json --limit 500 > orders.json
    """
    with home.store() as store:
        rows = [_summary(store, item) for item in _latest_items(store, state, limit)]
    if as_json:
        _echo_json(rows)
        return
    table = Table("key", "state", "channel", "customer", "PO", "lines", "total", "received", "updated",
                  "reason / last error", title=f"{len(rows)} order(s)" + (f" in {state}" if state else ""))
    for r in rows:
        total = f"{r['total']} {r['currency']}".strip() if r["total"] is not None else ""
        _row(table, r["key"], r["state"], r["channel"], r["customer"], r["po_number"], str(r["lines"]),
             total, _when(r["received_at"]), _when(r["updated_at"]), r["reason"])
    _console().print(table)


def artifacts_of(settings: config.Settings, key: str) -> list[Path]:
    """Evidence files of failed attempts on order ``key``: ``<artifacts>/<run id>/<safe key>/**``."""
    root = settings.artifacts_dir
    if not root.is_dir():
        return []
    folders = root.glob(f"*/{safe_part(key)}")
    return sorted(p for folder in folders for p in folder.rglob("*") if p.is_file())


def _details(store: Store, settings: config.Settings, key: str) -> dict[str, Any]:
    item = store.get(key)
    return {**_summary(store, item), "duplicate_of": item.duplicate_of, "last_error": item.last_error,
            "lease_owner": item.lease_owner, "created_at": item.created_at,
            "order": item.order.to_dict(), "findings": [f.__dict__ for f in item.findings],
            "events": store.events(item.key), "artifacts": [str(p) for p in artifacts_of(settings, item.key)]}


@cli.command()
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@pass_home
def show(home: Home, key: str, as_json: bool) -> None:
    """Show one order: header, lines, findings, ERP/WMS references, full history and artifacts.

    KEY is the order key (customer/PO) or its number.

    \b
    Example:
      orderbots show ACME/PO-1001
    """
    with home.store() as store:
        d = _details(store, home.settings, key)
    if as_json:
        _echo_json(d)
        return
    _print_details(d)


def _joined(separator: str, *parts: str) -> str:
    return separator.join(p for p in parts if p)


def _print_details(d: dict[str, Any]) -> None:
    console, order = _console(), d["order"]
    customer, ship = order["customer"], order["ship_to"]
    header = Table.grid(padding=(0, 2))
    header.add_column(style="bold")
    header.add_column()
    for label, value in [
        ("order", d["key"]), ("state", d["state"]), ("reason", d["reason"]),
        ("customer", _joined(" ", customer["id"], customer["name"], customer["email"] and f"<{customer['email']}>")),
        ("customer PO", order["po_number"]), ("channel", order["channel"]), ("source", order["source_ref"]),
        ("raw file", order["raw_path"]), ("received", _when(order["received_at"])),
        ("updated", _when(d["updated_at"])), ("requested date", order["requested_date"] or ""),
        ("ship to", _joined(", ", ship["name"], ship["street"], ship["postcode"], ship["city"], ship["country"])),
        ("total", f"{d['total']} {d['currency']}".strip() if d["total"] is not None else ""),
        ("ERP number", d["erp_number"] or ""), ("WMS ref", d["wms_ref"] or ""),
        ("attempts", str(d["attempts"])), ("duplicate of", d["duplicate_of"] or ""),
        ("last error", d["last_error"] or ""), ("lease", d["lease_owner"] or ""), ("notes", order["notes"]),
    ]:
        if value:
            _row(header, label, value)
    console.print(header)
    lines = Table("#", "SKU", "description", "qty", "unit", "unit price", title="lines")
    for line in order["lines"]:
        _row(lines, str(line["line_no"]), line["sku"], line["description"], line["qty"], line["unit"],
             line["unit_price"] or "")
    console.print(lines)
    # intake problems become findings when the order is validated; before that, show them too
    findings = d["findings"] + [p for p in order["problems"] if p not in d["findings"]]
    if findings:
        table = Table("severity", "code", "field", "message", title="findings")
        for f in findings:
            text = f["messages"].get("en") or next(iter(f["messages"].values()), "")
            _row(table, f["severity"], f["code"], f["field"] or "", text)
        console.print(table)
    history = Table("at", "actor", "from", "to", "reason", title="history")
    for e in d["events"]:
        _row(history, _when(e["at"]), e["actor"], e["from_state"] or "", e["to_state"], e["reason"])
    console.print(history)
    if d["artifacts"]:
        console.print("[bold]artifacts of failed attempts[/]")
        for path in d["artifacts"]:
            console.print(Text(f"  {path}"))


# -- people's decisions --------------------------------------------------------


def _decide(home: Home, key: str, action: str, reason: str) -> None:
    with home.store() as store:
        before = store.get(key)
        getattr(store, action)(before.key, actor(), reason)
        after = store.get(before.key)
    click.echo(f"{after.key}: {before.state} -> {after.state} ({action} by {actor()})")


@cli.command()
@click.argument("key")
@click.option("--reason", default="", help="Why (kept in the order's history).")
@pass_home
def approve(home: Home, key: str, reason: str) -> None:
    """Approve a held order: it continues from the step that held it.

    \b
    Example:
      orderbots approve ACME/PO-1001 --reason "price agreed by phone"
    """
    _decide(home, key, "approve", reason)


@cli.command()
@click.argument("key")
@click.option("--reason", required=True, help="Why; the customer is told this reason.")
@pass_home
def reject(home: Home, key: str, reason: str) -> None:
    """Reject an order; the customer is sent the reason.

    \b
    Example:
      orderbots reject ACME/PO-1001 --reason "item discontinued, please reorder SKU B-200"
    """
    _decide(home, key, "reject", reason)


@cli.command()
@click.argument("key")
@click.option("--reason", default="", help="Why (kept in the order's history).")
@pass_home
def retry(home: Home, key: str, reason: str) -> None:
    """Retry a failed, held or waiting order's step at its next run, with fresh attempts.

    \b
    Example:
      orderbots retry ACME/PO-1001 --reason "ERP back online"
    """
    _decide(home, key, "retry", reason)


@cli.command()
@click.argument("key")
@click.option("--set", "changes", multiple=True, metavar="FIELD=VALUE",
              help="Change one field (repeatable): currency, requested_date, notes, customer.name|email|locale, "
                   "ship_to.name|street|city|postcode|country, lines.N.sku|qty|unit|unit_price|description; "
                   "lines.N= removes line N. Without --set, the order opens in $EDITOR as YAML.")
@click.option("--reason", default="", help="Why (kept in the order's history with the changes).")
@pass_home
def edit(home: Home, key: str, changes: tuple[str, ...], reason: str) -> None:
    """Correct a held order; it is then validated again from the start.

    The customer id and PO number cannot change, and an order already in the
    ERP is corrected there (then approved here).

    \b
    Examples:
      orderbots edit ACME/PO-1001 --set ship_to.postcode="LS1 1AA" --set lines.2.qty=5
      orderbots edit ACME/PO-1001          # opens $EDITOR
    """
    with home.store() as store:
        item = store.get(key)
        if item.state != states.HELD:
            raise OrderbotsError(f"{item.key} is {item.state}; only held orders can be edited")
        if changes:
            order = editing.apply_changes(item.order, changes)
        else:
            text = click.edit(editing.editable_view(item.order), extension=".yaml", require_save=False)
            order = None if text is None else editing.from_view(item.order, text)
        diff = [] if order is None else editing.differences(item.order, order)
        if not diff:
            click.echo(f"{item.key}: nothing changed")
            return
        store.edit(item.key, order, actor(), reason or "corrected by a person", changes=diff)
    click.echo(f"{item.key}: held -> received (edited by {actor()}); it will be validated again")
    for line in diff:
        click.echo(f"  {line}")


# -- customer notices -------------------------------------------------------------


@cli.command("notices")
@click.option("--status", type=click.Choice(list(NOTICE_STATUS)), default="undeliverable", show_default=True,
              help="undeliverable: given up; waiting: not sent yet; sent; all.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1), help="How many.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_home
def notices_command(home: Home, status: str, limit: int, as_json: bool) -> None:
    """List customer emails in the outbox: by default the ones the sender gave up on.

    \b
    Example:
      orderbots notices --status undeliverable
    """
    with home.store() as store:
        rows = [dict(r) for r in store.notices(status, limit)]
    if as_json:
        _echo_json(rows)
        return
    table = Table("notice", "kind", "recipient", "order", "attempts", "sent", "last error")
    for r in rows:
        _row(table, str(r["id"]), r["kind"], r["recipient"], r["order_key"] or "", str(r["attempts"]),
             _when(r["sent_at"]), r["last_error"] or "")
    _console().print(table)


@cli.command()
@click.argument("notice", type=int)
@click.option("--to", "recipient", help="Send to this address instead (e.g. the corrected customer address).")
@pass_home
def resend(home: Home, notice: int, recipient: str | None) -> None:
    """Send an unsent notice again with fresh attempts (the notifier sends it on its next run).

    A notice that was sent is never sent twice.

    \b
    Example:
      orderbots resend 42 --to orders@acme-retail.example
    """
    if recipient is not None and not EMAIL.fullmatch(recipient):
        raise click.BadParameter(f"{recipient!r} is not an email address", param_hint="--to")
    with home.store() as store:
        row = store.resend_notice(notice, actor(), recipient)
    click.echo(f"notice {row['id']} ({row['kind']}{' for ' + row['order_key'] if row['order_key'] else ''}) "
               f"will be sent to {row['recipient']} on the notifier's next run")


# -- the run log -----------------------------------------------------------------


@cli.command()
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1), help="How many recent runs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_home
def runs(home: Home, limit: int, as_json: bool) -> None:
    """List recent bot runs, newest first: status, what each did, and errors.

    \b
    Example:
      orderbots runs --limit 5
    """
    with home.store() as store:
        rows = list_runs(store, limit)
    if as_json:
        _echo_json(rows)
        return
    table = Table("run", "bot", "started", "ended", "status", "counts", "error")
    for r in rows:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(r["counts"].items()))
        style = {"error": "red", "running": "yellow"}.get(r["status"], "")
        _row(table, str(r["id"]), r["bot"], _when(r["started_at"]), _when(r["ended_at"]),
             Text(r["status"], style=style), counts, r["error"] or "")
    _console().print(table)


def main() -> None:
    """Console-script entry point: logs go to stderr (INFO; DEBUG with --verbose)."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    cli(prog_name="orderbots")
