"""The folder intake bot: order spreadsheets dropped into watched folders become work items.

Configuration: the ``folders:`` list of ``orderbots.yaml``; per folder ``name``,
``path`` (the folder holding ``inbox/``), ``stable_seconds`` (default 2),
``customer`` (default customer id for sheets without a customer column),
``max_mb`` (file size limit, default 100) and ``aliases`` (extra header texts
per order field, e.g. ``{sku: [Artikel]}``).

``run(ctx, folder=None, wait=None)`` handles every folder (or the one named):

- ``inbox/ -> processing/ -> done/ | error/``. Temporary names (``~$*``,
  ``*.tmp``, ``*.part``, ``*.crdownload``, dotfiles) and folders are ignored.
- A file is taken once its size, mtime and ctime have not changed for
  ``stable_seconds`` (judged by the file's own times and by what this process
  saw on earlier polls). The run waits up to ``wait`` seconds (default twice
  ``stable_seconds``) for files still being written; a file still changing
  after that is left for the next run.
- The file's sha256 is its source key: a file imported before is not imported
  again; the copy goes to ``done/`` with ``<name>.duplicate.txt`` naming the
  original.
- All orders of a file and its source record are committed in one transaction
  before the file leaves ``processing/``; order ``raw_path`` is the file's path
  in ``done/``. A file left in ``processing/`` by a crash is finished on the
  next run: moved to ``done/`` if its sha256 was committed, else read again.
- A file that cannot be read (``InputError``) goes to ``error/`` with
  ``<name>.error.txt`` saying what is wrong and what to do. Sheets of a workbook
  that hold no orders, beside sheets that do, are listed in ``<name>.notes.txt``
  in ``done/``. Nothing is dropped silently.
- Afterwards the received orders are validated (``bots.validate.validate``).

Counts: ``files_imported``, ``files_duplicate``, ``files_error``, ``files_waiting``,
``orders_imported``, ``rows``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from rich.progress import Progress

from connectors.spreadsheet import MAX_BYTES, MB, check_size, read_tables
from orderbots import notices, yamlfile
from orderbots.config import CONFIG_FILE, Settings
from orderbots.errors import ConfigError, InputError
from orderbots.gcpause import paused_gc
from orderbots.masterdata import MasterData
from orderbots.model import Customer
from orderbots.scheduler import watched_folders
from orderbots.tabular import header_aliases, orders_from_table

from .validate import validate

log = logging.getLogger(__name__)

TEMPORARY = ("~$*", "*.tmp", "*.part", "*.crdownload", ".*")
POLL = 0.2

# What this process saw on earlier polls: path -> ((size, mtime_ns, ctime_ns), monotonic time first seen).
_seen: dict[str, tuple[tuple[int, int, int], float]] = {}


@dataclass(frozen=True)
class Folder:
    """One watched folder with its intake settings."""

    name: str
    root: Path
    stable_seconds: float
    customer: Customer | None = None
    max_bytes: int = MAX_BYTES
    aliases: dict = field(default_factory=dict)

    def sub(self, name: str) -> Path:
        return self.root / name


def folders_from_settings(settings: Settings, masterdata: MasterData) -> list[Folder]:
    """The configured folders; ``ConfigError`` naming file and line for a bad entry."""
    file = settings.home / CONFIG_FILE
    folders = []
    for watched, entry in zip(watched_folders(settings), settings.data.get("folders") or []):
        customer = None
        if entry.get("customer"):
            record = masterdata.find_customer(str(entry["customer"]))
            if record is None:
                raise ConfigError(f"{yamlfile.where(file, entry, 'customer')}: folder {watched.name!r}: customer "
                                  f"{entry['customer']!r} is not in rules/data/customers.csv")
            customer = record.as_customer()
        max_mb = entry.get("max_mb", MAX_BYTES / MB)
        if not isinstance(max_mb, (int, float)) or isinstance(max_mb, bool) or max_mb <= 0:
            raise ConfigError(f"{yamlfile.where(file, entry, 'max_mb')}: max_mb must be a positive number")
        aliases = entry.get("aliases") or {}
        if not isinstance(aliases, dict):
            raise ConfigError(f"{yamlfile.where(file, entry, 'aliases')}: aliases must map an order field "
                              "to a list of header texts")
        folders.append(Folder(watched.name, watched.inbox.parent, watched.quiet, customer,
                              int(max_mb * MB),
                              header_aliases(aliases, where=yamlfile.where(file, entry, "aliases"))))
    return folders


def run(ctx, folder: str | None = None, wait: float | str | None = None) -> None:
    """Import every stable file of every folder (or of ``folder``); see module docstring."""
    masterdata = MasterData.load(ctx.settings.rules_dir / "data")
    folders = folders_from_settings(ctx.settings, masterdata)
    if folder is not None:
        folders = [f for f in folders if f.name == folder]
        if not folders:
            raise ConfigError(f"there is no folder {folder!r} in the folders: section of {CONFIG_FILE}")
    for f in folders:
        if ctx.stopping():
            break
        _Intake(ctx, f, masterdata).run(f.stable_seconds * 2 if wait is None else float(wait))
    validate(ctx)


class _Intake:
    """One folder in one run."""

    def __init__(self, ctx, folder: Folder, masterdata: MasterData):
        self.ctx, self.folder, self.masterdata = ctx, folder, masterdata
        for name in ("inbox", "processing", "done", "error"):
            folder.sub(name).mkdir(parents=True, exist_ok=True)

    def run(self, wait: float) -> None:
        leftovers = _files(self.folder.sub("processing"))
        progress = Progress(transient=True) if self.ctx.show_progress else None
        with progress or nullcontext():
            task = progress.add_task(f"folder {self.folder.name}", total=None) if progress else None
            for path in leftovers:
                self._process(path, leftover=True)
            deadline = time.monotonic() + wait
            while not self.ctx.stopping():
                stable, waiting = self._scan()
                for path in stable:
                    if self.ctx.stopping():
                        return
                    taken = self._take(path)
                    if taken:
                        self._process(taken)
                        if progress:
                            progress.advance(task)
                if not waiting or time.monotonic() >= deadline:
                    if waiting:
                        self.ctx.run.count("files_waiting", len(waiting))
                    return
                time.sleep(POLL)

    # -- picking files ---------------------------------------------------------------

    def _scan(self) -> tuple[list[Path], list[Path]]:
        """(stable, still changing) files of the inbox, oldest first."""
        stable, waiting = [], []
        inbox = self.folder.sub("inbox")
        present = set()
        for path in _files(inbox):
            if any(fnmatch.fnmatch(path.name, p) for p in TEMPORARY):
                continue
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            present.add(str(path))
            (stable if _is_stable(path, st, self.folder.stable_seconds) else waiting).append(path)
        for gone in [p for p in _seen if Path(p).parent == inbox and p not in present]:
            del _seen[gone]  # removed by someone else: forget it
        return stable, waiting

    def _take(self, path: Path) -> Path | None:
        target = _free_path(self.folder.sub("processing"), path.name)
        try:
            os.replace(path, target)
        except FileNotFoundError:
            return None  # another worker took it
        _seen.pop(str(path), None)
        return target

    # -- one file ------------------------------------------------------------------

    def _process(self, path: Path, leftover: bool = False) -> None:
        """Import one file in processing/; ``leftover``: found there at start (a crash before)."""
        with paused_gc():  # the file's rows and orders all live until stored: nothing for the collector to free
            self._import(path, leftover)

    def _import(self, path: Path, leftover: bool) -> None:
        ref = "sha256:" + _sha256(path)
        recorded = self._recorded(ref)
        if recorded is not None:
            if leftover and recorded["pending_move"]:
                self._finish(path, self.folder.root / recorded["name"], None)
            else:
                self._duplicate(path, recorded)
            return
        done = _free_path(self.folder.sub("done"), path.name)
        try:
            check_size(path.stat().st_size, path.name, self.folder.max_bytes)
            orders, skipped, rows = self._read(path.read_bytes(), path.name, ref, done)
        except InputError as exc:
            self._fail(path, str(exc), ref)
            return
        except Exception as exc:  # noqa: BLE001 - a bug or a library failure must not stop the bot
            log.exception("unexpected error reading %s", path)
            self._fail(path, f"unexpected error while reading the file ({type(exc).__name__}: {exc}). "
                             "This is probably a bug; move the file back into inbox/ to retry, or report it", ref)
            return
        store = self.ctx.store
        with store.transaction():
            fresh = store.record_source(ref, "file", name=str(done.relative_to(self.folder.root)),
                                        outcome="imported", orders=len(orders))
            if fresh:
                store.add_orders(((order, notices.received(order, None)) for order in orders), actor=self.ctx.owner)
        if not fresh:
            self._duplicate(path, self._recorded(ref) or {})
            return
        self.ctx.run.count("files_imported")
        self.ctx.run.count("orders_imported", len(orders))
        self.ctx.run.count("rows", rows)
        self._finish(path, done, _notes(path.name, skipped))

    def _read(self, data: bytes, name: str, ref: str, done: Path):
        """(orders, reasons of sheets without orders, data rows read); InputError if no sheet has orders."""
        received_at = datetime.now(timezone.utc)
        orders, skipped, rows = [], [], 0
        for table in read_tables(data, name, max_bytes=self.folder.max_bytes):
            if not any(any(c is not None for c in row) for row in table.rows):
                continue  # an empty sheet holds nothing to lose
            try:
                result = orders_from_table(table, channel="folder", source_ref=ref, received_at=received_at,
                                           masterdata=self.masterdata, aliases=self.folder.aliases,
                                           default_customer=self.folder.customer, raw_path=str(done),
                                           source_name=name)
            except InputError as exc:
                skipped.append(str(exc))
                continue
            orders += result.orders
            rows += result.rows
        if not orders:
            raise InputError("\n".join(skipped) if skipped else f"{name}: every sheet is empty (no order rows)")
        return orders, skipped, rows

    def _recorded(self, ref: str) -> dict | None:
        """The source row of ``ref``; ``pending_move`` when its file never reached done/ (a crash)."""
        row = self.ctx.store.db.execute("SELECT name, seen_at FROM sources WHERE ref = ?", (ref,)).fetchone()
        if row is None:
            return None
        target = self.folder.root / row["name"]
        return {"name": row["name"], "seen_at": row["seen_at"],
                "pending_move": row["name"].startswith("done/") and not target.exists()}

    # -- moving out -----------------------------------------------------------------

    def _finish(self, path: Path, target: Path, notes: str | None) -> None:
        os.replace(path, target)
        if notes:
            target.with_name(target.name + ".notes.txt").write_text(notes, encoding="utf-8")

    def _duplicate(self, path: Path, recorded: dict) -> None:
        target = _free_path(self.folder.sub("done"), path.name)
        os.replace(path, target)
        target.with_name(target.name + ".duplicate.txt").write_text(
            f"{path.name} is a duplicate of {recorded.get('name', 'a file')} (same content, imported "
            f"{recorded.get('seen_at', 'before')}); nothing was imported from this copy.\n", encoding="utf-8")
        self.ctx.run.count("files_duplicate")

    def _fail(self, path: Path, reason: str, ref: str) -> None:
        target = _free_path(self.folder.sub("error"), path.name)
        os.replace(path, target)
        target.with_name(target.name + ".error.txt").write_text(
            f"{path.name} was not imported.\n\n{reason}\n\nWhen it is fixed, drop the corrected file into "
            f"{self.folder.sub('inbox')} again.\n({ref})\n", encoding="utf-8")
        log.warning("folder %s: %s not imported: %s", self.folder.name, path.name, reason.splitlines()[0])
        self.ctx.run.count("files_error")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _files(directory: Path) -> list[Path]:
    """Regular files of ``directory``, oldest first."""
    entries = []
    for entry in os.scandir(directory):
        try:
            if entry.is_file(follow_symlinks=False):
                entries.append((entry.stat().st_mtime_ns, entry.name, Path(entry.path)))
        except FileNotFoundError:
            continue  # moved away while we looked
    return [p for _, _, p in sorted(entries)]


def _is_stable(path: Path, st: os.stat_result, stable_seconds: float) -> bool:
    """Unchanged for ``stable_seconds``, by the file's own times or by this process's earlier polls."""
    signature = (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    now = time.monotonic()
    previous = _seen.get(str(path))
    if previous is None or previous[0] != signature:
        _seen[str(path)] = previous = (signature, now)
    quiet_by_times = time.time() - max(st.st_mtime, st.st_ctime) >= stable_seconds
    quiet_by_polls = now - previous[1] >= stable_seconds
    return quiet_by_times or quiet_by_polls


def _free_path(directory: Path, name: str) -> Path:
    """``directory/name``, or ``name (2)``, ``name (3)``... if taken."""
    target = directory / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 1
    while target.exists():
        n += 1
        target = directory / f"{stem} ({n}){suffix}"
    return target


def _notes(name: str, skipped: list[str]) -> str | None:
    if not skipped:
        return None
    return (f"{name} was imported, but these sheets hold no orders and were not imported:\n\n"
            + "\n".join(f"- {s}" for s in skipped) + "\n")
