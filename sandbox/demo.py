"""``orderbots demo``: every channel end to end on embedded sample data, with one command.

The demo builds a private home (default ``runlog/demo/``), starts the sandbox
ERP/WMS/portal, a private Dovecot and a local SMTP sink whose mail lands in
``<demo>/outbox/*.eml``, seeds realistic work in every channel (see
``sandbox.demo_data``), runs ``orderbots serve --until-idle`` with a fast
schedule while showing progress, then prints a summary per channel and
writes the KPI report. Every process it started is stopped on the way out,
also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table

from orderbots import config, kpi, states
from orderbots.masterdata import MasterData
from orderbots.report import write_report
from orderbots.store import Store

from . import demo_data
from .portal_db import buyer_item
from .mailserver import Dovecot, MailSink
from .testing import REPO, SandboxProcess

MARKER = ".orderbots-demo"
PORTAL_POS = 6
FIGURES = ("received", "in_erp", "released", "held", "rejected", "failed")
MAILBOX = "orders@orderbots.example"
SCHEDULE = """\
# The demo's fast schedule: every bot every few seconds.
jobs:
  - {name: folder_intake, bot: folder_intake, interval: {seconds: 3}}
  - {name: email_intake, bot: email_intake, interval: {seconds: 3}}
  - {name: portal_intake, bot: portal_intake, interval: {seconds: 4}}
  - {name: validate, bot: validate, interval: {seconds: 2}}
  - {name: erp_entry, bot: erp_entry, interval: {seconds: 2}}
  - {name: wms_release, bot: wms_release, interval: {seconds: 2}}
  - {name: notifier, bot: notifier, interval: {seconds: 2}}
"""


def _config(sandbox_url: str, dovecot: Dovecot, sink: MailSink) -> str:
    items = MasterData.load(REPO / "rules" / "data").items
    item_map = "{" + ", ".join(f"{buyer_item(sku)}: {sku}" for sku in items) + "}"
    return f"""\
# Written by `orderbots demo`: every server is a private one on 127.0.0.1.
runlog: runlog
folders:
  - {{name: orders, path: folders/orders, stable_seconds: 1}}
imap:
  host: 127.0.0.1
  port: {dovecot.port}
  security: plain
  user: {dovecot.user}
  password_env: ORDERBOTS_IMAP_PASSWORD
  processed_folder: Processed
  attention_folder: Attention
smtp:
  host: 127.0.0.1
  port: {sink.port}
  security: plain
  from_address: {MAILBOX}
  ops_address: ops@orderbots.example
notifier: {{backoff: 2, max_backoff: 10}}
erp:
  url: {sandbox_url}
  user: bot
  password_env: ORDERBOTS_SANDBOX_PASSWORD
  workers: 2
  retry_backoff: 3
  max_attempts: 3
portals:
  - name: acme
    url: {sandbox_url}
    customer: C1001
    user: supplier
    password_env: ORDERBOTS_PORTAL_PASSWORD
    item_map: {item_map}
wms:
  url: {sandbox_url}
  user: bot
  password_env: ORDERBOTS_SANDBOX_PASSWORD
  workers: 1
  retry_backoff: 3
  max_attempts: 3
  stock_check: true
"""


def _fresh_home(path: Path) -> Path:
    """An empty demo home with the shipped rules and templates; refuses to wipe a folder it did not make."""
    if path.exists():
        if not (path / MARKER).exists():
            raise click.UsageError(f"{path} exists and was not made by the demo; choose another --dir")
        shutil.rmtree(path)
    path.mkdir(parents=True)
    (path / MARKER).write_text("made by orderbots demo; deleted by the next demo run\n")
    for name in ("rules", "templates"):
        shutil.copytree(REPO / name, path / name)
    return path


def _progress(store: Store, started: float) -> str:
    counts = store.counts()
    shown = " · ".join(f"{state} {counts[state]}" for state in states.STATES if counts.get(state))
    return f"[bold]{time.monotonic() - started:5.0f} s[/]  {shown or 'waiting for the first orders'}  (Ctrl-C stops)"


def summary(store: Store) -> list[dict]:
    """Per channel: received, in ERP, released, held, rejected, failed, median seconds to the ERP."""
    rows = store.db.execute(
        """SELECT channel, COUNT(*), SUM(erp_number IS NOT NULL), SUM(wms_ref IS NOT NULL),
                  SUM(state = 'held'), SUM(state = 'rejected'), SUM(state = 'failed')
           FROM orders GROUP BY channel ORDER BY channel""").fetchall()
    cycles = kpi.cycle_times_by_channel(store)
    return [{"channel": channel, **dict(zip(FIGURES, figures)), "median_to_erp": cycles[channel]["to_erp"].median}
            for channel, *figures in rows]


def summary_table(rows: list[dict]) -> Table:
    table = Table(title="Demo summary per channel")
    table.add_column("channel")
    for column in (*FIGURES, "median to ERP"):
        table.add_column(column.replace("_", " "), justify="right")
    for row in rows:
        median = row["median_to_erp"]
        table.add_row(row["channel"], *(str(row[f]) for f in FIGURES), "-" if median is None else f"{median:.1f} s")
    return table


def _serve(home: Path, env: dict[str, str], timeout: float, console: Console) -> int:
    process = subprocess.Popen(
        [sys.executable, "-m", "orderbots", "--home", str(home), "serve", "--until-idle",
         "--max-seconds", str(timeout)], env=env, stdout=(home / "runlog" / "serve.log").open("wb"),
        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        started = time.monotonic()
        with Store(config.load(home).db_path) as store, Live(_progress(store, started), console=console,
                                                              refresh_per_second=2) as live:
            while process.poll() is None:
                time.sleep(0.5)
                live.update(_progress(store, started))
        return process.returncode
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


@click.command("demo")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("runlog/demo"), show_default=True,
              help="Demo home to (re)create; everything the demo makes stays inside it.")
@click.option("--timeout", type=float, default=150, show_default=True,
              help="Stop the bots after this many seconds even if work is left.")
@click.option("--summary-json", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the summary per channel to this file as JSON.")
def command(directory: Path, timeout: float, summary_json: Path | None) -> None:
    """Run every channel end to end on sample data and print a summary.

    Starts the sandbox ERP/WMS/portal, a private IMAP server and an SMTP sink
    on 127.0.0.1, drops sample spreadsheets into the watched folder, sample
    emails into the mailbox and purchase orders on the customer portal (with
    a realistic share of problems), runs the
    scheduler until the work is done, then prints a summary per channel and
    writes the KPI report. Everything started is stopped on exit or Ctrl-C.

    Example:
      orderbots demo --dir runlog/demo
    """
    console = Console()
    home = _fresh_home(directory.resolve())
    stops: list = []  # how to stop what was started, in order

    def stop_on_term(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop_on_term)
    try:
        console.print(f"[bold]orderbots demo[/] in {home}")
        sandbox = SandboxProcess(home, None, home / "runlog" / "sandbox.log", "--portal-seed", str(PORTAL_POS))
        stops.append(sandbox.stop)
        sandbox.start()
        dovecot = Dovecot()
        stops.append(dovecot.close)
        dovecot.start()
        sink = MailSink(home / "outbox")
        stops.append(sink.stop)
        sink.start()
        console.print(f"  sandbox ERP/WMS {sandbox.url}, IMAP 127.0.0.1:{dovecot.port}, SMTP 127.0.0.1:{sink.port}")
        (home / "orderbots.yaml").write_text(_config(sandbox.url, dovecot, sink), encoding="utf-8")
        (home / "schedules.yaml").write_text(SCHEDULE, encoding="utf-8")

        today = date.today()
        files = demo_data.write_spreadsheets(home / "folders" / "orders" / "inbox", today)
        mails = demo_data.emails(today, MAILBOX)
        for raw in mails:
            dovecot.append(raw)
        console.print(f"  seeded {len(files)} spreadsheets, {len(mails)} emails and {PORTAL_POS} portal POs")

        env = {**os.environ, **sandbox.env, "ORDERBOTS_IMAP_PASSWORD": dovecot.password,
               "ORDERBOTS_PORTAL_PASSWORD": sandbox.password}
        env.pop("ORDERBOTS_HOME", None)
        code = _serve(home, env, timeout, console)
        if code != 0:
            console.print(f"[red]the scheduler exited with {code}; see {home / 'runlog' / 'serve.log'}[/]")
        _finish(home, console, summary_json)
    except KeyboardInterrupt:
        console.print("[yellow]demo interrupted: stopping everything it started[/]")
        raise SystemExit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)
        for stop in reversed(stops):
            stop()


def _finish(home: Path, console: Console, summary_json: Path | None) -> None:
    settings = config.load(home)
    report = write_report(settings)
    with Store(settings.db_path) as store:
        figures = summary(store)
        console.print(summary_table(figures))
        left = {s: n for s, n in store.counts().items() if s not in (*states.TERMINAL, *states.EXCEPTIONS,
                                                                       states.RELEASED)}
    if summary_json:
        summary_json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    if left:
        console.print(f"[yellow]still in progress when the demo stopped: {left}[/]")
    errors = sorted((home / "folders" / "orders" / "error").glob("*.error.txt"))
    mails = sorted((home / "outbox").glob("*.eml"))
    cli = f"orderbots --home {home}"
    console.print(f"""
[bold]Where to look next[/]
  {cli} orders --state held      orders waiting for a person, with the reason
  {cli} show <KEY>               one order: lines, rule results, full history
  {home / 'outbox'}    {len(mails)} emails the customers received (.eml)
  {home / 'folders/orders/error'}    {len(errors)} file(s) that could not be read, with a .error.txt each
  {report}    the KPI report (open in a browser)""")
