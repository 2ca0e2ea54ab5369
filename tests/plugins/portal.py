"""Fixtures for the customer portal and the portal_intake bot, on the REAL sandbox server.

``portal``: a running sandbox (``sandbox_factory``) whose portal has its own user
and password (exported as ``TEST_PORTAL_PASSWORD``); a ``PortalSandbox`` with
``seed(count, pos=...)``, ``cancel(number)``, ``change(number, **fields)``,
``set_layout(name)``, ``pos()`` (status and version per PO, read from the sandbox
database), ``client()`` (a signed-in ``PageClient``) and ``server`` (the
``SandboxProcess``: ``set_faults`` etc.). ``portal_factory(*cli_args)`` starts more.

``write_portals(home, *entries)`` writes the ``portals:`` section (and fast
browser timeouts) into the home's ``orderbots.yaml``; ``portal_entry(portal, **kw)``
is one entry for a ``PortalSandbox``. ``run_intake(home, **args)`` runs the bot
once and returns its ``Run``; ``store_orders(home)`` lists the stored orders.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import urllib.request
from pathlib import Path

import pytest
import yaml

from orderbots import bot, config
from sandbox.portal_db import buyer_item
from sandbox.testing import PageClient, SandboxProcess

ACTIVE_EUR_SKUS = ("SKU-1001", "SKU-1002", "SKU-1003", "SKU-1004", "SKU-1005", "SKU-2001", "SKU-2002", "SKU-2003",
                   "SKU-2004", "SKU-3001", "SKU-3002", "SKU-3003", "SKU-3004")
ITEM_MAP = {buyer_item(sku): sku for sku in ACTIVE_EUR_SKUS}


class PortalSandbox:
    """One sandbox process seen as a customer portal; see module docstring."""

    def __init__(self, server: SandboxProcess, user: str, password_env: str, password: str):
        self.server, self.user, self.password_env, self.password = server, user, password_env, password

    @property
    def url(self) -> str:
        return self.server.url

    def admin(self, action: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}_admin/portal/{action}", data, method="POST" if data else "GET",
                                         headers={"X-Admin-Token": self.server.admin_token,
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def seed(self, count: int = 0, pos: list[dict] | None = None, buyer: str | None = None) -> list[str]:
        return self.admin("seed", {"count": count, "pos": pos or [], **({"buyer": buyer} if buyer else {})})["numbers"]

    def cancel(self, number: str) -> dict:
        return self.admin("cancel", {"number": number})

    def change(self, number: str, **fields) -> dict:
        return self.admin("change", {"number": number, **fields})

    def set_layout(self, name: str) -> dict:
        return self.admin("layout", {"layout": name})

    def pos(self) -> dict[str, dict]:
        """``{number: {"status", "version", "changed_at"}}`` straight from the sandbox database."""
        conn = sqlite3.connect(f"file:{self.server.db_path}?mode=ro", uri=True, timeout=10)
        try:
            rows = conn.execute("SELECT number, status, version, changed_at FROM portal_pos ORDER BY id").fetchall()
        finally:
            conn.close()
        return {n: {"status": s, "version": v, "changed_at": c} for n, s, v, c in rows}

    def client(self) -> PageClient:
        client = PageClient(self.url)
        page = client.get("/portal/login")
        client.submit(page, "Sign in", {"Username": self.user, "Password": self.password})
        return client


@pytest.fixture
def portal_factory(sandbox_factory, monkeypatch):
    started = []

    def start(*args: str) -> PortalSandbox:
        password_env = f"TEST_PORTAL_PASSWORD{len(started) or ''}"
        password = secrets.token_urlsafe(12)
        user = f"supplier{len(started) + 1}"
        server = sandbox_factory(*args, env={"ORDERBOTS_PORTAL_USER": user, "ORDERBOTS_PORTAL_PASSWORD": password})
        monkeypatch.setenv(password_env, password)
        started.append(server)
        return PortalSandbox(server, user, password_env, password)

    return start


@pytest.fixture
def portal(portal_factory) -> PortalSandbox:
    return portal_factory()


BROWSER_SETTINGS = {"action_timeout": 5, "navigation_timeout": 10, "capture_timeout": 5, "retries": 3,
                    "workers": 1, "trace": False}  # one browser per run and no trace keep the tests quick


def portal_entry(portal: PortalSandbox, name: str = "acme", customer: str = "C1001", **overrides) -> dict:
    return {"name": name, "url": portal.url, "customer": customer, "user": portal.user,
            "password_env": portal.password_env, "item_map": dict(ITEM_MAP), **BROWSER_SETTINGS, **overrides}


def write_portals(home: Path, *entries: dict) -> None:
    (home / "orderbots.yaml").write_text(yaml.safe_dump({"portals": list(entries)}, sort_keys=False),
                                         encoding="utf-8")


def run_intake(home: Path, **args):
    return bot.run_bot("portal_intake", config.load(home), **args)


def store_orders(home: Path) -> list:
    with config.load(home).open_store() as store:
        return store.items()
