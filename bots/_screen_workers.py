"""Shared machinery of the bots that drive screens (erp_entry, wms_release): N workers, one browser each.

Contract:
- ``ScreenConfig.load(settings, section, ...)`` reads one section of
  ``orderbots.yaml`` (url, user, password_env, workers, lease_seconds, timeouts,
  trace, retry_backoff, max_attempts, in_attempt_retries); a wrong value is a
  ``ConfigError`` naming file, line and key. The password comes from the
  environment variable named by ``password_env``, never from the file.
- ``run_workers(ctx, config, make_app, process)`` starts ``workers`` threads. Each
  thread owns its store connection, one Playwright browser and one logged-in
  session (sync Playwright is per thread; a session is reused across orders and
  replaced if its browser dies). A thread claims items of ``config.step`` until
  none is due, the bot is stopping or ``limit`` items were taken. Each item is one
  traced attempt (``Session.attempt``): when ``process(job)`` raises, evidence goes
  to ``artifacts/<run>/<sanitised key>/attempt-<n>/`` and the store holds,
  rejects or retries the item (``Store.claim``).
- ``job.heartbeat()`` (called before every form post) extends the lease; if the
  lease was lost, ``LeaseLost`` stops the attempt without touching the item,
  which another worker now owns.
- An error outside any item (browser cannot start, bad config) ends the run with
  that error after every worker stopped.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from connectors.browser import Browser, BrowserOptions, ScreenApp
from orderbots import config as config_mod
from orderbots import yamlfile
from orderbots.bot import BotContext
from orderbots.errors import ApplicationError, BusinessError, ConfigError
from orderbots.runlog import safe_part
from orderbots.states import Step
from orderbots.store import Store, WorkItem

log = logging.getLogger(__name__)


class LeaseLost(BaseException):
    """This worker no longer holds the item's lease: stop at once, leave the item alone.

    A ``BaseException`` on purpose: ``Store.claim`` settles ``Exception`` s on the
    item, which would touch an item another worker now owns.
    """


@dataclass(frozen=True)
class ScreenConfig:
    """One screen bot's settings; see module docstring."""

    url: str
    user: str
    password: str = field(repr=False)
    workers: int
    lease: float
    options: BrowserOptions
    step: Step
    in_attempt_retries: int

    @classmethod
    def load(cls, settings: config_mod.Settings, name: str, default_password_env: str, step: Step,
             default_url: str) -> "ScreenConfig":
        get = SectionReader(settings, name)
        options = BrowserOptions(
            executable=settings.chromium,
            action_timeout=get.number("action_timeout", 10.0),
            navigation_timeout=get.number("navigation_timeout", 20.0),
            capture_timeout=get.number("capture_timeout", 10.0),
            trace=get.boolean("trace", True),
            trace_screenshots=get.boolean("trace_screenshots", False))
        step = dataclasses.replace(step, backoff=get.number("retry_backoff", step.backoff),
                                   max_attempts=int(get.number("max_attempts", step.max_attempts, minimum=1)))
        password_env = get.text("password_env", default_password_env)
        return cls(url=get.text("url", default_url), user=get.text("user", "bot"),
                   password=config_mod.secret(password_env, f"{name} password"),
                   workers=int(get.number("workers", 1, minimum=1)),
                   lease=get.number("lease_seconds", 120.0, minimum=1),
                   options=options, step=step,
                   in_attempt_retries=int(get.number("in_attempt_retries", 2, minimum=0)))


class SectionReader:
    """Typed reads of one section of orderbots.yaml; a wrong value is a ``ConfigError`` naming file and line."""

    def __init__(self, settings: config_mod.Settings, name: str):
        self.settings, self.name, self.section = settings, name, settings.section(name)

    def _fail(self, key: str, expected: str) -> ConfigError:
        where = yamlfile.where(self.settings.home / config_mod.CONFIG_FILE, self.section, key)
        return ConfigError(f"{where}: {self.name}.{key} must be {expected}, not {self.section[key]!r}")

    def number(self, key: str, default: float, minimum: float = 0) -> float:
        value = self.section.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            raise self._fail(key, f"a number >= {minimum:g}")
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.section.get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.section.get(key, default)
        if value not in choices:
            raise self._fail(key, f"one of {', '.join(choices)}")
        return value

    def text(self, key: str, default: str) -> str:
        value = self.section.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self._fail(key, "a non-empty text")
        return value.strip()


@dataclass
class Job:
    """One claimed item as a worker sees it."""

    item: WorkItem
    store: Store
    app: Any
    owner: str
    heartbeat: Callable[[], None]
    config: ScreenConfig


class _Tally:
    """Thread-safe outcome counts for the run log."""

    def __init__(self, ctx: BotContext, limit: int | None):
        self._ctx, self._lock, self._left = ctx, threading.Lock(), limit

    def count(self, outcome: str) -> None:
        with self._lock:
            self._ctx.run.count(outcome)

    def take(self) -> bool:
        """Whether this worker may take one more item (``limit`` not yet reached)."""
        with self._lock:
            if self._left is None:
                return True
            if self._left <= 0:
                return False
            self._left -= 1
            return True


def run_workers(ctx: BotContext, config: ScreenConfig, make_app: Callable[..., ScreenApp],
                process: Callable[[Job], str], *, workers: int | None = None, limit: int | None = None) -> None:
    """See module docstring."""
    tally = _Tally(ctx, limit)
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_worker_main, name=f"{ctx.run.bot}-{n}",
                                args=(ctx, config, make_app, process, tally, errors), daemon=True)
               for n in range(workers or config.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _worker_main(ctx, config, make_app, process, tally, errors) -> None:
    try:
        with Store(ctx.settings.db_path) as store:
            _Worker(ctx, config, make_app, process, tally, store).loop()
    except BaseException as exc:  # noqa: BLE001 - reported by run_workers in the main thread
        log.error("%s worker stopped: %s", ctx.run.bot, exc)
        errors.append(exc)


class _Worker:
    def __init__(self, ctx, config: ScreenConfig, make_app, process, tally: _Tally, store: Store):
        self.ctx, self.config, self.make_app, self.process = ctx, config, make_app, process
        self.tally, self.store = tally, store
        self.owner = ctx.owner
        self.browser: Browser | None = None
        self.session = None
        self.app = None

    def loop(self) -> None:
        try:
            while not self.ctx.stopping() and self.tally.take():
                if self.browser is None and not self.store.has_work(self.config.step):
                    return  # no browser is started for a run with nothing to do
                self._ensure_browser()
                try:
                    if not self._one():
                        return
                except LeaseLost as exc:
                    log.warning("%s", exc)
                    self.tally.count("lease_lost")
        finally:
            self._close_browser()

    def _one(self) -> bool:
        """Claim and process one item; False when none is due."""
        config = self.config
        with self.store.claim(config.step, self.owner, config.lease) as item:
            if item is None:
                return False
            folder = self.ctx.run.artifacts_dir / safe_part(item.key) / f"attempt-{item.attempts + 1}"
            job = Job(item, self.store, self.app, self.owner, lambda: self._heartbeat(item.key), config)
            self.app.heartbeat = job.heartbeat
            try:
                with self.session.attempt(folder):
                    outcome = self.process(job)
            except BusinessError as exc:
                self.tally.count(exc.severity)
                raise
            except Exception as exc:
                self.tally.count("retry")
                log.warning("%s %s: attempt %d failed: %s", self.ctx.run.bot, item.key, item.attempts + 1, exc)
                raise
            self.tally.count(outcome)
        return True

    def _heartbeat(self, key: str) -> None:
        if not self.store.extend_lease(key, self.owner, self.config.lease):
            raise LeaseLost(f"{self.owner} lost the lease on {key}; another worker owns it now")

    def _ensure_browser(self) -> None:
        if self.browser is not None and self.browser.alive:
            return
        self._close_browser()
        self.browser = Browser(self.config.options).__enter__()
        self.session = self.browser.new_session(secrets=(self.config.password,))
        self.app = self.make_app(self.session, self.config.url, self.config.user, self.config.password)

    def _close_browser(self) -> None:
        if self.session is not None:
            self.session.close()
        if self.browser is not None:
            self.browser.close()
        self.browser = self.session = self.app = None


def retrying(attempts: int, what: Callable[[], Any]) -> Any:
    """Run ``what``; retry an ``ApplicationError`` up to ``attempts`` more times (business errors are final)."""
    for n in range(attempts + 1):
        try:
            return what()
        except BusinessError:
            raise
        except ApplicationError:
            if n == attempts:
                raise
