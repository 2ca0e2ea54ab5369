"""`orderbots demo` end to end in a real subprocess: its summary matches the store, and it cleans up."""

import json
import socket
import sqlite3
import subprocess
import sys
from collections import Counter
from email import message_from_bytes, policy

from tests.plugins.home import REPO


def _port_open(url_or_port) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", int(url_or_port))) == 0


def test_demo_runs_every_channel_and_its_summary_matches_the_store(tmp_path):
    demo_dir, summary_file = tmp_path / "demo", tmp_path / "summary.json"
    done = subprocess.run(
        [sys.executable, "-m", "orderbots", "demo", "--dir", str(demo_dir), "--summary-json", str(summary_file),
         "--timeout", "240"], cwd=REPO, capture_output=True, text=True, timeout=420)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = {row["channel"]: row for row in json.loads(summary_file.read_text())}

    db = sqlite3.connect(demo_dir / "runlog" / "orderbots.db")
    per_channel = Counter()
    for channel, state, erp_number, wms_ref in db.execute("SELECT channel, state, erp_number, wms_ref FROM orders"):
        per_channel[channel, "received"] += 1
        per_channel[channel, "in_erp"] += erp_number is not None
        per_channel[channel, "released"] += wms_ref is not None
        per_channel[channel, f"state {state}"] += 1
    assert set(summary) == {"folder", "email", "portal"}
    for channel, row in summary.items():
        for figure in ("received", "in_erp", "released"):
            assert row[figure] == per_channel[channel, figure], (channel, figure)
        for state in ("held", "rejected", "failed"):
            assert row[state] == per_channel[channel, f"state {state}"], (channel, state)
        assert row["in_erp"] > 0 and row["median_to_erp"] > 0  # every channel reached the ERP

    # The seeded problems end where a person or the customer sees them, never lost.
    findings = {key: state for key, state in db.execute("SELECT key, state FROM orders")}
    assert findings["C1001/ACME-5003"] == "rejected"          # unknown item
    assert findings["C1001/ACME-5002#2"] == "held"            # same PO sent again
    assert findings["C1005/SS-19"] == "held"                  # credit limit
    assert findings["C1004/BB-779"] == "held"                 # incomplete address
    held_for_stock = db.execute("SELECT key, erp_number FROM orders WHERE findings_json LIKE '%\"stock\"%'").fetchall()
    assert held_for_stock and all(erp is None for _, erp in held_for_stock)  # held before the ERP
    error_dir = demo_dir / "folders" / "orders" / "error"
    assert (error_dir / "scan-of-order.xlsx.error.txt").read_text().strip()
    assert not list((demo_dir / "folders" / "orders" / "inbox").iterdir())

    # Every notice the store marked sent is an .eml in the outbox folder, each once.
    sent = db.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL").fetchone()[0]
    mails = [message_from_bytes(p.read_bytes(), policy=policy.default) for p in (demo_dir / "outbox").glob("*.eml")]
    assert sent == len(mails) > 0
    assert len({m["Message-ID"] for m in mails}) == len(mails)
    assert any("could not read" in m.get_body(("plain",)).get_content().lower() for m in mails)

    report = (demo_dir / "runlog" / "report.html").read_text()
    assert "<svg" in report
    # Everything the demo started is stopped: its servers no longer listen.
    config = (demo_dir / "orderbots.yaml").read_text()
    ports = [line.split(":")[-1].strip().rstrip("/") for line in config.splitlines()
             if line.strip().startswith(("port:", "url:"))]
    assert ports and not any(_port_open(p) for p in ports)
