"""Fixtures for the folder intake: a home with watched folders, and generated spreadsheets."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from orderbots import config
from orderbots.bot import run_bot
from orderbots.runlog import Run

ORDER_HEADER = ["PO Number", "Customer ID", "SKU", "Description", "Qty", "Unit Price", "Delivery Date"]


def xlsx_bytes(*sheets: tuple[str, list[list[Any]]], merged: dict[str, list[str]] | None = None) -> bytes:
    """An .xlsx written by openpyxl: ``(sheet name, rows)`` per sheet, ``merged`` ranges per sheet."""
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets:
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
        for cells in (merged or {}).get(name, []):
            sheet.merge_cells(cells)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def csv_bytes(rows: list[list[Any]], delimiter: str = ",", encoding: str = "utf-8", newline: str = "\r\n") -> bytes:
    return newline.join(delimiter.join(str(c) for c in row) for row in rows).encode(encoding) + newline.encode(encoding)


@dataclass
class Box:
    """One watched folder of the test home: drop files, run the bot, look at the outcome."""

    name: str
    root: Path
    settings: config.Settings

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def done(self) -> Path:
        return self.root / "done"

    @property
    def error(self) -> Path:
        return self.root / "error"

    def drop(self, name: str, data: bytes) -> Path:
        """Write a file into the inbox the way a careful sender does: temp name, then rename."""
        self.inbox.mkdir(parents=True, exist_ok=True)
        temp = self.inbox / f"{name}.part"
        temp.write_bytes(data)
        return temp.rename(self.inbox / name)

    def run(self, wait: float = 0, **args) -> Run:
        return run_bot("folder_intake", self.settings, folder=self.name, wait=wait, **args)

    def outcome(self) -> dict[str, list[str]]:
        """File names per sub-folder (sidecars included)."""
        return {sub: sorted(p.name for p in (self.root / sub).iterdir()) if (self.root / sub).exists() else []
                for sub in ("inbox", "processing", "done", "error")}

    def reason(self, name: str) -> str:
        return (self.error / f"{name}.error.txt").read_text(encoding="utf-8")


FOLDERS_YAML = """
folders:
  - name: orders
    path: folders/orders
    stable_seconds: 0
  - name: acme
    path: folders/acme
    stable_seconds: 0
    customer: C1001
    aliases: {sku: [Artikel], qty: [Anzahl]}
  - name: slow
    path: folders/slow
    stable_seconds: 1.5
  - name: small
    path: folders/small
    stable_seconds: 0
    max_mb: 20
"""


@pytest.fixture
def folder_settings(home) -> config.Settings:
    (home / "orderbots.yaml").write_text(FOLDERS_YAML, encoding="utf-8")
    return config.load(home)


@pytest.fixture
def box(folder_settings) -> Box:
    """The ``orders`` folder: no default customer, stable at once."""
    return Box("orders", folder_settings.home / "folders" / "orders", folder_settings)


@pytest.fixture
def boxes(folder_settings) -> dict[str, Box]:
    """Every configured folder by name."""
    return {n: Box(n, folder_settings.home / "folders" / n, folder_settings)
            for n in ("orders", "acme", "slow", "small")}
