"""Benchmark of the KPI report: figures and page for a store with many orders and their history.

The store is filled through the Store API (in one transaction, ``synchronous=OFF``):
most orders go straight into the ERP, some are held and approved, rejected, or
retried. Then ``kpi.compute`` and the whole page (``report.render``) are timed.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from orderbots import kpi, report, states
from orderbots.errors import ApplicationError, BusinessError
from orderbots.model import Customer, Order, OrderLine
from orderbots.store import Store

REPO = Path(__file__).resolve().parents[1]
ORDERS = 10_000
BOT = "erp_entry@bench:1:1"


def fill(store: Store, n: int) -> None:
    start = datetime.now(timezone.utc) - timedelta(days=30)
    with store.transaction():
        for i in range(n):
            order = Order(channel=("email", "folder", "portal")[i % 3], source_ref=f"bench:{i}",
                          customer=Customer(f"C{i % 50:04d}"), po_number=f"PO-{i}",
                          lines=[OrderLine(1, "SKU-1", Decimal(1), unit_price=Decimal("9.99"))],
                          received_at=start + timedelta(minutes=2 * i % 43200))
            key = store.add_order(order).key
            if i % 10 == 0:
                store.hold_or_reject(key, BusinessError("x", code=f"rule_{i % 7}"), "validate", states.VALIDATE)
                store.approve(key, "person:bench")
            elif i % 25 == 1:
                store.hold_or_reject(key, BusinessError("x", code="unknown_sku", severity="reject"), "validate",
                                     states.VALIDATE)
                continue
            else:
                store.transition(key, states.VALIDATED, actor="validate@bench:1:1")
            if i % 20 == 3:
                store.fail_attempt(key, states.ERP_ENTRY, ApplicationError("timeout"), BOT)
            store.transition(key, states.IN_ERP, actor=BOT)


def main(n: int = ORDERS) -> None:
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "bench.db", synchronous="OFF") as store:
        began = time.perf_counter()
        fill(store, n)
        print(f"report_fill: {n} orders with history in {time.perf_counter() - began:.1f} s (setup, no target)")
        began = time.perf_counter()
        figures = kpi.compute(store)
        seconds = time.perf_counter() - began
        print(f"report_kpi: {n / seconds:,.0f} orders/s ({n} orders in {seconds:.2f} s) (target >= 20,000)")
        began = time.perf_counter()
        page = report.render(figures, REPO / "templates")
        seconds = time.perf_counter() - began
        print(f"report_page: {seconds * 1000:.0f} ms for {len(page) / 1024:.0f} KiB, "
              f"{len(figures.by_day)} days, {len(figures.exceptions)} rule codes (target <= 2000 ms)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else ORDERS)
