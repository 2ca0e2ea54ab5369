"""The ``sandbox`` command: start-up checks, database reset, and no password in any output."""

import os
import subprocess
import sys

from sandbox.testing import REPO, PageClient, SandboxProcess


def run_cli(*args, env=None):
    base = {k: v for k, v in os.environ.items() if not k.startswith("ORDERBOTS_SANDBOX_")}
    return subprocess.run([sys.executable, "-m", "sandbox", *args], cwd=REPO, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=60)


def test_refuses_to_start_without_a_password(home):
    result = run_cli("--home", str(home), "--port", "0")
    assert result.returncode != 0
    assert "ORDERBOTS_SANDBOX_PASSWORD is not set" in result.stderr


def test_bad_fault_setting_is_a_clear_error(home):
    result = run_cli("--home", str(home), "--port", "0",
                     env={"ORDERBOTS_SANDBOX_PASSWORD": "x", "ORDERBOTS_SANDBOX_FAULTS": "latency=fast"})
    assert result.returncode != 0 and "fault 'latency': 'fast' is not a number" in result.stderr


def test_bad_config_section_names_file_and_line(home):
    (home / "orderbots.yaml").write_text("runlog: runlog\nsandbox:\n  port: 8765\n  session_idle: soon\n")
    result = run_cli("--home", str(home), env={"ORDERBOTS_SANDBOX_PASSWORD": "x"})
    assert result.returncode != 0
    assert f"{home / 'orderbots.yaml'}:4: sandbox.session_idle must be a number, not 'soon'" in result.stderr


def test_help_documents_every_option():
    out = run_cli("--help").stdout
    for option in ("--host", "--port", "--db", "--session-idle", "--unique-po", "--latency", "--error-rate",
                   "--drop-session", "--slow-rate", "--slow-seconds", "--ghost-submit", "--reset", "--home"):
        assert option in out


def test_password_never_appears_in_pages_or_log(sandbox_server):
    client = PageClient(sandbox_server.url)
    pages = [client.login("erp", sandbox_server.user, "wrong-" + sandbox_server.password),
             client.login("erp", sandbox_server.user, sandbox_server.password)]
    pages.append(client.enter_order({"Customer number": "C1001", "Customer PO": sandbox_server.password[:4]},
                                    [("SKU-1001", "1", "")]))
    pages += [client.get("/erp/orders"), client.get("/erp/orders/SO-100001"), client.get("/")]
    sandbox_server.stop()
    for text in [p.html for p in pages] + [sandbox_server.output()]:
        assert sandbox_server.password not in text
        assert sandbox_server.admin_token not in text
    assert "Sandbox stopped" in sandbox_server.output()


def test_data_survives_a_restart_and_reset_starts_fresh(home, tmp_path):
    db = tmp_path / "sandbox.db"
    with SandboxProcess(home, db, tmp_path / "a.log") as server:
        client = PageClient(server.url)
        client.login("erp", server.user, server.password)
        client.enter_order({"Customer number": "C1001", "Customer PO": "KEEP"}, [("SKU-1001", "1", "")])
    with SandboxProcess(home, db, tmp_path / "b.log") as server:
        assert [o["po"] for o in server.orders()] == ["KEEP"]
    with SandboxProcess(home, db, tmp_path / "c.log", "--reset") as server:
        assert server.orders() == []
        assert server.stock("SKU-1003")["on_hand"] == 6


def test_default_database_lives_in_the_home_runlog(home, tmp_path):
    with SandboxProcess(home, None, tmp_path / "d.log") as server:
        assert f"database {home / 'runlog' / 'sandbox.db'}" in server.output()
        assert server.stock("SKU-1001")["on_hand"] == 1550
