"""`orderbots serve` as a real process: scheduled runs, folder events, failing jobs, SIGTERM, --until-idle."""

from __future__ import annotations

import json
import signal

from orderbots import states
from tests.plugins.cli import poll, sample_order


def write_schedule(home, *jobs: tuple[str, str, str]) -> None:
    """jobs: (name, bot, interval mapping as YAML flow text)."""
    text = "jobs:\n" + "".join(f"  - name: {n}\n    bot: {b}\n    interval: {i}\n" for n, b, i in jobs)
    (home / "schedules.yaml").write_text(text)


def runs_of(store, bot: str, status: str | None = None) -> list[dict]:
    rows = store.db.execute("SELECT * FROM runs WHERE bot = ? ORDER BY id", (bot,)).fetchall()
    return [dict(r) for r in rows if status is None or r["status"] == status]


def test_serve_runs_the_schedule_and_stops_cleanly_on_sigterm(home, store, serve_process):
    write_schedule(home, ("validate", "validate", "{seconds: 1}"))
    keys = [store.add_order(sample_order(po=f"PO-{n}")).key for n in range(5)]
    serve = serve_process()
    poll(lambda: len(runs_of(store, "validate", "ok")) >= 2, timeout=60)
    assert all(store.get(k).state != states.RECEIVED for k in keys)
    assert serve.terminate() == 0, serve.log()
    log = serve.log()
    assert "SIGTERM received" in log and "orderbots serve stopped cleanly" in log
    assert runs_of(store, "validate", "running") == []


def test_sigterm_lets_the_running_bot_finish_its_item_and_loses_nothing(home, store, serve_process):
    write_schedule(home, ("validate", "validate", "{seconds: 1}"))
    with store.transaction():
        keys = [store.add_order(sample_order(po=f"PO-{n}")).key for n in range(1500)]
    serve = serve_process()

    def some_validated():
        """validation has begun"""
        return store.db.execute("SELECT COUNT(*) FROM orders WHERE state != 'received'").fetchone()[0] > 0

    poll(some_validated, timeout=60, interval=0.05)
    serve.proc.send_signal(signal.SIGTERM)
    assert serve.proc.wait(60) == 0, serve.log()

    runs = runs_of(store, "validate")
    assert runs and all(r["status"] == "ok" and r["ended_at"] for r in runs), runs
    assert store.db.execute("SELECT COUNT(*) FROM orders WHERE lease_owner IS NOT NULL").fetchone()[0] == 0
    processed = store.db.execute("SELECT COUNT(*) FROM orders WHERE state != 'received'").fetchone()[0]
    counted = sum(sum(json.loads(r["counts_json"]).values()) for r in runs)
    assert counted == processed, "every processed item is counted in a finished run"
    events = store.db.execute("SELECT order_key, COUNT(*) FROM events GROUP BY order_key").fetchall()
    assert len(events) == len(keys) and {n for _, n in events} <= {1, 2}, "no item validated twice"


def test_a_failing_job_is_logged_and_the_schedule_goes_on(home, store, serve_process):
    (home / "rules" / "orders.yaml").write_text("rules: [unclosed\n")
    write_schedule(home, ("validate", "validate", "{seconds: 1}"))
    serve = serve_process()
    failures = poll(lambda: (r := runs_of(store, "validate", "error")) and len(r) >= 2 and r, timeout=60)
    assert "orders.yaml" in failures[0]["error"]
    assert serve.proc.poll() is None, "the scheduler must keep running"
    assert serve.terminate() == 0
    assert "job validate failed (recorded in the run log; the schedule goes on)" in serve.log()


def test_a_file_dropped_into_a_watched_inbox_starts_the_folder_intake_at_once(home, store, serve_process):
    (home / "orderbots.yaml").write_text(
        "runlog: runlog\nrules: rules\nfolders:\n  - name: orders\n    path: folders/orders\n    stable_seconds: 0.5\n")
    write_schedule(home, ("folder_intake", "folder_intake", "{hours: 1}"))  # the backstop never comes in time
    serve = serve_process()
    poll(lambda: runs_of(store, "folder_intake", "ok"), timeout=60)  # the start-up run
    inbox = home / "folders" / "orders" / "inbox"
    assert inbox.is_dir()

    (inbox / "order.csv").write_text("Customer ID,PO Number,SKU,Qty,Unit Price\nC1001,PO-EVT-1,SKU-1001,5,8.50\n")

    def imported():
        """the dropped file became an order"""
        return store.db.execute("SELECT key FROM orders WHERE po_number = 'PO-EVT-1'").fetchone()

    poll(imported, timeout=60)
    assert len(runs_of(store, "folder_intake")) == 2
    assert (home / "folders" / "orders" / "done" / "order.csv").exists()
    assert "job folder_intake: started by a folder event" in serve.log()
    assert serve.terminate() == 0


def test_until_idle_stops_once_all_work_is_done(home, store, serve_process):
    write_schedule(home, ("validate", "validate", "{seconds: 1}"))
    keys = [store.add_order(sample_order(po=f"PO-{n}")).key for n in range(20)]
    serve = serve_process("--until-idle", "--max-seconds", "120")
    assert serve.proc.wait(150) == 0, serve.log()
    assert "--until-idle: every job found nothing to do" in serve.log()
    assert all(store.get(k).state != states.RECEIVED for k in keys)
    assert len(runs_of(store, "validate", "ok")) >= 2
