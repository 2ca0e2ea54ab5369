"""``orderbots serve``: run every enabled job of the schedule until told to stop.

Contract:
- Each job runs ``run_bot(job.bot, settings, stop=<shared stop event>, **job.args)``
  in a thread pool. A job never overlaps itself (``max_instances=1``), runs
  missed while busy are merged into one (``coalesce``), and a run that is late
  by less than the job's ``misfire_grace_time`` still starts. Interval jobs run
  once at start-up, cron jobs wait for their time.
- An exception in a job is logged and recorded in the run log (``runs``
  table); the scheduler goes on.
- Folder events: each folder of the ``folders:`` section of ``orderbots.yaml``
  that an enabled ``folder_intake`` job covers (``args.folder`` is its name or
  absent) is watched; a change in ``<path>/inbox`` starts that job at once,
  after the inbox has been quiet for the folder's ``stable_seconds`` (at most
  ``MAX_DEBOUNCE`` seconds after the first event). A change seen while the job
  runs starts it again when it finishes. The schedule stays the backstop.
- SIGTERM / SIGINT set the stop event: the running bots finish their current
  item, the scheduler shuts down waiting for them, ``serve`` returns. A second
  signal exits at once (leases then expire and are recovered).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from . import yamlfile
from .bot import run_bot
from .config import CONFIG_FILE, Settings
from .errors import ConfigError
from .schedule import Job

log = logging.getLogger(__name__)

FOLDER_BOT = "folder_intake"
DEFAULT_STABLE_SECONDS = 2.0
MAX_DEBOUNCE = 10.0


@dataclass(frozen=True)
class WatchedFolder:
    """A watched folder's name, inbox path and how long it must be quiet before the bot runs."""

    name: str
    inbox: Path
    quiet: float


def watched_folders(settings: Settings) -> list[WatchedFolder]:
    """The folders of the ``folders:`` config section; ``ConfigError`` (file:line) if malformed."""
    entries = settings.data.get("folders") or []
    file = settings.home / CONFIG_FILE
    if not isinstance(entries, list):
        raise ConfigError(f"{yamlfile.where(file, settings.data, 'folders')}: 'folders' must be a list "
                          f"of {{name, path}} mappings")
    folders = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise ConfigError(f"{yamlfile.where(file, settings.data, 'folders')}: each folder must be a "
                              f"mapping with 'name' and 'path', not {entry!r}")
        for key in ("name", "path"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise ConfigError(f"{yamlfile.where(file, entry, key if key in entry else None)}: "
                                  f"each folder needs '{key}' as text")
        quiet = entry.get("stable_seconds", DEFAULT_STABLE_SECONDS)
        if not isinstance(quiet, (int, float)) or isinstance(quiet, bool) or quiet < 0:
            raise ConfigError(f"{yamlfile.where(file, entry, 'stable_seconds')}: stable_seconds must be "
                              f"a number of seconds >= 0, not {quiet!r}")
        folders.append(WatchedFolder(entry["name"], settings.path(entry["path"]) / "inbox", float(quiet)))
    return folders


class Debouncer:
    """Calls ``action`` once a burst of ``poke()`` calls has been quiet for ``quiet`` seconds
    (or ``max_wait`` seconds after the burst began, whichever is first)."""

    def __init__(self, action: Callable[[], None], quiet: float, max_wait: float = MAX_DEBOUNCE):
        self.action, self.quiet, self.max_wait = action, quiet, max(max_wait, quiet)
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._first: float | None = None

    def poke(self) -> None:
        with self._lock:
            now = time.monotonic()
            if self._first is None:
                self._first = now
            if self._timer:
                self._timer.cancel()
            delay = max(0.0, min(self.quiet, self._first + self.max_wait - now))
            self._timer = threading.Timer(delay, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            self._first = self._timer = None
        self.action()

    def cancel(self) -> None:
        with self._lock:
            if self._timer:
                self._timer.cancel()
            self._first = self._timer = None


class _InboxHandler(FileSystemEventHandler):
    def __init__(self, debouncer: Debouncer):
        self.debouncer = debouncer

    def on_any_event(self, event: FileSystemEvent) -> None:
        if not event.is_directory and event.event_type in ("created", "modified", "moved", "closed"):
            self.debouncer.poke()


class Activity:
    """Whether the schedule is idle: every watched job has a run that processed nothing
    (all counts zero) and started after the last run that did process something ended."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_busy_end = float("-inf")
        self._idle_start: dict[str, float] = {}

    def finished(self, name: str, started: float, busy: bool) -> None:
        with self._lock:
            if busy:
                self._last_busy_end = time.monotonic()
            else:
                self._idle_start[name] = started

    def idle(self, names: list[str]) -> bool:
        with self._lock:
            return all(self._idle_start.get(n, float("-inf")) > self._last_busy_end for n in names)


class Service:
    """The scheduler with its jobs and folder watchers; ``start()``, ``nudge(job)``, ``shutdown()``."""

    def __init__(self, settings: Settings, jobs: list[Job], stop: threading.Event | None = None):
        self.settings = settings
        self.jobs = {job.name: job for job in jobs if job.enabled}
        self.stop = stop or threading.Event()
        self.activity = Activity()
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max(len(self.jobs), 1))},
            job_defaults={"max_instances": 1, "coalesce": True})
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self._wanted: set[str] = set()
        self._observer: Observer | None = None
        self._debouncers: list[Debouncer] = []

    def start(self) -> None:
        folders = watched_folders(self.settings)  # a config mistake stops us before anything runs
        now = datetime.now(timezone.utc)
        for job in self.jobs.values():
            at_once = {"next_run_time": now} if job.interval is not None else {}
            self.scheduler.add_job(self._run, job.trigger(), args=[job], id=job.name, name=job.name,
                                   max_instances=1, coalesce=True, misfire_grace_time=job.misfire_grace_time,
                                   **at_once)
            log.info("job %s: bot %s, %s%s", job.name, job.bot, job.describe(),
                     f", args {job.args}" if job.args else "")
        if not self.jobs:
            log.warning("no enabled jobs in the schedule: nothing will run")
        self.scheduler.start()
        self._watch(folders)

    def nudge(self, name: str) -> None:
        """Run job ``name`` now (or right after its current run finishes)."""
        if self.stop.is_set():
            return
        with self._lock:
            if name in self._running:
                self._wanted.add(name)
                return
        log.info("job %s: started by a folder event", name)
        self.scheduler.modify_job(name, next_run_time=datetime.now(timezone.utc))

    def idle(self) -> bool:
        """Every interval job has had a run that found nothing to do since the last busy run."""
        with self._lock:
            if self._running:
                return False
        return self.activity.idle([j.name for j in self.jobs.values() if j.interval is not None])

    def shutdown(self) -> None:
        """Stop watching, let running bots finish their current item, stop the scheduler."""
        self.stop.set()
        if self._observer:
            self._observer.stop()
            self._observer.join()
        for debouncer in self._debouncers:
            debouncer.cancel()
        self.scheduler.shutdown(wait=True)

    def _run(self, job: Job) -> None:
        with self._lock:
            self._running.add(job.name)
            self._wanted.discard(job.name)
        started, busy = time.monotonic(), False
        try:
            run = run_bot(job.bot, self.settings, stop=self.stop, **job.args)
            busy = sum(run.counts.values()) > 0
            log.log(logging.INFO if busy else logging.DEBUG, "job %s: run %d ok %s", job.name, run.id,
                    dict(run.counts))
        except Exception:  # noqa: BLE001 - a failing job must not stop the scheduler
            log.exception("job %s failed (recorded in the run log; the schedule goes on)", job.name)
        finally:
            self.activity.finished(job.name, started, busy)
            with self._lock:
                self._running.discard(job.name)
                again = job.name in self._wanted
        if again:
            self.nudge(job.name)

    def _watch(self, folders: list[WatchedFolder]) -> None:
        intake_jobs = [j for j in self.jobs.values() if j.bot == FOLDER_BOT]
        for folder in folders:
            covering = [j.name for j in intake_jobs if j.args.get("folder") in (None, folder.name)]
            if not covering:
                log.warning("folder %s is configured but no enabled %s job covers it: not watched",
                            folder.name, FOLDER_BOT)
                continue
            folder.inbox.mkdir(parents=True, exist_ok=True)
            debouncer = Debouncer(lambda names=covering: [self.nudge(n) for n in names], folder.quiet)
            self._debouncers.append(debouncer)
            if self._observer is None:
                self._observer = Observer()
                self._observer.daemon = True
            self._observer.schedule(_InboxHandler(debouncer), str(folder.inbox), recursive=False)
            log.info("watching %s (folder %s) for job %s", folder.inbox, folder.name, ", ".join(covering))
        if self._observer:
            self._observer.start()


def serve(settings: Settings, jobs: list[Job], *, until_idle: bool = False,
          max_seconds: float | None = None) -> None:
    """Run ``jobs`` until SIGTERM/SIGINT, ``max_seconds`` elapsed or (``until_idle``) the schedule is idle."""
    service = Service(settings, jobs)
    with stop_on_signals(service.stop):
        service.start()
        deadline = time.monotonic() + max_seconds if max_seconds else None
        while not service.stop.wait(0.2):
            if deadline is not None and time.monotonic() >= deadline:
                log.info("--max-seconds %g reached: stopping", max_seconds)
                break
            if until_idle and service.idle():
                log.info("--until-idle: every job found nothing to do: stopping")
                break
        service.shutdown()
    log.info("orderbots serve stopped cleanly")


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[threading.Event]:
    """While inside, SIGTERM/SIGINT set ``stop``; a second signal exits the process at once."""
    def handle(signum, _frame):
        name = signal.Signals(signum).name
        if stop.is_set():
            log.warning("%s again: exiting now; leases of items in progress will expire and be recovered", name)
            os._exit(128 + signum)
        log.info("%s received: finishing the current item, then stopping", name)
        stop.set()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
