"""ERP entry throughput: the erp_entry bot (real Chromium) with 1, 2 and 4 workers against the sandbox,
and, in the same run, the same orders posted by a plain HTTP client (no browser, forms filled by label)
as the ceiling. Then the per-order time the bot adds on top of the plain client with 200 ms injected
latency per page.

Each bot figure is a whole run, as a user's run is: the browser started, every worker signed in, then every
order entered, read back and recorded; "steady" leaves the start-up out. "browser CPU" is the CPU time of
this process and its Playwright driver and Chromium processes (the sandbox excluded) per order, start-up
included (``CpuMeter``): on a machine with C cores no number of workers gets past C * 60 s / that figure.

Sizes: ``BENCH_ERP_ORDERS`` orders per configuration (default 96: a morning's batch, about six hours of
keying by hand; the browser start and the sign-ins, about 3 s, weigh more the smaller the batch).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from orderbots import bot, config, states
from sandbox.testing import PageClient, SandboxProcess
from tests.plugins.screens import add_validated, make_order, write_config

REPO = Path(__file__).resolve().parents[1]
FLOOR_4_WORKERS = 150.0
LINES = [("SKU-1001", "2", "8.50"), ("SKU-1002", "1", "14.90")]


class CpuMeter:
    """CPU time (user + system) of this process and its descendants (Playwright driver, Chromium and its
    renderers) while it runs, the process ``exclude`` left out. Descendants are sampled from /proc every
    ``interval`` seconds and each counts with its last sample: Chromium's helpers are not always reaped by
    their parent, so ``os.times()``'s children figures would miss them."""

    def __init__(self, exclude: int, interval: float = 0.1):
        self.exclude, self.interval = exclude, interval
        self._seen: dict[tuple[int, int], int] = {}  # (pid, start time) -> CPU ticks at the last sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)

    def __enter__(self) -> "CpuMeter":
        self._own = os.times()
        self._sample()
        self._before = dict(self._seen)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        own = os.times()
        ticks = sum(used - self._before.get(key, 0) for key, used in self._seen.items())
        self.seconds = own.user + own.system - self._own.user - self._own.system + ticks / os.sysconf("SC_CLK_TCK")

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        stats = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
        tree, grew = {os.getpid()}, True
        while grew:
            new = {pid for pid, f in stats.items() if int(f[1]) in tree and pid != self.exclude} - tree
            grew, tree = bool(new), tree | new
        for pid in tree - {os.getpid()}:
            fields = stats[pid]
            self._seen[(pid, int(fields[19]))] = int(fields[11]) + int(fields[12])


def _bot_run(sandbox: SandboxProcess, root: Path, tag: str, orders: int,
             workers: int) -> tuple[float, float, float]:
    """(orders per minute, client CPU seconds per order, steady seconds per order) of one erp_entry run over
    ``orders`` fresh orders; the steady figure is the time between the first and the last order reaching
    ``in_erp`` divided by the orders in between (browser start-up and sign-in excluded)."""
    home = root / tag
    home.mkdir()
    write_config(home, sandbox.url, workers=workers, trace=True)
    settings = config.load(home)
    with settings.open_store() as store:
        for n in range(orders):
            add_validated(store, make_order(f"PO-{tag}-{n}", lines=LINES))
    with CpuMeter(exclude=sandbox.process.pid) as meter:
        began = time.perf_counter()
        bot.run_bot("erp_entry", settings)
        elapsed = time.perf_counter() - began
    cpu = meter.seconds
    with settings.open_store() as store:
        done = len(store.items(states.IN_ERP))
        reached = [datetime.fromisoformat(r[0]) for r in store.db.execute(
            "SELECT at FROM events WHERE to_state = ? ORDER BY at", (states.IN_ERP,))]
    if done != orders:
        raise RuntimeError(f"{tag}: only {done} of {orders} orders reached in_erp")
    steady = (reached[-1] - reached[0]).total_seconds() / max(1, len(reached) - 1)
    return orders / elapsed * 60, cpu / orders, steady


def _http_rate(sandbox: SandboxProcess, tag: str, orders: int, clients: int) -> float:
    """Orders per minute keyed by ``clients`` plain HTTP clients (the ceiling; sign-in not timed)."""
    def work(client: PageClient, part: list[int]):
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
    signed_in = [PageClient(sandbox.url) for _ in parts]
    for client in signed_in:
        client.login("erp", sandbox.user, sandbox.password)
    threads = [threading.Thread(target=work, args=(c, p)) for c, p in zip(signed_in, parts)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return orders / (time.perf_counter() - began) * 60


def main() -> None:
    orders = int(os.environ.get("BENCH_ERP_ORDERS", "96"))
    root = Path(tempfile.mkdtemp(prefix="bench-erp-"))
    shutil.copytree(REPO / "rules", root / "rules")
    try:
        sandbox = SandboxProcess(root, root / "sandbox.db", root / "sandbox.log").start()
        os.environ.update(sandbox.env)
        try:
            runs = {w: _bot_run(sandbox, root, f"w{w}", orders, w) for w in (1, 2, 4)}
            ceiling = _http_rate(sandbox, "http4", orders, 4)
            cores = os.cpu_count() or 1
            for w, (rate, cpu, steady) in runs.items():
                target = f"(target >= {FLOOR_4_WORKERS:g})" if w == 4 else "(no target)"
                print(f"erp_entry {w} worker{'s' if w > 1 else ' '}: {rate:6.1f} orders/min {target}; "
                      f"steady {60 / steady:.1f} orders/min after start-up; browser CPU {cpu * 1000:.0f} "
                      f"ms/order, so at most {cores * 60 / cpu:.0f} orders/min on {cores} cores")
            print(f"plain HTTP client x4 (ceiling): {ceiling:.1f} orders/min")
            print(f"bot 4 workers / ceiling: {runs[4][0] / ceiling:.3f} ratio")

            small = max(5, orders // 4)
            sandbox.set_faults(latency=0.2)
            bot_seconds = _bot_run(sandbox, root, "lat-bot", small, 1)[2]
            http_seconds = 60 / _http_rate(sandbox, "lat-http", small, 1)
            print(f"bot overhead per order at 200 ms/page: {bot_seconds - http_seconds:.2f} s "
                  f"(target as low as possible; bot {bot_seconds:.2f} s vs plain client {http_seconds:.2f} s, "
                  f"both after sign-in; the bot also opens the detail page to read the order back)")
        finally:
            sandbox.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
