"""Folder intake end to end (parse, map, group, store, validate) of a 100,000-row xlsx and csv.

Each file is dropped into the inbox of a fresh temporary home and one
``folder_intake`` run imports and validates it; the figure is data rows per
second of that run (wall clock, and per CPU second of this process, which
other load on the machine does not change). The bot's modules are imported
before the clock starts, as a long-running scheduler imports them once per
process; what is timed is the whole job on the file. The file's 10,000 orders come
from 5 customers, whose credit limits the bench raises so that the orders
take the normal path; the outcome counts are printed. The generated files
are cached under /tmp.
"""

from __future__ import annotations

import csv
import datetime
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import openpyxl

from bench.bench_rules import _unlimited_credit
from orderbots import config
from orderbots.bot import load_bot, run_bot

REPO = Path(__file__).resolve().parents[1]
ROWS = int(os.environ.get("BENCH_INTAKE_ROWS", 100_000))
LINES_PER_ORDER = 10
TARGET = 20_000
CACHE = Path(tempfile.gettempdir()) / "orderbots-bench-intake"
HEADER = ["PO Number", "Customer ID", "SKU", "Description", "Qty", "Unit Price", "Delivery Date", "Ship To",
          "Address", "City", "Postcode", "Country"]
CUSTOMERS = ["C1001", "C1002", "C1004", "C1005", "C1008"]  # all buy in EUR, the SKUs' price currency
SKUS = ["SKU-1001", "SKU-1002", "SKU-1004", "SKU-1005", "SKU-2001", "SKU-2002", "SKU-3001", "SKU-3002"]


def rows(n: int):
    when = datetime.date.today() + datetime.timedelta(days=30)
    for i in range(n):
        order = i // LINES_PER_ORDER
        yield [f"BENCH-{order:06d}", CUSTOMERS[order % len(CUSTOMERS)], SKUS[i % len(SKUS)], "bench item",
               1 + i % 7, None, when, "Dock 4", "1 Harbour Road", "Leeds", "LS1 1AA", "GB"]


def make_xlsx(n: int) -> Path:
    path = CACHE / f"orders-eur-{n}.xlsx"
    if not path.exists():
        workbook = openpyxl.Workbook(write_only=True)
        sheet = workbook.create_sheet("Orders")
        sheet.append(HEADER)
        for row in rows(n):
            sheet.append(row)
        workbook.save(path)
    return path


def make_csv(n: int) -> Path:
    path = CACHE / f"orders-eur-{n}.csv"
    if not path.exists():
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER)
            writer.writerows([*r[:6], r[6].isoformat(), *r[7:]] for r in rows(n))
    return path


def intake_rate(source: Path) -> tuple[float, float, dict]:
    """Rows per second (wall, CPU) of one folder_intake run over ``source`` in a fresh home, and its counts."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        for name in ("rules", "templates"):
            shutil.copytree(REPO / name, home / name)
        _unlimited_credit(home / "rules" / "data" / "customers.csv")  # 2,000 orders per customer: normal flow
        (home / "orderbots.yaml").write_text(
            "folders:\n  - name: bench\n    path: bench\n    stable_seconds: 0\n", encoding="utf-8")
        settings = config.load(home)
        (home / "bench" / "inbox").mkdir(parents=True)
        shutil.copy(source, home / "bench" / "inbox" / source.name)
        load_bot("folder_intake")  # imported once per process (playwright comes with the stock check)
        started, cpu = time.perf_counter(), time.process_time()
        run = run_bot("folder_intake", settings, folder="bench", wait=0)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if run.counts["rows"] != ROWS:
        sys.exit(f"bench_intake: expected {ROWS} rows imported, got {dict(run.counts)}")
    return ROWS / elapsed, ROWS / cpu, dict(run.counts)


def main() -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    for kind, make in (("xlsx", make_xlsx), ("csv", make_csv)):
        rate, cpu_rate, counts = intake_rate(make(ROWS))
        outcomes = ", ".join(f"{counts.get(k, 0)} {k}" for k in ("validated", "held", "rejected", "error"))
        print(f"folder_intake_{kind}_{ROWS}_rows: {rate:,.0f} rows/s (target >= {TARGET:,}) "
              f"[{counts.get('orders_imported', 0)} orders: {outcomes}]")
        print(f"folder_intake_{kind}_{ROWS}_rows_cpu: {cpu_rate:,.0f} rows per CPU second (target >= {TARGET:,}) "
              "[independent of other load on the machine]")


if __name__ == "__main__":
    main()
