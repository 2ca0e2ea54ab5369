"""Notification throughput: outbox notices rendered, sent to a local aiosmtpd server and marked sent.

The whole notifier bot runs (claim, render, build, SMTP send over one session,
``mark_sent`` with ``synchronous=FULL``) against a real aiosmtpd server on
127.0.0.1, in its own process as a mail server would be, that keeps every
message (afterwards it checks that it got each Message-ID once). The bot's own
CPU time per message is printed too: the wall-clock figure also depends on how
busy the machine is. Notices are a mix of received,
confirmed and rejected, half English and half Chinese. Rendering alone is
printed for reference.
"""

from __future__ import annotations

import multiprocessing
import shutil
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from orderbots import notices
from orderbots.bot import run_bot
from orderbots.model import Customer, Finding, Order, OrderLine
from orderbots.render import Renderer
from tests.plugins.smtp import SmtpServer, configure, free_port, smtp_section

TARGET = 200
NOTICES = 2000
REPO = Path(__file__).resolve().parents[1]
CUSTOMERS = [Customer("C1001", "Acme Retail Ltd", "orders@acme-retail.example", "en"),
             Customer("C1003", "上海华联贸易有限公司", "caigou@hualian-trade.example", "zh-CN")]


def _notices(n: int):
    for i in range(n):
        order = Order("api", f"bench:{i}", CUSTOMERS[i % 2], f"PO-{i}", currency="EUR",
                      lines=[OrderLine(j, f"SKU-{j}", Decimal(j + 1), f"Item {j}", "EA", Decimal("9.90"))
                             for j in range(1, 6)],
                      reply_to={"message_id": f"<po{i}@customer.example>", "references": ""})
        kind = i % 3
        if kind == 0:
            yield from notices.received(order, order.key)
        elif kind == 1:
            yield from notices.confirmed(order, order.key, f"SO-{i}", "2024-06-03")
        else:
            yield from notices.rejected(order, order.key, [Finding("credit", "reject", {"en": "credit limit"})])

def _serve(port: int, ready, stop, received) -> None:
    """Child process: a recording SmtpServer until ``stop`` is set; reports how many distinct messages it got."""
    server = SmtpServer(port=port).start()
    ready.set()
    stop.wait()
    server.stop()
    counts = server.count_by_message_id()
    received.value = len(counts) if set(counts.values()) == {1} else -1


def main(n: int = NOTICES) -> None:
    mp = multiprocessing.get_context("spawn")
    ready, stop, received = mp.Event(), mp.Event(), mp.Value("i", 0)
    server = SmtpServer(port=free_port())
    child = mp.Process(target=_serve, args=(server.port, ready, stop, received))
    child.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("the SMTP server process did not start")
        with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:  # on the disk the runlog lives on
            home = Path(tmp)
            shutil.copytree(REPO / "templates", home / "templates")
            settings = configure(home, smtp=smtp_section(server), notifier={"batch": n})
            batch = list(_notices(n))
            renderer = Renderer(home / "templates")
            began = time.perf_counter()
            for notice in batch:
                renderer.render(notice.kind, notice.locale, notice.payload)
            print(f"notices rendered (subject, text, html): {n / (time.perf_counter() - began):,.0f} /s "
                  f"(for reference)")
            with settings.open_store() as store:
                store.enqueue(batch)
            began, cpu = time.perf_counter(), time.process_time()
            run = run_bot("notifier", settings)
            elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    finally:
        stop.set()
        child.join(60)
    if run.counts != {"sent": n} or received.value != n:
        raise RuntimeError(f"expected {n} delivered once each, bot says {dict(run.counts)}, "
                           f"server got {received.value} (-1: duplicates)")
    print(f"notifier CPU per message: {cpu / n * 1000:.2f} ms (for reference)")
    print(f"notices rendered and delivered to local aiosmtpd: {n / elapsed:,.0f} msg/s (target >= {TARGET})")

if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else NOTICES)
