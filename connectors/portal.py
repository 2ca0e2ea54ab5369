"""Page objects of a customer's supplier portal (the sandbox's ``/portal/``, contract in ``sandbox/SCREENS.md``).

Everything is found by label, button, link and column header text, never by
position: a column may move, be renamed to a known synonym (``COLUMNS``) or be
joined by new ones, and pages may hold any number of rows. ``PortalScreens``:

- ``list_changed(since) -> list[PoListing]``: every PO whose last change is on or
  after the day ``since`` (all when ``None``), any status, across all pages
  ("Next page" links). Each page is one step; a row seen twice (the list moved
  while we paged) is kept once.
- ``export(since) -> list[PurchaseOrder]``: the same list as the portal's CSV
  export ("Export CSV"), whole POs with their lines; ``raw`` is the PO's CSV rows.
- ``read_po(number) -> PurchaseOrder``: the detail page; ``raw`` is its HTML.
- ``acknowledge(number) -> str``: press "Acknowledge" unless the PO is no longer
  new; returns the PO's status afterwards (``acknowledged`` or ``cancelled``).
  The button's form is posted from the detail page just read (``post_in_place``:
  one round trip, no second page load per PO); the answer page is checked.

Values are returned as the portal shows them (text); statuses in lower case.
Each step is a ``ScreenApp.action`` (an expired session is signed in again) and
is tried ``retries`` more times after an ``ApplicationError`` (HTTP 5xx, timeouts,
a page without the expected table). No business decisions here.
"""

from __future__ import annotations

import csv
import io
import re
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Callable, TypeVar
from urllib.parse import quote, urlparse

from orderbots.errors import ApplicationError

from .browser import ScreenApp, SessionExpired

T = TypeVar("T")
COLUMNS = {
    "number": ("PO number", "Order number"),
    "status": ("Status", "Order status"),
    "changed": ("Last changed", "Last update"),
    "po_date": ("PO date", "Order date"),
    "delivery_date": ("Requested delivery date", "Delivery date", "Deliver by"),
    "currency": ("Currency",), "ship_name": ("Ship-to name",), "street": ("Street",), "city": ("City",),
    "postcode": ("Postcode",), "country": ("Country",), "notes": ("Notes",), "buyer": ("Buyer",),
    "version": ("Version",),
    "line_no": ("Line", "Pos."),
    "buyer_item": ("Buyer item", "Material"),
    "supplier_item": ("Supplier item", "Supplier part"),
    "description": ("Description",),
    "qty": ("Quantity", "Qty"),
    "unit": ("Unit", "UoM"),
    "unit_price": ("Unit price", "Net price"),
}
LIST_KEYS = ("number", "status", "changed")
LINE_KEYS = ("line_no", "buyer_item", "supplier_item", "description", "qty", "unit", "unit_price")
HEADER_KEYS = ("status", "changed", "po_date", "delivery_date", "currency", "ship_name", "street", "city",
               "postcode", "country", "notes", "version")
CHANGED = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
STATUSES = ("new", "acknowledged", "cancelled")
LIST_PATH = "/portal/pos"


@dataclass(frozen=True)
class PoListing:
    """One row of the PO list: number, status, last change (``YYYY-MM-DD HH:MM:SS``)."""

    number: str
    status: str
    changed: str


@dataclass
class PurchaseOrder:
    """A whole PO: header values by key (``HEADER_KEYS``), lines as dicts by ``LINE_KEYS``, the raw source."""

    number: str
    status: str
    changed: str
    header: dict[str, str]
    lines: list[dict[str, str]] = field(default_factory=list)
    raw: str = ""
    raw_suffix: str = ".html"


def canonical(record: dict[str, str], keys: tuple[str, ...], where: str) -> dict[str, str]:
    """``record`` (header text -> value) by key; ``ApplicationError`` naming a key no known header gives."""
    found = {}
    for key in keys:
        header = next((h for h in COLUMNS[key] if h in record), None)
        if header is None:
            raise ApplicationError(f"the portal's {where} has no {' / '.join(repr(h) for h in COLUMNS[key])}: "
                                   f"its layout changed; add the new header to connectors/portal.py COLUMNS")
        found[key] = record[header]
    return found


def _checked(values: dict[str, str], where: str) -> dict[str, str]:
    """``values`` with ``status`` lower-cased; ``ApplicationError`` for an unknown status or change time."""
    status = values["status"].strip().lower()
    if status not in STATUSES or not CHANGED.fullmatch(values["changed"].strip()):
        raise ApplicationError(f"the portal's {where} shows status {values['status']!r} and last change "
                               f"{values['changed']!r}; expected one of {', '.join(STATUSES)} and "
                               "YYYY-MM-DD HH:MM:SS")
    return {**values, "status": status, "changed": values["changed"].strip()}


# Reads one document (the page shown, or one parsed from an answer): heading, alerts, the <dl> record,
# links, buttons and tables. A parsed document is not rendered, so innerText is its text content there.
_READ_DOC = """doc => {
  const text = el => (el ? el.innerText.trim() : '');
  const record = {};
  const dl = doc.querySelector('dl');
  if (dl) { let key = null;
    for (const el of dl.children) {
      if (el.tagName === 'DT') key = text(el);
      else if (el.tagName === 'DD' && key !== null) { record[key] = text(el); key = null; } } }
  const links = {};
  for (const a of doc.querySelectorAll('a[href]')) if (!(text(a) in links)) links[text(a)] = a.getAttribute('href');
  return {
    heading: text(doc.querySelector('h1')),
    alerts: [...doc.querySelectorAll('[role="alert"] p')].map(text).filter(Boolean),
    record, links,
    buttons: [...doc.querySelectorAll('button')].map(text),
    tables: [...doc.querySelectorAll('table')].map(t => [...t.rows].map(r => [...r.cells].map(text))),
  }; }"""

_SNAPSHOT = f"""() => ({{ ...({_READ_DOC})(document), html: document.documentElement.outerHTML }})"""

# Presses a button (found by role and exact name, visible, enabled, exactly one) by posting its form with
# fetch, as the browser would (same fields, cookies, redirects followed), while the page stays where it is;
# returns the answer's status, final URL and page read like _SNAPSHOT, or {problem} and nothing is posted,
# or {timeout} when the whole answer did not arrive within ``ms``. An error answer (HTTP >= 400) replaces the
# page shown, so the evidence shows what the portal answered.
_POST_IN_PLACE = f"""async ([name, ms]) => {{
  const norm = s => (s || '').replace(/\\s+/g, ' ').trim();
  const found = [...document.querySelectorAll('button, input[type=submit]')]
    .filter(b => norm(b.getAttribute('aria-label') || b.textContent || b.value) === name && b.getClientRects().length);
  if (found.length !== 1) return {{problem: found.length ? 'several buttons' : 'no button'}};
  const button = found[0], form = button.form;
  if (button.disabled || button.type !== 'submit' || !form || form.method !== 'post')
    return {{problem: 'no enabled submit button of a form'}};
  let answer, html;
  try {{
    answer = await fetch(form.action, {{method: 'POST', body: new URLSearchParams(new FormData(form, button)),
                                       credentials: 'same-origin', signal: AbortSignal.timeout(ms)}});
    html = await answer.text();
  }} catch (error) {{
    if (error.name === 'TimeoutError') return {{timeout: true}};
    throw error;
  }}
  const doc = new DOMParser().parseFromString(html, 'text/html');
  const shown = {{ ...({_READ_DOC})(doc), html, status: answer.status, url: answer.url }};
  if (answer.status >= 400) document.replaceChild(document.adoptNode(doc.documentElement), document.documentElement);
  return shown;
}}"""


@dataclass
class Snapshot:
    """One page as read by ``PortalScreens.snapshot`` (or an answer by ``post_in_place``): texts of the heading,
    alerts, ``<dl>`` record (dt -> dd), links (text -> href), buttons, tables (rows of cell texts, header row
    first) and the HTML."""

    url: str
    heading: str
    alerts: list[str]
    record: dict[str, str]
    links: dict[str, str]
    buttons: list[str]
    tables: list[list[list[str]]]
    html: str

    def grid(self, key: str) -> list[dict[str, str]]:
        """Rows (header text -> cell text) of the table that has a header of column ``key``; a row with
        another number of cells ("No purchase orders found") is left out."""
        for rows in self.tables:
            if rows and any(h in rows[0] for h in COLUMNS[key]):
                return [dict(zip(rows[0], cells)) for cells in rows[1:] if len(cells) == len(rows[0])]
        raise ApplicationError(f"{self.url}: no table with a column {' / '.join(COLUMNS[key])} "
                               f"({self.heading!r}{': ' + '; '.join(self.alerts) if self.alerts else ''})")


class LoginRefused(ApplicationError):
    """The portal refused our user and password: never retried (portals lock accounts), a person must look."""


class PortalScreens(ScreenApp):
    """See module docstring."""

    login_path = "/portal/login"
    home_path = "/portal/"
    name = "portal"

    def __init__(self, *args, retries: int = 2, **kwargs):
        super().__init__(*args, **kwargs)
        self.retries = retries
        self._shown: Snapshot | None = None  # the PO page ``read_po`` just read, still open

    def login(self) -> None:
        try:
            super().login()
        except ApplicationError as exc:
            if "refused the login" in str(exc):
                raise LoginRefused(str(exc)) from None
            raise

    def step(self, what: str, fn: Callable[[], T]) -> T:
        """``action(what, fn)``, tried again up to ``retries`` times after an ``ApplicationError`` other than
        ``LoginRefused``."""
        for attempt in range(self.retries + 1):
            try:
                return self.action(what, fn)
            except LoginRefused:
                raise
            except ApplicationError:
                if attempt == self.retries:
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    # -- the list -------------------------------------------------------------------

    def list_changed(self, since: date | None) -> list[PoListing]:
        """See module docstring."""
        rows, next_url = self.step("filtering purchase orders", lambda: self._filter(since))
        seen = {r.number for r in rows}
        page = 1
        while next_url:
            page += 1
            more, next_url = self.step(f"opening page {page} of the purchase orders",
                                       lambda url=next_url: self._list_page(url))
            rows += [r for r in more if r.number not in seen]
            seen.update(r.number for r in more)
        return rows

    def _filter(self, since: date | None) -> tuple[list[PoListing], str]:
        if urlparse(self.page.url).path != LIST_PATH:
            self.goto(LIST_PATH)
        self.page.get_by_label("Changed from", exact=True).fill(since.isoformat() if since else "")
        self.page.get_by_label("Changed to", exact=True).fill("")
        self.page.get_by_label("Status", exact=True).select_option("All")
        self.post(self.page.get_by_role("button", name="Filter", exact=True), "filtering purchase orders")
        return self._read_list(self.snapshot())

    def _list_page(self, url: str) -> tuple[list[PoListing], str]:
        self.goto(url)
        return self._read_list(self.snapshot())

    @staticmethod
    def _read_list(page: "Snapshot") -> tuple[list[PoListing], str]:
        if page.alerts:
            raise ApplicationError(f"the portal refused the PO list filter: {'; '.join(page.alerts)}")
        rows = [_checked(canonical(r, LIST_KEYS, "PO list"), "PO list") for r in page.grid("number")]
        return [PoListing(r["number"], r["status"], r["changed"]) for r in rows], page.links.get("Next page", "")

    def snapshot(self) -> "Snapshot":
        """Everything the bot reads from the current page, in one round trip to the browser."""
        return Snapshot(**self.page.evaluate(_SNAPSHOT), url=self.page.url)

    def post_in_place(self, button: str, what: str) -> "Snapshot":
        """Press the button named ``button`` on the current page by posting its form from the page (one round
        trip, no page load: the page stays as it is) and return the answer page, checked like ``post``:
        ``SessionExpired`` when it is the login page, ``ApplicationError`` for HTTP >= 400, a missing button or
        no whole answer within the navigation timeout."""
        self.heartbeat()
        seconds = self.session.options.navigation_timeout
        answer = self.page.evaluate(_POST_IN_PLACE, [button, seconds * 1000])
        if "timeout" in answer:
            raise ApplicationError(f"{self.name}: timed out when {what}: no answer within {seconds:g} s")
        if "problem" in answer:
            raise ApplicationError(f"{self.name} page {urlparse(self.page.url).path}: {answer['problem']} "
                                   f"{button!r} when {what}")
        status = answer.pop("status")
        page = Snapshot(**answer)
        if urlparse(page.url).path.rstrip("/") == self.login_path:
            self.logged_in = False
            raise SessionExpired(f"{self.name} session ended when {what}: "
                                 f"{'; '.join(page.alerts) or 'login page shown'}")
        if status >= 400:
            raise ApplicationError(f"{self.name} answered HTTP {status} when {what}"
                                   + (f": {'; '.join(page.alerts)}" if page.alerts else ""))
        return page

    # -- a detail page --------------------------------------------------------------

    def read_po(self, number: str) -> PurchaseOrder:
        """See module docstring."""
        return self.step(f"reading purchase order {number}", lambda: self._read_po(number))

    def _read_po(self, number: str) -> PurchaseOrder:
        self._shown = None
        self.goto(self._detail_path(number))
        page = self._expect_po(number, self.snapshot())
        where = f"page of PO {number}"
        header = _checked(canonical(page.record, HEADER_KEYS, where), where)
        lines = [canonical(l, LINE_KEYS, where) for l in page.grid("buyer_item")]
        self._shown = page
        return PurchaseOrder(number, header["status"], header["changed"], header, lines, page.html)

    @staticmethod
    def _expect_po(number: str, page: "Snapshot") -> "Snapshot":
        if page.heading != f"Purchase order {number}":
            raise ApplicationError(f"expected the page of purchase order {number}, got {page.heading!r}: "
                                   f"{'; '.join(page.alerts) or 'no reason shown'}")
        return page

    @staticmethod
    def _detail_path(number: str) -> str:
        return f"{LIST_PATH}/{quote(number, safe='')}"

    # -- acknowledge ----------------------------------------------------------------

    def acknowledge(self, number: str) -> str:
        """See module docstring."""
        return self.step(f"acknowledging purchase order {number}", lambda: self._acknowledge(number))

    def _acknowledge(self, number: str) -> str:
        page, self._shown = self._shown, None  # a retry opens the page again
        path = self._detail_path(number)
        if page is None or page.heading != f"Purchase order {number}" or urlparse(self.page.url).path != path:
            self.goto(path)
            page = self._expect_po(number, self.snapshot())
        if "Acknowledge" in page.buttons:
            page = self._expect_po(number, self.post_in_place("Acknowledge", f"acknowledging purchase order "
                                                                              f"{number}"))
        status = page.record.get("Status", "").strip().lower()
        if status not in ("acknowledged", "cancelled"):
            raise ApplicationError(f"purchase order {number} is still {status or 'unknown'} after "
                                   f"\"Acknowledge\": {'; '.join(page.alerts) or 'no reason shown'}")
        return status

    # -- the CSV export -------------------------------------------------------------

    def export(self, since: date | None) -> list[PurchaseOrder]:
        """See module docstring."""
        return self.step("exporting purchase orders", lambda: self._export(since))

    def _export(self, since: date | None) -> list[PurchaseOrder]:
        self._filter(since)
        href = self.snapshot().links.get("Export CSV")
        if not href:
            raise ApplicationError("the PO list has no \"Export CSV\" link")
        response = self.page.context.request.get(self.url(href))
        if urlparse(response.url).path.rstrip("/") == self.login_path:
            self.logged_in = False
            raise SessionExpired("portal session ended when exporting purchase orders")
        if response.status >= 400 or "csv" not in response.headers.get("content-type", ""):
            raise ApplicationError(f"portal answered HTTP {response.status} "
                                   f"({response.headers.get('content-type', '?')}) to the CSV export")
        return parse_export(response.text())


def parse_export(text: str) -> list[PurchaseOrder]:
    """The portal's CSV export (one row per PO line) as whole POs, in file order."""
    reader = csv.DictReader(io.StringIO(text))
    header_line = text.splitlines()[0] if text else ""
    pos: dict[str, PurchaseOrder] = {}
    raw: dict[str, list[str]] = {}
    for record in reader:
        number = canonical(record, ("number",), "CSV export")["number"]
        where = f"CSV export, PO {number}"
        if number not in pos:
            header = _checked(canonical(record, HEADER_KEYS, where), where)
            pos[number] = PurchaseOrder(number, header["status"], header["changed"], header, raw_suffix=".csv")
            raw[number] = [header_line]
        pos[number].lines.append(canonical(record, LINE_KEYS, where))
        raw[number].append(_csv_line(record, reader.fieldnames))
    for number, po in pos.items():
        po.raw = "\r\n".join(raw[number]) + "\r\n"
    return list(pos.values())


def _csv_line(record: dict[str, str], fieldnames) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([record.get(f, "") for f in fieldnames])
    return out.getvalue()
