"""Sandbox throughput: signed-in page views per second and orders keyed per second through the screens.

Starts the real sandbox (subprocess, fresh database, no faults), seeds orders
through the ERP screens, then has CLIENTS threads fetch search, detail and
stock pages over keep-alive connections for SECONDS seconds.
"""

from __future__ import annotations

import http.client
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from sandbox.testing import REPO, PageClient, SandboxProcess

CLIENTS = 4
SECONDS = 5.0
ORDERS = 30
PAGES = ("/erp/orders", "/erp/orders/SO-100001", "/erp/orders?page=2", "/wms/stock")


def _cookie_header(client: PageClient) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in client.cookies)


def _fetch_pages(base_url: str, cookie: str, deadline: float, counts: list[int], errors: list[str]) -> None:
    conn = http.client.HTTPConnection(urllib.parse.urlsplit(base_url).netloc, timeout=30)
    n = 0
    while time.monotonic() < deadline:
        path = PAGES[n % len(PAGES)]
        conn.request("GET", path, headers={"Cookie": cookie})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            errors.append(f"{path}: HTTP {response.status}")
            return
        n += 1
    conn.close()
    counts.append(n)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, \
            SandboxProcess(REPO, Path(tmp) / "sandbox.db", Path(tmp) / "sandbox.log") as server:
        erp = PageClient(server.url)
        erp.login("erp", server.user, server.password)
        started = time.monotonic()
        for n in range(ORDERS):
            erp.enter_order({"Customer number": "C1001", "Customer PO": f"BENCH-{n}"},
                            [("SKU-1001", "2", ""), ("SKU-2001", "5", "")])
        entry_rate = ORDERS / (time.monotonic() - started)
        wms = PageClient(server.url)
        wms.login("wms", server.user, server.password)
        cookie = f"{_cookie_header(erp)}; {_cookie_header(wms)}"
        counts: list[int] = []
        errors: list[str] = []
        deadline = time.monotonic() + SECONDS
        threads = [threading.Thread(target=_fetch_pages, args=(server.url, cookie, deadline, counts, errors))
                   for _ in range(CLIENTS)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
    if errors:
        print(f"sandbox_pages: FAILED ({errors[0]})", file=sys.stderr)
        raise SystemExit(1)
    print(f"sandbox_pages: {sum(counts) / elapsed:.0f} pages/s (target >= 50)")
    print(f"sandbox_order_entry: {entry_rate:.1f} orders/s through the screens (target >= 2)")


if __name__ == "__main__":
    main()
