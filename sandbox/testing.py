"""Tools for tests and benchmarks: run the real sandbox as a subprocess and drive it without a browser.

``SandboxProcess`` starts ``python -m sandbox`` on a free port with a random
password and admin token, waits until it answers, reads the sandbox database
directly (``orders()``, ``stock(sku)``) and stops the process again.

``PageClient`` is a small cookie-keeping HTTP client that fills forms the way
a user does: by label text and button text (``submit(page, "Next", {"Customer
PO": "4711"})``), never by the random field names. Bots must not use it; they
drive the screens with a browser through their connectors.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class SandboxProcess:
    """The real sandbox server in a subprocess; use as a context manager or call ``start``/``stop``."""

    def __init__(self, home: Path, db_path: Path | None, log_path: Path, *args: str, env: dict | None = None):
        """``db_path`` ``None`` means the sandbox's default (``<home>/runlog/sandbox.db``)."""
        self.home, self.log_path, self.args = Path(home), Path(log_path), args
        self.db_path = Path(db_path) if db_path else self.home / "runlog" / "sandbox.db"
        self._db_option = ("--db", str(db_path)) if db_path else ()
        self.user = "bot"
        self.password = secrets.token_urlsafe(18)
        self.admin_token = secrets.token_urlsafe(18)
        self.extra_env = env or {}
        self.url = ""
        self.process: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        """The variables a client needs: user, password and admin token."""
        return {"ORDERBOTS_SANDBOX_USER": self.user, "ORDERBOTS_SANDBOX_PASSWORD": self.password,
                "ORDERBOTS_SANDBOX_ADMIN_TOKEN": self.admin_token}

    def start(self, timeout: float = 30) -> "SandboxProcess":
        env = {k: v for k, v in os.environ.items() if k != "ORDERBOTS_SANDBOX_FAULTS"}
        env.update({"PYTHONUNBUFFERED": "1", **self.env, **self.extra_env})
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--home", str(self.home), "--port", "0", *self._db_option, *self.args],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while not self.url:
            found = re.search(r"Sandbox listening on (http://\S+/) ", self.output())
            if found:
                self.url = found.group(1)
            elif self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sandbox did not start:\n{self.output()}")
            else:
                time.sleep(0.05)
        urllib.request.urlopen(self.url, timeout=timeout).close()
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def output(self) -> str:
        """Everything the server printed so far (stdout and stderr)."""
        return self.log_path.read_text("utf-8", "replace") if self.log_path.exists() else ""

    def set_faults(self, **faults) -> dict:
        """Replace the fault settings (keys not given are off); returns the settings now in force."""
        return self._admin(json.dumps(faults).encode())

    def faults(self) -> dict:
        """The fault settings in force."""
        return self._admin(None)

    def _admin(self, body: bytes | None) -> dict:
        request = urllib.request.Request(self.url + "_admin/faults", body, method="POST" if body else "GET",
                                         headers={"X-Admin-Token": self.admin_token,
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def _read(self, sql: str, args=()) -> list[sqlite3.Row]:
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def orders(self) -> list[dict]:
        """Every stored order, oldest first: header columns plus ``order_number``, ``customer``, ``po``,
        ``status``, ``wms_ref`` and ``lines`` (``line_no``, ``sku``, ``description``, ``qty``, ``unit``,
        ``unit_price`` as stored text)."""
        result = []
        for o in self._read("SELECT o.*, r.wms_ref FROM orders o LEFT JOIN releases r ON r.order_number = o.number "
                            "ORDER BY o.id"):
            lines = self._read("SELECT line_no, sku, description, qty, unit, unit_price FROM order_lines "
                               "WHERE order_id = ? ORDER BY line_no", (o["id"],))
            result.append({**dict(o), "order_number": o["number"], "customer": o["customer_id"],
                           "po": o["customer_po"], "lines": [dict(l) for l in lines]})
        return result

    def stock(self, sku: str) -> dict[str, Decimal]:
        """``on_hand``, ``reserved`` and ``available`` of ``sku`` summed over warehouses."""
        rows = self._read("SELECT on_hand, reserved FROM stock WHERE sku = ?", (sku,))
        on_hand = sum((Decimal(r["on_hand"]) for r in rows), Decimal(0))
        reserved = sum((Decimal(r["reserved"]) for r in rows), Decimal(0))
        return {"on_hand": on_hand, "reserved": reserved, "available": on_hand - reserved}


# -- a browserless client -------------------------------------------------------------------------

@dataclass
class Node:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list = field(default_factory=list)

    @property
    def text(self) -> str:
        """The visible text, whitespace collapsed."""
        parts = [c if isinstance(c, str) else c.text for c in self.children]
        return " ".join(" ".join(parts).split())

    def find_all(self, tag: str | None = None, **attrs) -> list["Node"]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if (tag is None or child.tag == tag) and all(child.attrs.get(k.replace("_", "-")) == v
                                                             for k, v in attrs.items()):
                    found.append(child)
                found.extend(child.find_all(tag, **attrs))
        return found

    def find(self, tag: str | None = None, **attrs) -> "Node | None":
        nodes = self.find_all(tag, **attrs)
        return nodes[0] if nodes else None


class _TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("document")
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        if self.stack[-1].tag not in ("script", "style"):
            self.stack[-1].children.append(data)


class Page:
    """One loaded page: status, URL, parsed tree and the screen elements tests look at."""

    def __init__(self, status: int, url: str, html: str):
        self.status, self.url, self.html = status, url, html
        builder = _TreeBuilder()
        builder.feed(html)
        self.root = builder.root

    @property
    def heading(self) -> str:
        h1 = self.root.find("h1")
        return h1.text if h1 else ""

    @property
    def alerts(self) -> list[str]:
        return [p.text for n in self.root.find_all(role="alert") for p in n.find_all("p")]

    @property
    def statuses(self) -> list[str]:
        return [p.text for n in self.root.find_all(role="status") for p in n.find_all("p")]

    @property
    def text(self) -> str:
        return self.root.text

    def grid(self, class_name: str) -> list[list[str]]:
        """Rows of the table with class ``grid <class_name>`` (header first)."""
        table = self.root.find("table", **{"class": f"grid {class_name}"})
        return [[c.text for c in tr.children if isinstance(c, Node) and c.tag in ("td", "th")]
                for tr in table.find_all("tr")]

    def record(self) -> dict[str, str]:
        """The ``<dl>`` on the page as ``{dt text: dd text}``."""
        dl = self.root.find("dl")
        items = [c for c in dl.children if isinstance(c, Node)] if dl else []
        return {dt.text: dd.text for dt, dd in zip(items[0::2], items[1::2])}

    def link(self, text: str) -> str | None:
        return next((a.attrs.get("href") for a in self.root.find_all("a") if a.text == text), None)

    def labels(self) -> dict[str, str]:
        """Label text -> the ``id`` it points at."""
        return {l.text: l.attrs.get("for", "") for l in self.root.find_all("label")}

    def field_names(self) -> dict[str, str]:
        """Label text -> the ``name`` of the control it labels."""
        controls = {n.attrs.get("id"): n.attrs.get("name", "") for t in ("input", "select", "textarea")
                    for n in self.root.find_all(t)}
        return {text: controls.get(id_, "") for text, id_ in self.labels().items()}

    def form_with_button(self, button: str) -> Node:
        for form in self.root.find_all("form"):
            if any(b.text == button for b in form.find_all("button")):
                return form
        raise LookupError(f"no form with a button {button!r} on {self.url} ({self.heading!r})")


class PageClient:
    """Cookie-keeping HTTP client that follows redirects and fills forms by label."""

    def __init__(self, base_url: str, timeout: float = 30):
        self.base_url = base_url
        self.timeout = timeout
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def _open(self, request: urllib.request.Request) -> Page:
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return Page(response.status, response.url, response.read().decode("utf-8"))
        except urllib.error.HTTPError as error:
            with error:
                return Page(error.code, error.url, error.read().decode("utf-8", "replace"))

    def get(self, path: str) -> Page:
        return self._open(urllib.request.Request(urllib.parse.urljoin(self.base_url, path)))

    def post(self, path: str, data: dict[str, str]) -> Page:
        body = urllib.parse.urlencode(data).encode()
        return self._open(urllib.request.Request(urllib.parse.urljoin(self.base_url, path), body))

    def submit(self, page: Page, button: str, fields: dict[str, str] | None = None) -> Page:
        """Fill ``fields`` (label text -> value) in the form holding ``button`` and press it."""
        form = page.form_with_button(button)
        names = page.field_names()
        data = {n.attrs["name"]: n.attrs.get("value", "") for n in form.find_all("input") if n.attrs.get("name")}
        for select in form.find_all("select"):
            chosen = select.find("option", selected="") or select.find("option")
            data[select.attrs["name"]] = chosen.attrs.get("value", "") if chosen else ""
        for area in form.find_all("textarea"):
            data[area.attrs["name"]] = area.text
        for label, value in (fields or {}).items():
            if not names.get(label):
                raise LookupError(f"no field labelled {label!r} on {page.url} ({page.heading!r})")
            data[names[label]] = value
        action = urllib.parse.urljoin(page.url, form.attrs.get("action") or page.url)
        if form.attrs.get("method", "get").lower() == "post":
            return self.post(action, data)
        return self.get(action + ("?" + urllib.parse.urlencode(data) if data else ""))

    def enter_order(self, header: dict[str, str], lines: list[tuple[str, str, str]]) -> Page:
        """Key an order through the ERP screens (signed in): ``header`` by label, ``lines`` as
        ``(item, quantity, unit price or "")``. Returns the page after "Submit order" (or the first page
        that shows an alert)."""
        page = self.submit(self.get("/erp/orders/new"), "Next", {"Currency": "EUR", **header})
        for sku, qty, price in lines:
            if page.alerts:
                return page
            page = self.submit(page, "Add line", {"Item number": sku, "Quantity": qty, "Unit price": price})
        if page.alerts:
            return page
        page = self.submit(page, "Review")
        return page if page.alerts else self.submit(page, "Submit order")

    def login(self, area: str, user: str, password: str) -> Page:
        """Sign in to ``/erp/`` or ``/wms/``; returns the home page."""
        page = self.get(f"/{area}/login")
        return self.submit(page, "Sign in", {"Username": user, "Password": password})
