"""ERP entry throughput: the erp_entry bot (real Chromium) with 1, 2 and 4 workers against the sandbox,
and, in the same run, the same orders posted by a plain HTTP client (no browser, forms filled by label)
as the ceiling. Then the per-order time the bot adds on top of the plain client with 200 ms injected
latency per page.

Sizes: ``BENCH_ERP_ORDERS`` orders per configuration (default 24).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from orderbots import bot, config, states
from sandbox.testing import PageClient, SandboxProcess
from tests.plugins.screens import add_validated, make_order, write_config

REPO = Path(__file__).resolve().parents[1]
FLOOR_4_WORKERS = 150.0
LINES = [("SKU-1001", "2", "8.50"), ("SKU-1002", "1", "14.90")]


def _bot_rate(sandbox: SandboxProcess, root: Path, tag: str, orders: int, workers: int) -> float:
    """Orders per minute of one erp_entry run over ``orders`` fresh orders (browser start-up included)."""
    home = root / tag
    home.mkdir()
    write_config(home, sandbox.url, workers=workers, trace=True)
    settings = config.load(home)
    with settings.open_store() as store:
        for n in range(orders):
            add_validated(store, make_order(f"PO-{tag}-{n}", lines=LINES))
    began = time.perf_counter()
    bot.run_bot("erp_entry", settings)
    elapsed = time.perf_counter() - began
    with settings.open_store() as store:
        done = len(store.items(states.IN_ERP))
    if done != orders:
        raise RuntimeError(f"{tag}: only {done} of {orders} orders reached in_erp")
    return orders / elapsed * 60


def _http_rate(sandbox: SandboxProcess, tag: str, orders: int, clients: int) -> float:
    """Orders per minute keyed by ``clients`` plain HTTP clients (the ceiling)."""
    def work(part: list[int]):
        client = PageClient(sandbox.url)
        client.login("erp", sandbox.user, sandbox.password)
        for n in part:
            order = make_order(f"PO-{tag}-{n}")
            page = client.enter_order(
                {"Customer number": order.customer.id, "Customer PO": order.po_number,
                 "Requested delivery date": order.requested_date.isoformat(), "Ship-to name": order.ship_to.name,
                 "Street": order.ship_to.street, "City": order.ship_to.city, "Postcode": order.ship_to.postcode,
                 "Country": order.ship_to.country, "Notes": order.notes}, LINES)
            if not any("created" in s for s in page.statuses):
                raise RuntimeError(f"plain client could not enter {order.po_number}: {page.alerts}")

    parts = [list(range(orders))[i::clients] for i in range(clients)]
    threads = [threading.Thread(target=work, args=(p,)) for p in parts]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return orders / (time.perf_counter() - began) * 60


def main() -> None:
    orders = int(os.environ.get("BENCH_ERP_ORDERS", "24"))
    root = Path(tempfile.mkdtemp(prefix="bench-erp-"))
    shutil.copytree(REPO / "rules", root / "rules")
    try:
        sandbox = SandboxProcess(root, root / "sandbox.db", root / "sandbox.log").start()
        os.environ.update(sandbox.env)
        try:
            rates = {w: _bot_rate(sandbox, root, f"w{w}", orders, w) for w in (1, 2, 4)}
            ceiling = _http_rate(sandbox, "http4", orders, 4)
            for w, rate in rates.items():
                floor = f" (target >= {FLOOR_4_WORKERS:g})" if w == 4 else ""
                print(f"erp_entry {w} worker{'s' if w > 1 else ''}: {rate:.1f} orders/min{floor}")
            print(f"plain HTTP client x4 (ceiling): {ceiling:.1f} orders/min")
            print(f"bot 4 workers / ceiling: {rates[4] / ceiling:.2f} ratio")

            small = max(4, orders // 4)
            sandbox.set_faults(latency=0.2)
            bot_seconds = 60 / _bot_rate(sandbox, root, "lat-bot", small, 1)
            http_seconds = 60 / _http_rate(sandbox, "lat-http", small, 1)
            print(f"bot overhead per order at 200 ms/page: {bot_seconds - http_seconds:.2f} s "
                  f"(bot {bot_seconds:.2f} s vs plain client {http_seconds:.2f} s; the bot also opens the "
                  f"customer lookup popup and reads the order back)")
        finally:
            sandbox.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
