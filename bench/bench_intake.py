"""Folder intake end to end (parse, map, group, store, validate) of a 100,000-row xlsx and csv.

Each file is dropped into the inbox of a fresh temporary home and one
``folder_intake`` run imports and validates it; the figure is data rows per
second of that run. The generated files are cached under /tmp.
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

from orderbots import config
from orderbots.bot import run_bot

REPO = Path(__file__).resolve().parents[1]
ROWS = int(os.environ.get("BENCH_INTAKE_ROWS", 100_000))
LINES_PER_ORDER = 10
TARGET = 20_000
CACHE = Path(tempfile.gettempdir()) / "orderbots-bench-intake"
HEADER = ["PO Number", "Customer ID", "SKU", "Description", "Qty", "Unit Price", "Delivery Date", "Ship To",
          "Address", "City", "Postcode", "Country"]
CUSTOMERS = ["C1001", "C1002", "C1004", "C1007", "C1008"]
SKUS = ["SKU-1001", "SKU-1002", "SKU-1004", "SKU-1005", "SKU-2001", "SKU-2002", "SKU-3001", "SKU-3002"]


def rows(n: int):
    when = datetime.date.today() + datetime.timedelta(days=30)
    for i in range(n):
        order = i // LINES_PER_ORDER
        yield [f"BENCH-{order:06d}", CUSTOMERS[order % len(CUSTOMERS)], SKUS[i % len(SKUS)], "bench item",
               1 + i % 7, None, when, "Dock 4", "1 Harbour Road", "Leeds", "LS1 1AA", "GB"]


def make_xlsx(n: int) -> Path:
    path = CACHE / f"orders-{n}.xlsx"
    if not path.exists():
        workbook = openpyxl.Workbook(write_only=True)
        sheet = workbook.create_sheet("Orders")
        sheet.append(HEADER)
        for row in rows(n):
            sheet.append(row)
        workbook.save(path)
    return path


def make_csv(n: int) -> Path:
    path = CACHE / f"orders-{n}.csv"
    if not path.exists():
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER)
            writer.writerows([*r[:6], r[6].isoformat(), *r[7:]] for r in rows(n))
    return path


def intake_rate(source: Path) -> tuple[float, dict]:
    """Rows per second of one folder_intake run over ``source`` in a fresh home."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        for name in ("rules", "templates"):
            shutil.copytree(REPO / name, home / name)
        (home / "orderbots.yaml").write_text(
            "folders:\n  - name: bench\n    path: bench\n    stable_seconds: 0\n", encoding="utf-8")
        settings = config.load(home)
        (home / "bench" / "inbox").mkdir(parents=True)
        shutil.copy(source, home / "bench" / "inbox" / source.name)
        started = time.perf_counter()
        run = run_bot("folder_intake", settings, folder="bench", wait=0)
        elapsed = time.perf_counter() - started
    if run.counts["rows"] != ROWS:
        sys.exit(f"bench_intake: expected {ROWS} rows imported, got {dict(run.counts)}")
    return ROWS / elapsed, dict(run.counts)


def main() -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    for kind, make in (("xlsx", make_xlsx), ("csv", make_csv)):
        rate, counts = intake_rate(make(ROWS))
        print(f"folder_intake_{kind}_{ROWS}_rows: {rate:,.0f} rows/s (target >= {TARGET:,}) "
              f"[{counts.get('orders_imported', 0)} orders, {counts.get('validated', 0)} validated]")


if __name__ == "__main__":
    main()
