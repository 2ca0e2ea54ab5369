"""``sandbox``: serve the demo ERP and WMS until SIGTERM/SIGINT.

Defaults come from the ``sandbox:`` section of ``orderbots.yaml`` (port,
session_idle, unique_po) and options override them. The user's password is
read from ``ORDERBOTS_SANDBOX_PASSWORD`` (required), the user name from
``ORDERBOTS_SANDBOX_USER`` (default ``bot``), faults from
``ORDERBOTS_SANDBOX_FAULTS`` and the fault options, and the admin token for
``POST /_admin/faults`` from ``ORDERBOTS_SANDBOX_ADMIN_TOKEN``. The customer portal
(``/portal/``) has its own user: ``ORDERBOTS_PORTAL_USER`` (default ``supplier``)
with ``ORDERBOTS_PORTAL_PASSWORD`` (default: the sandbox password); its layout
comes from ``--portal-layout`` or ``ORDERBOTS_PORTAL_LAYOUT``.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import click

from orderbots import config, yamlfile
from orderbots.errors import ConfigError

from . import erp, portal, wms
from .app import Credentials, Sandbox, SandboxServer
from .db import SandboxDB
from .faults import Faults
from .portal_db import PortalData
DEFAULT_PORT = 8765


def _fault_option(name: str, help: str):
    return click.option(f"--{name.replace('_', '-')}", name, type=float, default=None, help=help)


@click.command("sandbox")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="orderbots home (default: $ORDERBOTS_HOME or the current directory); master data is read "
                   "from its rules/data.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=None, help=f"Port (default: sandbox.port or {DEFAULT_PORT}; 0 = any free).")
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Sandbox database file (default: <home>/runlog/sandbox.db).")
@click.option("--session-idle", type=float, default=None,
              help="Seconds of inactivity after which a session expires (default: sandbox.session_idle or 900).")
@click.option("--unique-po/--no-unique-po", default=None,
              help="Refuse a second order with the same customer and customer PO (default: off).")
@_fault_option("latency", "Seconds added to every page.")
@_fault_option("error_rate", "Share of requests answered with HTTP 500.")
@_fault_option("drop_session", "Share of requests whose session is invalidated first.")
@_fault_option("slow_rate", "Share of pages that take --slow-seconds.")
@_fault_option("slow_seconds", "How long a slow page takes (default 8).")
@_fault_option("ghost_submit", "Share of 'Submit order'/'Release' posts committed but answered with HTTP 500.")
@click.option("--portal-layout", type=click.Choice(sorted(portal.LAYOUTS)), default=None,
              help="Customer portal layout (default: $ORDERBOTS_PORTAL_LAYOUT or classic); v2 renames, reorders "
                   "and adds columns and shows 10 POs per page instead of 25.")
@click.option("--portal-seed", type=click.IntRange(0, 100_000), default=0,
              help="Publish this many generated purchase orders on an empty customer portal.")
@click.option("--reset", is_flag=True, help="Start with a fresh database (deletes the existing file).")
def main(home, host, port, db_path, session_idle, unique_po, portal_layout, portal_seed, reset, **fault_flags):
    """Serve the sandbox ERP (/erp/), WMS (/wms/) and customer portal (/portal/) until stopped with Ctrl-C or
    SIGTERM.

    \b
    Example:
      ORDERBOTS_SANDBOX_PASSWORD=secret orderbots sandbox --port 8765 --latency 0.2
    """
    password = os.environ.get("ORDERBOTS_SANDBOX_PASSWORD", "")
    if not password:
        raise click.ClickException("environment variable ORDERBOTS_SANDBOX_PASSWORD is not set; export the "
                                   "password the sandbox user signs in with, then start the sandbox again")
    try:
        settings = config.load(home)
        section = settings.section("sandbox")
        port = _setting(settings, section, "port", DEFAULT_PORT, int) if port is None else port
        session_idle = _setting(settings, section, "session_idle", 900, float) if session_idle is None \
            else session_idle
        unique_po = _setting(settings, section, "unique_po", False, bool) if unique_po is None else unique_po
        faults = Faults.parse(os.environ.get("ORDERBOTS_SANDBOX_FAULTS", "")).merged(fault_flags)
        db = SandboxDB(db_path or settings.runlog_dir / "sandbox.db")
        if reset:
            db.reset()
        db.migrate()
        db.seed(settings.rules_dir / "data")
        portal_data = PortalData(db)
        portal.set_layout(portal_data, portal_layout or os.environ.get("ORDERBOTS_PORTAL_LAYOUT") or "classic")
        if portal_seed and not portal_data.list_pos("", "", "", 0, 1)[1]:
            portal_data.seed(portal_seed)
    except (ConfigError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    portal_user = Credentials(os.environ.get("ORDERBOTS_PORTAL_USER") or "supplier",
                              os.environ.get("ORDERBOTS_PORTAL_PASSWORD") or password)
    areas = [erp.AREA, wms.AREA, portal.area(portal_user)]
    app = Sandbox(db, Credentials(os.environ.get("ORDERBOTS_SANDBOX_USER") or "bot", password), areas,
                  faults=faults, session_idle=session_idle, unique_po=unique_po,
                  admin_token=os.environ.get("ORDERBOTS_SANDBOX_ADMIN_TOKEN", ""))
    try:
        server = SandboxServer(app, host, port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    serve(server, db.path)


def _setting(settings, section: dict, key: str, default, kind: type):
    """``sandbox.<key>`` of orderbots.yaml as ``kind``; ``ConfigError`` with file:line if it is not one."""
    value = section.get(key, default)
    ok = isinstance(value, bool) if kind is bool else isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        return kind(value)
    raise ConfigError(f"{yamlfile.where(settings.home / config.CONFIG_FILE, section, key)}: sandbox.{key} must be "
                      f"{'true or false' if kind is bool else 'a number'}, not {value!r}")


def serve(server: SandboxServer, db_path: Path) -> None:
    """Run ``server`` until SIGTERM or SIGINT, then close it."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), name="sandbox-http", daemon=True)
    thread.start()
    click.echo(f"Sandbox listening on {server.url} (ERP {server.url}erp/, WMS {server.url}wms/, "
               f"portal {server.url}portal/, database {db_path})")
    stop.wait()
    server.shutdown()
    server.server_close()
    click.echo("Sandbox stopped")
