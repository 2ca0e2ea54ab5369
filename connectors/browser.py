"""A real browser for screen connectors: Playwright (sync API) driving Debian's Chromium.

Contract:
- ``Browser(options)`` is one Playwright driver and one headless Chromium, owned by
  the thread that enters it (sync Playwright objects are per thread). A ``Session``
  is one browser context with one page; a worker keeps one and reuses its login
  for every order. ``Browser.run_concurrently(tasks)`` runs several workers on the
  owning thread, each in a greenlet of its own (the way Playwright's sync API runs
  its event handlers): one driver and one Chromium serve them all, and while one
  worker waits for the browser the others run. A task must not block the thread
  for long outside Playwright calls (short SQLite commits are fine).
- ``Session.attempt(folder)`` wraps one attempt at one order. While it runs, a
  Playwright trace chunk records every action; if the attempt raises, evidence is
  written to ``folder``: ``screenshot.png``, ``page.html`` (secrets redacted),
  ``trace.zip`` and ``error.txt``. A successful attempt leaves nothing behind. Each capture is bounded
  by ``options.capture_timeout``: past it the browser is killed, the capture
  stops, and the session is dead (``Browser.alive`` is False; open a new one), as
  is every other session of that browser.
- Secrets are typed only in ``Session.private_page()``: the session's own page
  while its tracing has not started yet (a sign-in before its first attempt), else a
  separate untraced context whose login cookies are then copied into the session:
  Playwright traces record network traffic even between chunks, so pausing a trace
  is not enough.
  ``Session.redact(text)`` removes every secret from text meant for a file, log
  or error message.
- ``ScreenApp`` is the base of a server-rendered app's page objects: navigation
  and form posts that turn HTTP 5xx, timeouts and Playwright errors into
  ``ApplicationError``, detect an expired session (``SessionExpired``) and log in
  again transparently, once per action (``action``).
- Speed: every Playwright call is a round trip to the driver, and on a small
  machine each page load costs far more CPU than anything else. So a step is
  ``ScreenApp.submit(button, what, fields)``: the fields are found by their label
  text and filled, and the button is found by role and exact name and clicked, in
  ONE page call (nothing is filled or clicked unless every label and the button
  resolve to exactly one enabled control); the next page is then read in one more
  (``ScreenApp.state`` -> ``PageState``: heading, alerts, statuses, tables, the
  first ``<dl>``, link texts). ``fill`` is the same without a click.
- Tracing (``options.trace``) records every Playwright call of an attempt with its
  arguments, result or error, timing and log lines (navigations, waits). DOM snapshots
  (``options.trace_snapshots``, off by default) add a browsable copy of the page around
  every call and the network traffic, at about a third more CPU per order (screenshots
  cost more still). The screenshot, HTML and error text of a failed attempt are written
  with or without them: the trace shows what was done and answered, the captured page
  where it ended.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, TypeVar
from urllib.parse import urljoin, urlparse

import greenlet
from playwright._impl._greenlets import wait_for_future  # how the sync API waits; see run_concurrently
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page, Response, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from orderbots.errors import ApplicationError, OrderbotsError

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REDACTED = "[REDACTED]"
log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class BrowserOptions:
    """How to run the browser; times in seconds."""

    executable: str = "/usr/bin/chromium"
    headless: bool = True
    action_timeout: float = 10.0
    navigation_timeout: float = 20.0
    capture_timeout: float = 10.0
    trace: bool = True
    trace_snapshots: bool = False
    trace_screenshots: bool = False


class SessionExpired(ApplicationError):
    """The app sent us back to its login page: the session ended."""


class Browser:
    """One Playwright driver and one Chromium for the calling thread; see module docstring."""

    def __init__(self, options: BrowserOptions):
        self.options = options
        self._marker = f"--orderbots-browser={uuid.uuid4().hex}"
        self._pw = None
        self._browser = None
        self._killed = False

    def __enter__(self) -> "Browser":
        try:
            self._pw = sync_playwright().start()
            self._browser = self._pw.chromium.launch(
                executable_path=self.options.executable, headless=self.options.headless,
                args=[*CHROMIUM_ARGS, self._marker])
        except PlaywrightError as exc:
            self.close()
            raise ApplicationError(f"cannot start Chromium at {self.options.executable}: "
                                   f"{first_line(str(exc))}") from exc
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        return self._browser is not None and not self._killed and self._browser.is_connected()

    def new_context(self):
        """A fresh browser context with this browser's timeouts."""
        context = self._browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(self.options.action_timeout * 1000)
        context.set_default_navigation_timeout(self.options.navigation_timeout * 1000)
        return context

    def new_session(self, secrets: tuple[str, ...] = ()) -> "Session":
        """A fresh browser context with one page; ``secrets`` are redacted from evidence. Its tracing starts
        with its first ``attempt``, so a sign-in before that needs no separate context (``private_page``)."""
        context = self.new_context()
        return Session(self, context, context.new_page(), secrets)

    def run_concurrently(self, tasks: list[Callable[[], None]]) -> None:
        """Run every task in a greenlet of its own on this thread, sharing this browser; return when all
        have finished. A task's exception is logged and does not stop the others (tasks report their own
        errors)."""
        sync = self._pw  # the loop and dispatcher of Playwright's sync API on this thread
        loop, dispatcher = sync._loop, sync._dispatcher_fiber
        left = len(tasks)
        finished = loop.create_future()

        def start(task: Callable[[], None]) -> None:
            def body() -> None:
                nonlocal left
                try:
                    task()
                except BaseException:  # noqa: BLE001 - must not escape into Playwright's event loop
                    log.exception("a browser task failed")
                finally:
                    left -= 1
                    if left == 0:
                        finished.set_result(None)
            greenlet.greenlet(body).switch()  # parent: the dispatcher, which goes on when the task waits

        if not tasks:
            return
        for task in tasks:
            loop.call_soon(start, task)
        wait_for_future(loop, dispatcher, finished)

    def kill(self) -> None:
        """Kill this Chromium at once (it is found by a marker on its command line); safe from any thread."""
        self._killed = True
        for pid in _pids_with_arg(self._marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        for closer in (getattr(self._browser, "close", None), getattr(self._pw, "stop", None)):
            if closer:
                try:
                    closer()
                except Exception:  # noqa: BLE001 - closing a dead browser may fail; nothing to keep
                    pass
        self._browser = self._pw = None
        self.kill()


class Session:
    """One browser context and page of a ``Browser``; see module docstring."""

    def __init__(self, browser: Browser, context, page: Page, secrets: tuple[str, ...]):
        self.browser = browser
        self.context = context
        self.page = page
        self.secrets = tuple(s for s in secrets if s)
        self._chunk_open = False
        self._traced = False  # whether this context's tracing has started (at the first attempt)

    @property
    def options(self) -> BrowserOptions:
        return self.browser.options

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    @contextmanager
    def attempt(self, folder: Path) -> Iterator[None]:
        """Trace one attempt; on an exception write evidence to ``folder`` and re-raise."""
        self._start_chunk()
        try:
            yield
        except Exception as exc:
            self.capture(folder, exc)
            raise
        except BaseException:
            self._stop_chunk(None)
            raise
        else:
            self._stop_chunk(None)

    @contextmanager
    def private_page(self) -> Iterator[Page]:
        """A page no trace records, for typing secrets; on a clean exit the login is this session's.
        Tracing records network traffic even between chunks, so a password must never be typed in a
        traced context at all: so, once this session's tracing has started, this is a page in a separate,
        untraced context whose cookies are then copied into the session; before (a sign-in ahead of the
        first attempt, or tracing off) it is the session's own page, which saves a context."""
        if not self._traced:
            yield self.page
            return
        context = self.browser.new_context()
        try:
            yield context.new_page()
            self.context.add_cookies(context.cookies())
        finally:
            try:
                context.close()
            except PlaywrightError:
                pass

    def capture(self, folder: Path, error: BaseException) -> list[Path]:
        """Write the evidence of a failed attempt to ``folder``, bounded in time; returns the files."""
        folder.mkdir(parents=True, exist_ok=True)
        written = [_write(folder / "error.txt", self.redact(f"{type(error).__name__}: {error}\n"
                                                             f"url: {self._url()}\n"))]
        deadline = self.options.capture_timeout
        watchdog = threading.Timer(deadline, self.browser.kill)
        watchdog.daemon = True
        watchdog.start()
        started = time.monotonic()
        try:
            for name, grab in (("screenshot.png", self._screenshot), ("page.html", self._html),
                               ("trace.zip", self._trace)):
                remaining = deadline - (time.monotonic() - started)
                if remaining <= 0:
                    break
                try:
                    if grab(folder / name, remaining):
                        written.append(folder / name)
                except (PlaywrightError, OSError) as exc:
                    written.append(_write(folder / f"{name}.missing.txt",
                                          self.redact(f"could not capture {name}: {first_line(str(exc))}\n")))
        finally:
            watchdog.cancel()
        if time.monotonic() - started >= deadline:
            self.browser.kill()  # a page that cannot be captured in time is hung: this session is dead
        return written

    def close(self) -> None:
        try:
            self.context.close()
        except PlaywrightError:
            pass

    # -- evidence pieces ------------------------------------------------------

    def _screenshot(self, path: Path, seconds: float) -> bool:
        self.page.screenshot(path=str(path), timeout=seconds * 1000, animations="disabled")
        return True

    def _html(self, path: Path, seconds: float) -> bool:
        _write(path, self.redact(self.page.content()))
        return True

    def _trace(self, path: Path, seconds: float) -> bool:
        return self._stop_chunk(path)

    def _url(self) -> str:
        try:
            return self.page.url
        except PlaywrightError:
            return "?"

    # -- trace chunks -----------------------------------------------------------

    def _start_chunk(self) -> None:
        if not self.options.trace or self._chunk_open:
            return
        if self._traced:
            self.context.tracing.start_chunk()
        else:  # starting the tracing opens its first chunk
            self.context.tracing.start(screenshots=self.options.trace_screenshots,
                                       snapshots=self.options.trace_snapshots)
            self._traced = True
        self._chunk_open = True

    def _stop_chunk(self, path: Path | None) -> bool:
        if not self._chunk_open:
            return False
        self._chunk_open = False
        self.context.tracing.stop_chunk(path=str(path) if path else None)
        return path is not None


_PROBLEMS = {"missing": "no field labelled {!r}", "ambiguous": "several fields labelled {!r}",
             "disabled": "the field {!r} read-only", "missing button": "no button {!r}",
             "ambiguous button": "several buttons {!r}", "disabled button": "the button {!r} disabled"}


class ChoiceUnavailable(ApplicationError):
    """A select field (found by its label) does not offer the value to choose; ``offered`` lists its options."""

    def __init__(self, label: str, value: str, offered: list[str]):
        super().__init__(f"the field {label!r} does not offer {value!r} (it offers {', '.join(offered)})")
        self.label, self.value, self.offered = label, value, offered


@dataclass(frozen=True)
class PageState:
    """What a server-rendered page shows, read in one round trip (``ScreenApp.state``).

    ``tables``: every ``<table>`` as rows of cell texts (the first row is the header);
    ``record``: the first ``<dl>`` as ``{dt text: dd text}``; ``links``: texts of the links.
    """

    url: str
    heading: str
    alerts: list[str]
    statuses: list[str]
    tables: list[list[list[str]]]
    record: dict[str, str]
    links: list[str]

    def table(self, column: str) -> list[dict[str, str]]:
        """Rows of the first table with a column header ``column``, as dicts keyed by the header texts."""
        for rows in self.tables:
            if rows and column in rows[0]:
                header = rows[0]
                return [dict(zip(header, cells)) for cells in rows[1:] if len(cells) == len(header)]
        return []


# Reads the page once: heading, alerts, statuses, tables, the first <dl>, link texts.
_STATE_JS = r"""() => {
  const text = el => el.innerText.trim();
  const block = role => { const el = document.querySelector(`[role="${role}"]`);
    return el ? el.innerText.split("\n").map(t => t.trim()).filter(Boolean) : []; };
  const record = []; const dl = document.querySelector("dl");
  if (dl) { let key = null;
    for (const el of dl.children) {
      if (el.tagName === "DT") key = text(el);
      else if (el.tagName === "DD" && key !== null) { record.push([key, text(el)]); key = null; }
      else if (el.tagName === "DIV") { const dt = el.querySelector("dt"), dd = el.querySelector("dd");
        if (dt && dd) record.push([text(dt), text(dd)]); } } }
  const h1 = document.querySelector("h1");
  return { heading: h1 ? text(h1) : "", alerts: block("alert"), statuses: block("status"),
    tables: [...document.querySelectorAll("table")].map(t => [...t.rows].map(r => [...r.cells].map(text))),
    record, links: [...document.querySelectorAll("a[href]")].map(text) };
}"""

# Fills fields found by label text and (optionally) clicks a button found by role and name, in one
# round trip. Nothing is filled or clicked unless every label and the button resolve to exactly one
# enabled control. The click is deferred so that the call returns before the navigation starts.
_FILL_JS = r"""([fields, button]) => {
  const norm = s => (s || "").replace(/\s+/g, " ").trim();
  const problems = []; const plan = [];
  const labelled = name => { const hits = new Set();
    for (const l of document.querySelectorAll("label")) if (norm(l.textContent) === name && l.control) hits.add(l.control);
    for (const el of document.querySelectorAll("[aria-label]")) if (norm(el.getAttribute("aria-label")) === name) hits.add(el);
    return [...hits]; };
  for (const [name, value] of fields) {
    const found = labelled(name);
    if (found.length !== 1) { problems.push({kind: found.length ? "ambiguous" : "missing", label: name}); continue; }
    const el = found[0];
    if (el.disabled || el.readOnly) { problems.push({kind: "disabled", label: name}); continue; }
    if (el.tagName === "SELECT") {
      const options = [...el.options];
      const option = options.find(o => o.value === value) || options.find(o => norm(o.textContent) === value);
      if (!option) { problems.push({kind: "choice", label: name, value, offered: options.map(o => norm(o.textContent))}); continue; }
      plan.push([el, option.value]);
    } else plan.push([el, value]);
  }
  let target = null;
  if (button !== null) {
    const named = [...document.querySelectorAll("button, input[type=submit], input[type=button], [role=button]")]
      .filter(b => norm(b.getAttribute("aria-label") || b.textContent || b.value) === button);
    const visible = named.filter(b => b.getClientRects().length > 0);
    if (visible.length !== 1) problems.push({kind: visible.length ? "ambiguous button" : "missing button", label: button});
    else if (visible[0].disabled) problems.push({kind: "disabled button", label: button});
    else target = visible[0];
  }
  if (problems.length) return problems;
  for (const [el, value] of plan) { el.value = value;
    el.dispatchEvent(new Event("input", {bubbles: true})); el.dispatchEvent(new Event("change", {bubbles: true})); }
  if (target) setTimeout(() => target.click(), 0);
  return [];
}"""


class ScreenApp:
    """Base of the page objects of one server-rendered app; see module docstring.

    Subclasses set ``login_path`` and ``home_path``; ``heartbeat`` (optional) is
    called before every form post so the caller can stop a worker that lost its lease.
    """

    login_path = "/login"
    home_path = "/"
    name = "app"

    def __init__(self, session: Session, base_url: str, user: str, password: str,
                 heartbeat: Callable[[], None] | None = None):
        self.session = session
        self.page = session.page
        self.base_url = base_url.rstrip("/")
        self.user = user
        self._password = password
        self.heartbeat = heartbeat or (lambda: None)
        self.logged_in = False

    # -- login --------------------------------------------------------------------

    def login(self) -> None:
        """Sign in on a private page (the password never enters the traced session); ``ApplicationError``
        if refused."""
        with self.translated("signing in"), self.session.private_page() as page:
            self.goto(self.login_path, login_page=True, page=page)
            page.get_by_label("Username", exact=True).fill(self.user)
            page.get_by_label("Password", exact=True).fill(self._password)
            response = self._post(page.get_by_role("button", name="Sign in"), page)
            self._check(response, "signing in", login_page=True, page=page)
            if self._on_login_page(page):
                raise ApplicationError(f"{self.name} refused the login of user {self.user!r}: "
                                       f"{'; '.join(self.alerts(page)) or 'no reason shown'}")
        self.logged_in = True

    def action(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` (logging in first if needed); after an expired session log in and run it once more."""
        if not self.logged_in:
            self.login()
        try:
            with self.translated(what):
                return fn()
        except SessionExpired:
            self.logged_in = False
            self.login()
            with self.translated(what):
                return fn()

    # -- navigation ---------------------------------------------------------------

    def url(self, path: str) -> str:
        return urljoin(self.base_url + "/", path.lstrip("/"))

    def goto(self, path: str, *, login_page: bool = False, page: Page | None = None) -> Response | None:
        """Open ``path``; ``ApplicationError`` on an HTTP error, ``SessionExpired`` if sent to the login page."""
        response = (page or self.page).goto(self.url(path), wait_until="domcontentloaded")
        self._check(response, f"opening {path}", login_page=login_page, page=page)
        return response

    def post(self, button: Locator, what: str, *, page: Page | None = None) -> Response | None:
        """Click a button that posts a form and wait for the next page; checked like ``goto``."""
        self.heartbeat()
        response = self._post(button, page or self.page)
        self._check(response, what, page=page)
        return response

    # -- one round trip per step ---------------------------------------------------

    def state(self, page: Page | None = None) -> PageState:
        """What the page shows now (heading, alerts, statuses, tables, record, links), read at once."""
        page = page or self.page
        shown = page.evaluate(_STATE_JS)
        return PageState(url=page.url, heading=shown["heading"], alerts=shown["alerts"],
                         statuses=shown["statuses"], tables=shown["tables"], record=dict(shown["record"]),
                         links=shown["links"])

    def open(self, path: str, *, page: Page | None = None) -> PageState:
        """``goto(path)``, then the page's ``state``."""
        self.goto(path, page=page)
        return self.state(page)

    def fill(self, fields: dict[str, str], *, page: Page | None = None) -> None:
        """Fill every field found by its label text (a select by option value or text), in one round trip.

        ``ApplicationError`` naming the labels not found exactly once (nothing is filled then);
        ``ChoiceUnavailable`` when a select does not offer the value."""
        self._fill_and_click(page or self.page, fields, None)

    def submit(self, button: str, what: str, fields: dict[str, str] | None = None, *,
               page: Page | None = None) -> PageState:
        """Fill ``fields`` by label, click the button named ``button`` (by role and exact name), wait for
        the next page, check it like ``post`` and return its ``state``; one round trip besides the
        navigation itself."""
        page = page or self.page
        self.heartbeat()
        with page.expect_navigation(wait_until="domcontentloaded") as navigation:
            self._fill_and_click(page, fields or {}, button)
        self._check(navigation.value, what, page=page)
        return self.state(page)

    def _fill_and_click(self, page: Page, fields: dict[str, str], button: str | None) -> None:
        problems = page.evaluate(_FILL_JS, [[[k, v or ""] for k, v in fields.items()], button])
        for problem in problems:
            if problem["kind"] == "choice":
                raise ChoiceUnavailable(problem["label"], problem["value"], problem["offered"])
        if problems:
            raise ApplicationError(f"{self.name} page {urlparse(page.url).path} shows "
                                   + "; ".join(_PROBLEMS[p["kind"]].format(p["label"]) for p in problems))

    @staticmethod
    def _post(button: Locator, page: Page) -> Response | None:
        with page.expect_navigation(wait_until="domcontentloaded") as navigation:
            button.click()
        return navigation.value

    def _check(self, response: Response | None, what: str, *, login_page: bool = False,
               page: Page | None = None) -> None:
        """``ApplicationError`` on an HTTP error page; ``SessionExpired`` on an unexpected login page."""
        page = page or self.page
        if response is not None and response.status >= 400:
            alerts = "; ".join(self.alerts(page))
            raise ApplicationError(f"{self.name} answered HTTP {response.status} when {what}"
                                   + (f": {alerts}" if alerts else ""))
        if not login_page and self._on_login_page(page):
            self.logged_in = False
            raise SessionExpired(f"{self.name} session ended when {what}: "
                                 f"{'; '.join(self.alerts(page)) or 'login page shown'}")

    def _on_login_page(self, page: Page | None = None) -> bool:
        return urlparse((page or self.page).url).path.rstrip("/") == self.login_path.rstrip("/")

    # -- reading ------------------------------------------------------------------

    def alerts(self, page: Page | None = None) -> list[str]:
        """Texts of the alerts on the page."""
        texts = (page or self.page).locator('[role="alert"]').all_inner_texts()
        return [t.strip() for t in texts if t.strip()]

    def table(self, column: str, page: Page | None = None) -> Locator:
        """The table that has a column header ``column``."""
        page = page or self.page
        return page.get_by_role("table").filter(
            has=page.get_by_role("columnheader", name=column, exact=True)).first

    # -- errors -------------------------------------------------------------------

    @contextmanager
    def translated(self, what: str) -> Iterator[None]:
        """Turn Playwright errors into ``ApplicationError`` (secrets redacted)."""
        try:
            yield
        except OrderbotsError:
            raise
        except PlaywrightTimeout as exc:
            raise ApplicationError(self.session.redact(
                f"{self.name}: timed out when {what}: {first_line(str(exc))}")) from None
        except PlaywrightError as exc:
            raise ApplicationError(self.session.redact(
                f"{self.name}: browser error when {what}: {first_line(str(exc))}")) from None


def first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:300]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _pids_with_arg(arg: str) -> list[int]:
    """Processes whose command line contains ``arg`` exactly (Linux /proc)."""
    found = []
    needle = arg.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if needle in args:
            found.append(int(entry.name))
    return found

