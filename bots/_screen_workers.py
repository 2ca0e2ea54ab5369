"""Shared machinery of the bots that drive screens (erp_entry, wms_release): N workers, one browser.

Contract:
- ``ScreenConfig.load(settings, section, ...)`` reads one section of
  ``orderbots.yaml`` (url, user, password_env, workers, lease_seconds, timeouts,
  trace, trace_snapshots, retry_backoff, max_attempts, in_attempt_retries); a wrong
  value is a ``ConfigError`` naming file, line and key. The password comes from the
  environment variable named by ``password_env``, never from the file.
- ``run_workers(ctx, config, make_app, process)`` starts, only if an item is due,
  ONE Playwright driver and ONE Chromium for the run (on a thread of its own) and
  ``workers`` workers sharing it (``Browser.run_concurrently``). Each worker has its
  own store connection and its own browser context, signed in on its first item
  and reused for every later one (the app keeps the order being entered in the
  session, so workers never share one). A worker claims items of ``config.step``
  until none is due, the bot is stopping or ``limit`` items were taken. Each item
  is one traced attempt (``Session.attempt``): when ``process(job)`` raises,
  evidence goes to ``artifacts/<run>/<sanitised key>/attempt-<n>/`` and the store
  holds, rejects or retries the item (``Store.claim``).
- If the browser dies (crash, or killed by an evidence capture past its time
  limit), the workers' attempts fail and are retried as usual, the workers stop,
  and a new browser is started for the work still due (at most
  ``BROWSER_RESTARTS`` times per run).
- ``job.heartbeat()`` (called before every form post) extends the lease; if the
  lease was lost, ``LeaseLost`` stops the attempt without touching the item,
  which another worker now owns.
- An error outside any item (browser cannot start, bad config) ends the run with
  that error after every worker stopped.
- ``wms_stock_lookup(settings)`` is the WMS stock screen as the validation
  pipeline's ``stock_lookup`` when ``wms.stock_check`` is true, else None.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from connectors.browser import Browser, BrowserOptions, ScreenApp
from connectors.wms_screens import StockLookup
from orderbots import config as config_mod
from orderbots import states, yamlfile
from orderbots.bot import BotContext
from orderbots.config import Settings
from orderbots.errors import ApplicationError, BusinessError, ConfigError
from orderbots.runlog import safe_part
from orderbots.states import Step
from orderbots.store import Store, WorkItem

log = logging.getLogger(__name__)

SANDBOX_URL = "http://127.0.0.1:8765/"  # where `orderbots sandbox` serves by default


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
            trace_snapshots=get.boolean("trace_snapshots", False),
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


BROWSER_RESTARTS = 2


def run_workers(ctx: BotContext, config: ScreenConfig, make_app: Callable[..., ScreenApp],
                process: Callable[[Job], str], *, workers: int | None = None, limit: int | None = None) -> None:
    """See module docstring."""
    tally = _Tally(ctx, limit)
    errors: list[BaseException] = []
    runner = threading.Thread(target=_run_browser, name=f"{ctx.run.bot}-browser", daemon=True,
                              args=(ctx, config, make_app, process, workers or config.workers, tally, errors))
    runner.start()
    runner.join()
    if errors:
        raise errors[0]


def _run_browser(ctx, config: ScreenConfig, make_app, process, count: int, tally: _Tally,
                 errors: list[BaseException]) -> None:
    """The browser thread: one Chromium at a time, shared by ``count`` workers; see module docstring."""
    try:
        for _ in range(1 + BROWSER_RESTARTS):
            with Store(ctx.settings.db_path) as store:
                if ctx.stopping() or not store.has_work(config.step):
                    return  # no browser is started for a run with nothing to do
            with Browser(config.options) as browser:
                browser.run_concurrently([
                    functools.partial(_worker_main, ctx, config, browser, make_app, process, tally, errors,
                                      f"{ctx.owner}:w{n}") for n in range(1, count + 1)])
                if errors or browser.alive:
                    return
            log.warning("%s: the browser died; starting a new one for the items still due", ctx.run.bot)
    except BaseException as exc:  # noqa: BLE001 - reported by run_workers in the calling thread
        errors.append(exc)


def _worker_main(ctx, config, browser: Browser, make_app, process, tally, errors, owner: str) -> None:
    try:
        with Store(ctx.settings.db_path) as store:
            _Worker(ctx, config, browser, make_app, process, tally, store, owner).loop()
    except BaseException as exc:  # noqa: BLE001 - reported by run_workers in the calling thread
        if browser.alive:
            log.error("%s worker stopped: %s", ctx.run.bot, exc)
            errors.append(exc)
        else:
            log.warning("%s worker stopped, its browser died: %s", ctx.run.bot, exc)


class _Worker:
    def __init__(self, ctx, config: ScreenConfig, browser: Browser, make_app, process, tally: _Tally,
                 store: Store, owner: str):
        self.ctx, self.config, self.browser, self.make_app, self.process = ctx, config, browser, make_app, process
        self.tally, self.store = tally, store
        self.owner = owner  # one per worker: workers share a thread, and a lease names exactly one worker
        self.session = None
        self.app = None

    def loop(self) -> None:
        try:
            while self.browser.alive and not self.ctx.stopping() and self.tally.take():
                try:
                    if not self._one():
                        return
                except LeaseLost as exc:
                    log.warning("%s", exc)
                    self.tally.count("lease_lost")
        finally:
            if self.session is not None and self.browser.alive:
                self.session.close()

    def _one(self) -> bool:
        """Claim and process one item; False when none is due."""
        config = self.config
        with self.store.claim(config.step, self.owner, config.lease) as item:
            if item is None:
                return False
            folder = self.ctx.run.artifacts_dir / safe_part(item.key) / f"attempt-{item.attempts + 1}"
            if self.session is None:  # a worker that finds no item never opens a context
                self._open_session(folder)
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

    def _open_session(self, folder) -> None:
        """A context for this worker, signed in before its first traced attempt (so in the context itself;
        see ``Session.private_page``); a failed sign-in leaves its evidence in ``folder``."""
        config = self.config
        self.session = self.browser.new_session(secrets=(config.password,))
        self.app = self.make_app(self.session, config.url, config.user, config.password)
        try:
            self.app.login()
        except Exception as exc:
            self.session.capture(folder, exc)
            self.tally.count("retry")
            raise

    def _heartbeat(self, key: str) -> None:
        if not self.store.extend_lease(key, self.owner, self.config.lease):
            raise LeaseLost(f"{self.owner} lost the lease on {key}; another worker owns it now")


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


def wms_stock_lookup(settings: Settings) -> StockLookup | None:
    """See module docstring."""
    if settings.section("wms").get("stock_check") is not True:
        return None
    config = ScreenConfig.load(settings, "wms", "ORDERBOTS_WMS_PASSWORD", states.WMS_RELEASE, SANDBOX_URL)
    return StockLookup(config.options, config.url, config.user, config.password)
