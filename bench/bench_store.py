"""Store throughput: claim one item, transition it, release the lease - on a database file on disk,
with the store's default ``synchronous=FULL``.

Two kinds of claim+transition (``Store`` module docstring, "Durability"):
- a step's result (``received -> validated``): committed without an fsync, like the lease
  commits around it; the figure the target is about;
- an ERP entry's: the move into the step's working state (``validated -> entering_erp``), which
  the ERP submit follows, is fsynced, so the disk's bare fsynced commits/s are its ceiling;
  then the result (``-> in_erp``), not fsynced.
Also one worker per core claiming concurrently from the same file, and batch claims
(``claim_batch``: many leases in one commit, their transitions in one fsynced commit), which
is how validation uses the store.
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


# What a worker does per claimed item: the step it claims for, the states it moves the item to, in words.
MOVES = {"result": (states.VALIDATE, [states.VALIDATED], "a step's result (received -> validated, not fsynced)"),
         "erp_entry": (states.ERP_ENTRY, [states.ENTERING_ERP, states.IN_ERP],
                       "an ERP entry's (-> entering_erp fsynced, -> in_erp not)")}


def _fill(path: Path, n: int, move: str = "result") -> None:
    """``n`` orders claimable by ``move``'s step."""
    with Store(path) as store, store.transaction():
        keys = [store.add_order(order).key for order in _orders(n)]
        if move == "erp_entry":
            store.transition_many([(key, states.VALIDATED, {}) for key in keys], actor="bench")


def _work(path: str, move: str, owner: str) -> int:
    """Claim-and-transition until no item is left; return how many this worker did."""
    step, moves, _ = MOVES[move]
    done = 0
    with Store(path) as store:
        while True:
            with store.claim(step, owner) as item:
                if item is None:
                    return done
                for to in moves:
                    store.transition(item.key, to, actor=owner)
                done += 1


def _batched(path: Path, n: int, batch: int) -> float:
    """``claim_batch`` of ``batch`` items, their transitions in one (fsynced) transaction."""
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


def _worker_process(path: str, move: str, owner: str, start, results) -> None:
    with Store(path):
        pass  # open (and migrate) before the clock starts
    start.wait()
    results.put(_work(path, move, owner))


def _one_worker(folder: Path, move: str, n: int) -> float:
    path = folder / f"one-{move}.db"
    _fill(path, n, move)
    began = time.perf_counter()
    assert _work(str(path), move, "bench") == n
    return n / (time.perf_counter() - began)


def _many_workers(folder: Path, move: str, n: int, workers: int) -> float:
    path = folder / f"many-{move}.db"
    _fill(path, n, move)
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_worker_process, args=(str(path), move, f"bench-{i}", start, results))
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
    """Bare single-row write transactions: with FULL, the ceiling set by the disk on fsynced commits."""
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
        for move, (_, _, what) in MOVES.items():
            rate = _one_worker(folder, move, items)
            print(f"store claim+transition, 1 worker, {what}: {rate:,.0f} ops/s (target >= {TARGET:,})")
        rate = _batched(folder / "batched.db", items, 100)
        print(f"store claim_batch(100)+transition, 1 worker: {rate:,.0f} ops/s "
              f"(target >= {TARGET:,}; how validation uses the store)")
        for move, (_, _, what) in MOVES.items():
            rate = _many_workers(folder, move, items, workers)
            print(f"store claim+transition, {workers} processes, {what}: {rate:,.0f} ops/s "
                  f"(target >= {TARGET:,})")

if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else ITEMS)
