"""Portal intake throughput: POs pulled per minute from the sandbox portal with real Chromium.

Starts the real sandbox (subprocess, fresh database, no faults) in a private
home, publishes POS purchase orders on its portal, then times one
``portal_intake`` run in ``detail`` mode (list pages, every PO's detail page,
commit, "Acknowledge") with the default settings (2 workers, traces on), and
one in ``export`` mode on as many new POs. The figure includes signing in,
listing and validating the imported orders.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

from orderbots import bot, config
from sandbox.testing import REPO, SandboxProcess

POS = int(os.environ.get("BENCH_PORTAL_POS", "300"))
FLOOR = 300  # POs per minute with detail pages


def _home(root: Path) -> Path:
    home = root / "home"
    home.mkdir()
    for name in ("rules", "templates"):
        shutil.copytree(REPO / name, home / name)
    return home


def _pull(home: Path, server: SandboxProcess, mode: str) -> tuple[int, float]:
    """Seed POS POs, run the bot once; ``(POs imported and acknowledged, seconds)``."""
    request = urllib.request.Request(f"{server.url}_admin/portal/seed", json.dumps({"count": POS}).encode(),
                                     headers={"X-Admin-Token": server.admin_token,
                                              "Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=60).close()
    portal = {"name": f"bench-{mode}", "url": server.url, "customer": "C1001", "user": "supplier",
              "password_env": "BENCH_PORTAL_PASSWORD", "mode": mode,
              "item_map": {f"B-{sku[4:]}": sku for sku in _skus(home)}}
    (home / "orderbots.yaml").write_text(yaml.safe_dump({"portals": [portal]}), encoding="utf-8")
    started = time.perf_counter()
    run = bot.run_bot("portal_intake", config.load(home), portal=portal["name"])
    elapsed = time.perf_counter() - started
    return min(run.counts["imported"], run.counts["acknowledged"]), elapsed


def _skus(home: Path) -> list[str]:
    lines = (home / "rules" / "data" / "items.csv").read_text(encoding="utf-8").splitlines()[1:]
    return [line.split(",", 1)[0] for line in lines if line]


def main() -> None:
    password = secrets.token_urlsafe(12)
    os.environ["BENCH_PORTAL_PASSWORD"] = password
    with tempfile.TemporaryDirectory() as tmp:
        home = _home(Path(tmp))
        os.environ["ORDERBOTS_HOME"] = str(home)
        server = SandboxProcess(home, Path(tmp) / "sandbox.db", Path(tmp) / "sandbox.log",
                                env={"ORDERBOTS_PORTAL_USER": "supplier", "ORDERBOTS_PORTAL_PASSWORD": password})
        with server:
            for mode in ("detail", "export"):
                pulled, seconds = _pull(home, server, mode)
                rate = pulled / seconds * 60
                target = f" (target >= {FLOOR})" if mode == "detail" else ""
                print(f"portal_pos_per_minute_{mode}: {rate:.0f} POs/min{target} "
                      f"[{pulled}/{POS} POs in {seconds:.1f} s]", flush=True)
