"""The erp_entry bot PROCESS killed with SIGKILL at random points, restarted, repeatedly:
every order ends in the ERP exactly once (counted in the sandbox's own database)."""

import os
import random
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

from connectors.browser import Browser, BrowserOptions
from orderbots import bot, config, states

from tests.plugins.screens import (add_validated, files_containing, make_order, run_until_settled,
                                   write_config)

REPO = Path(__file__).resolve().parents[1]
BOT = "from orderbots import bot, config; bot.run_bot('erp_entry', config.load())"


def test_killed_bot_restarted_enters_every_order_exactly_once(home, sandbox_server):
    write_config(home, sandbox_server.url, lease_seconds=3, workers=2)
    settings = config.load(home)
    with settings.open_store() as store:
        keys = [add_validated(store, make_order(f"PO-KILL-{n}", lines=[("SKU-1001", "1", "8.50"),
                                                                        ("SKU-1002", "2", "14.90")]))
                for n in range(10)]
    sandbox_server.set_faults(latency=0.03, ghost_submit=0.2)
    rng = random.Random(7)
    for cycle in range(5):
        process = subprocess.Popen([sys.executable, "-c", BOT], cwd=REPO, start_new_session=True,
                                   env={**os.environ, "ORDERBOTS_HOME": str(home)},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_an_entry(settings, process)
        time.sleep(rng.uniform(0, 1.5))  # a random point during entry
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        time.sleep(3.2)  # leases of the killed workers expire

    run_until_settled(settings, "erp_entry")

    per_po = {}
    for o in sandbox_server.orders():
        per_po[o["po"]] = per_po.get(o["po"], 0) + 1
    assert per_po == {f"PO-KILL-{n}": 1 for n in range(10)}
    with settings.open_store() as store:
        numbers = {o["po"]: o["order_number"] for o in sandbox_server.orders()}
        for key in keys:
            item = store.get(key)
            assert item.state == states.IN_ERP and item.erp_number == numbers[item.order.po_number]
        recovered = [e for k in keys for e in store.events(k) if "lease expired" in e["reason"]]
    assert recovered, "the kills should have cut off at least one entry"
    assert files_containing(home, sandbox_server.password) == []


def _wait_for_an_entry(settings, process, timeout=60):
    deadline = time.monotonic() + timeout
    with settings.open_store() as store:
        while process.poll() is None and time.monotonic() < deadline:
            mine = store.db.execute("SELECT 1 FROM orders WHERE state = ? AND lease_owner LIKE ?",
                                    (states.ENTERING_ERP, f"%:{process.pid}:%")).fetchone()
            if mine:
                return
            time.sleep(0.05)


def test_capture_of_a_hung_page_is_bounded_and_redacted(tmp_path, settings):
    options = BrowserOptions(executable=settings.chromium, capture_timeout=3, action_timeout=2)
    with Browser(options) as browser:
        session = browser.new_session(secrets=("hunter2-secret",))
        try:
            with session.attempt(tmp_path / "attempt-1"):
                session.page.set_content("<h1>Order hunter2-secret</h1>")
                session.page.evaluate("setTimeout(() => { while (true) {} }, 50)")
                time.sleep(0.3)
                started = time.monotonic()
                raise RuntimeError("failed near hunter2-secret")
        except RuntimeError:
            pass
        assert time.monotonic() - started < options.capture_timeout + 2
        assert not browser.alive  # the hung browser was killed; a worker opens a new one
    files = {p.name for p in (tmp_path / "attempt-1").iterdir()}
    assert "error.txt" in files
    assert "hunter2-secret" not in (tmp_path / "attempt-1" / "error.txt").read_text()
    assert files_containing(tmp_path, "hunter2-secret") == []


def test_capture_of_a_live_page_writes_screenshot_html_and_trace(tmp_path, settings):
    with Browser(BrowserOptions(executable=settings.chromium)) as browser:
        session = browser.new_session(secrets=("s3cr3t-word",))
        try:
            with session.attempt(tmp_path / "attempt-2"):
                session.page.set_content("<p>token s3cr3t-word</p><button>Go</button>")
                session.page.get_by_role("button", name="Go").click()
                raise RuntimeError("element not found")
        except RuntimeError:
            pass
        with session.attempt(tmp_path / "attempt-3"):  # a successful attempt leaves nothing behind
            session.page.set_content("<p>fine</p>")
    folder = tmp_path / "attempt-2"
    assert {p.name for p in folder.iterdir()} == {"error.txt", "screenshot.png", "page.html", "trace.zip"}
    assert "[REDACTED]" in (folder / "page.html").read_text()
    assert zipfile.is_zipfile(folder / "trace.zip")
    assert not (tmp_path / "attempt-3").exists()


def test_browser_dying_mid_run_is_replaced_and_every_order_entered_once(home, sandbox_server):
    """All workers share one Chromium: when it dies, their attempts are retried and the run starts a new one."""
    write_config(home, sandbox_server.url, workers=3, retry_backoff=0)
    settings = config.load(home)
    with settings.open_store() as store:
        keys = [add_validated(store, make_order(f"PO-CRASH-{n}")) for n in range(9)]
    sandbox_server.set_faults(latency=0.05)
    killed = []

    def kill_chromium_once_an_order_is_entering():
        deadline = time.monotonic() + 60
        with settings.open_store() as store:
            while time.monotonic() < deadline and not store.items(states.ENTERING_ERP):
                time.sleep(0.02)
        killed.extend(_chromium_pids())
        for pid in killed:
            os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_chromium_once_an_order_is_entering)
    killer.start()
    first = bot.run_bot("erp_entry", settings)
    killer.join()
    run_until_settled(settings, "erp_entry")

    assert killed and first.counts.get("retry")
    assert first.counts.get("entered", 0) + first.counts.get("found", 0) == 9  # the same run went on
    assert sorted(o["po"] for o in sandbox_server.orders()) == sorted(f"PO-CRASH-{n}" for n in range(9))
    with settings.open_store() as store:
        assert all(store.get(k).state == states.IN_ERP for k in keys)
    assert not _chromium_pids()  # nothing left running


def _chromium_pids() -> list[int]:
    """The Chromium browsers this test process started (marked ``--orderbots-browser``), not their helpers."""
    parent, marked = {}, []
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit():
                continue
            parent[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.startswith(b"--orderbots-browser=") for a in args) and not any(a.startswith(b"--type=")
                                                                                 for a in args):
            marked.append(int(entry.name))

    def mine(pid: int) -> bool:
        while pid > 1:
            pid = parent.get(pid, 0)
            if pid == os.getpid():
                return True
        return False

    return [pid for pid in marked if mine(pid)]
