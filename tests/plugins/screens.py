"""Fixtures for the screen bots (erp_entry, wms_release) against the real sandbox.

``screens_home``: the test's ``home`` with an ``orderbots.yaml`` whose ``erp:`` and
``wms:`` sections point at ``sandbox_server`` (short backoff and leases so tests
retry quickly). ``screens_settings``: its loaded ``Settings``. ``make_order(po,
lines=..., **fields)``: a canonical order for customer C1001. ``add_validated(store,
order)``: the order stored and moved to ``validated``. ``run_until_settled(settings,
bot)``: run a bot until no item is waiting for it.
"""

import time
from datetime import date
from decimal import Decimal

import pytest
import yaml

from orderbots import bot, config, states
from orderbots.model import Address, Customer, Order, OrderLine

SCREEN_SETTINGS = {"workers": 2, "lease_seconds": 30, "retry_backoff": 0.2, "max_attempts": 8,
                   "action_timeout": 8, "navigation_timeout": 15, "capture_timeout": 8}


def write_config(home, url, **overrides):
    section = {"url": url, "user": "bot", "password_env": "ORDERBOTS_SANDBOX_PASSWORD", **SCREEN_SETTINGS,
               **overrides}
    (home / "orderbots.yaml").write_text(yaml.safe_dump({"erp": section, "wms": section}), encoding="utf-8")


@pytest.fixture
def screens_home(home, sandbox_server):
    write_config(home, sandbox_server.url)
    return home


@pytest.fixture
def screens_settings(screens_home):
    return config.load(screens_home)


def make_order(po: str, lines=(("SKU-1001", "12", "8.50"),), customer="C1001", **fields) -> Order:
    defaults = dict(currency="EUR", requested_date=date(2031, 3, 14),
                    ship_to=Address("Acme DC North", "1 Dock Road", "Leeds", "LS1 1AA", "GB"),
                    notes="Deliver to gate 4")
    defaults.update(fields)
    return Order("api", f"test:{po}", Customer(customer, "Acme Retail Ltd", "orders@acme-retail.example"), po,
                 [OrderLine(n, sku, Decimal(qty), unit_price=Decimal(price) if price else None)
                  for n, (sku, qty, price) in enumerate(lines, start=1)], **defaults)


def add_validated(store, order: Order) -> str:
    key = store.add_order(order).key
    store.transition(key, states.VALIDATED, actor="test", reason="validated by the test")
    return key


WAITING = {"erp_entry": (states.VALIDATED, states.ENTERING_ERP), "wms_release": (states.IN_ERP, states.RELEASING_WMS)}


def run_until_settled(settings, name: str, rounds: int = 30, **args):
    """Run bot ``name`` until none of its items is waiting (or in retry for it); returns the runs."""
    runs = []
    for _ in range(rounds):
        runs.append(bot.run_bot(name, settings, **args))
        with settings.open_store() as store:
            waiting = [i for i in store.items() if i.state in WAITING[name]
                       or (i.state == states.RETRY_WAIT and i.resume_step == name)]
        if not waiting:
            return runs
        time.sleep(0.3)
    raise AssertionError(f"{name} did not settle: {[(i.key, i.state, i.last_error) for i in waiting]}")


def files_containing(root, secret: str) -> list[str]:
    """Every file under ``root`` (and every member of a zip, e.g. a Playwright trace) that contains ``secret``."""
    import zipfile
    from pathlib import Path

    needle = secret.encode()
    hits = []
    for path in Path(root).rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if needle in data:
            hits.append(str(path))
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                hits += [f"{path}!{name}" for name in archive.namelist() if needle in archive.read(name)]
    return hits


def artifact_files(settings, key: str) -> list:
    """Evidence files of ``key`` over all runs (artifacts/<run>/<sanitised key>/attempt-<n>/...)."""
    from orderbots.runlog import safe_part

    return sorted(p for p in settings.artifacts_dir.glob(f"*/{safe_part(key)}/attempt-*/*") if p.is_file())
