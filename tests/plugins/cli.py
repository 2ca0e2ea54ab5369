"""Fixtures for the CLI and scheduler tests: invoking commands, sample orders, `orderbots serve` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner

from orderbots.cli import cli
from orderbots.model import Address, Customer, Order, OrderLine

REPO = Path(__file__).resolve().parents[2]
ORDERBOTS = str(Path(sys.executable).with_name("orderbots"))  # the installed console script


def sample_order(po: str = "PO-1", customer: str = "C1001", source: str | None = None,
                 skus: tuple[str, ...] = ("SKU-1001", "SKU-1002")) -> Order:
    """A realistic folder order for customer ``customer`` (a master-data id)."""
    return Order(
        channel="folder", source_ref=source or f"file:{customer}-{po}#Sheet1!2-3",
        customer=Customer(customer, "Acme Retail Ltd", "orders@acme-retail.example", "en"), po_number=po,
        lines=[OrderLine(i, sku, Decimal(3 * i), unit_price=Decimal("8.50")) for i, sku in enumerate(skus, 1)],
        ship_to=Address("Acme DC", "1 Dock Rd", "Leeds", "LS1 1AA", "GB"), currency="EUR")


@pytest.fixture
def cli_invoke(home) -> Callable:
    """``cli_invoke(*args)`` runs ``orderbots --home <home> *args`` in-process; returns the click Result."""
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, ["--home", str(home), *args], catch_exceptions=False)

    return invoke


def poll(condition: Callable, timeout: float = 30.0, interval: float = 0.1):
    """The first truthy value of ``condition()``; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s: {condition.__doc__ or condition}")


class ServeProcess:
    """A real ``orderbots serve`` subprocess; its combined log is in ``log_path``."""

    def __init__(self, home: Path, *args: str):
        self.log_path = home / "serve.log"
        self._log = open(self.log_path, "wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([ORDERBOTS, "--home", str(home), "serve", *args],
                                     stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO, env=env)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 60.0) -> int:
        """Send SIGTERM and wait for the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture
def serve_process(home):
    """``serve_process(*args)`` starts ``orderbots serve *args`` on the test home; all are killed at teardown."""
    started: list[ServeProcess] = []

    def start(*args: str) -> ServeProcess:
        started.append(ServeProcess(home, *args))
        return started[-1]

    yield start
    for process in started:
        process.close()
