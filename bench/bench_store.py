"""Store throughput: claim one item, transition it, release the lease - on a database file on disk.

Measured with the store's default ``synchronous=FULL`` (every state change is fsynced:
what the exactly-once rules rely on; lease commits ride along with the next one, so a
claim+transition costs one fsync and the disk's bare fsynced commits/s are its ceiling)
and, for comparison only, ``NORMAL`` (WAL commits fsynced at checkpoints; a power cut
may lose the last state changes).
Also one worker per core claiming concurrently from the same file, and batch claims
(``claim_batch``: many leases in one commit, their transitions in one more), which
is how bulk steps without outside side effects (validation) use the store.
"""

from __future__ import annotations

import multiprocessing
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from orderbots import states
from orderbots.model import Customer, Order, OrderLine
from orderbots.store import Store

TARGET = 2000
ITEMS = 3000


def _orders(n: int):
    for i in range(n):
        yield Order(channel="api", source_ref=f"bench:{i}", customer=Customer("C1001", "Acme"),
                    po_number=f"PO-{i}", lines=[OrderLine(1, "SKU-1001", Decimal(2), unit_price=Decimal("8.50"))])


def _fill(path: Path, n: int) -> None:
    with Store(path) as store, store.transaction():
        for order in _orders(n):
            store.add_order(order)


def _work(path: str, synchronous: str, owner: str) -> int:
    """Claim-and-transition until no item is left; return how many this worker did."""
    done = 0
    with Store(path, synchronous=synchronous) as store:
        while True:
            with store.claim(states.VALIDATE, owner) as item:
                if item is None:
                    return done
                store.transition(item.key, states.VALIDATED, actor=owner)
                done += 1


def _batched(path: Path, n: int, batch: int) -> float:
    """``claim_batch`` of ``batch`` items, their transitions in one transaction (synchronous=FULL)."""
    _fill(path, n)
    done, began = 0, time.perf_counter()
    with Store(path) as store:
        while True:
            with store.claim_batch(states.VALIDATE, "bench", limit=batch) as items:
                if not items:
                    break
                with store.transaction():
                    for item in items:
                        store.transition(item.key, states.VALIDATED, actor="bench")
                done += len(items)
    assert done == n
    return n / (time.perf_counter() - began)


def _worker_process(path: str, synchronous: str, owner: str, start, results) -> None:
    with Store(path, synchronous=synchronous):
        pass  # open (and migrate) before the clock starts
    start.wait()
    results.put(_work(path, synchronous, owner))


def _one_worker(folder: Path, synchronous: str, n: int) -> float:
    path = folder / f"one-{synchronous}.db"
    _fill(path, n)
    began = time.perf_counter()
    assert _work(str(path), synchronous, "bench") == n
    return n / (time.perf_counter() - began)


def _many_workers(folder: Path, synchronous: str, n: int, workers: int) -> float:
    path = folder / f"many-{synchronous}.db"
    _fill(path, n)
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_worker_process, args=(str(path), synchronous, f"bench-{i}", start, results))
             for i in range(workers)]
    for p in procs:
        p.start()
    time.sleep(2.0)  # let every worker start before the clock starts
    began = time.perf_counter()
    start.set()
    total = sum(results.get(timeout=600) for _ in procs)
    elapsed = time.perf_counter() - began
    for p in procs:
        p.join()
    assert total == n
    return n / elapsed


def _commits_per_second(folder: Path, synchronous: str, n: int = 500) -> float:
    """Bare single-row write transactions: the ceiling set by the disk (a claim+transition takes 1 fsync)."""
    with Store(folder / f"commits-{synchronous}.db", synchronous=synchronous) as store:
        store.set_sync("bench", {"n": 0})
        began = time.perf_counter()
        for i in range(n):
            store.set_sync("bench", {"n": i})
        return n / (time.perf_counter() - began)


def main(items: int = ITEMS) -> None:
    workers = max(multiprocessing.cpu_count(), 2)
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:  # on the disk the runlog lives on, not tmpfs
        folder = Path(tmp)
        for synchronous in ("FULL", "NORMAL"):
            print(f"sqlite bare commits, synchronous={synchronous}: "
                  f"{_commits_per_second(folder, synchronous):,.0f} commits/s (for reference)")
        for synchronous in ("FULL", "NORMAL"):
            rate = _one_worker(folder, synchronous, items)
            print(f"store claim+transition, 1 worker, synchronous={synchronous}: {rate:,.0f} ops/s "
                  f"(target >= {TARGET:,})")
        rate = _batched(folder / "batched.db", items, 100)
        print(f"store claim_batch(100)+transition, 1 worker, synchronous=FULL: {rate:,.0f} ops/s "
              f"(target >= {TARGET:,}; how bulk steps such as validation use the store)")
        for synchronous in ("FULL", "NORMAL"):
            rate = _many_workers(folder, synchronous, items, workers)
            print(f"store claim+transition, {workers} processes, synchronous={synchronous}: {rate:,.0f} ops/s "
                  f"(target >= {TARGET:,})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else ITEMS)
