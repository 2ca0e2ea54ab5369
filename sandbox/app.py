"""The sandbox web server: routing, sign-in, sessions, CSRF and fault injection.

The app hosts *areas* (the ERP under ``/erp/``, the WMS under ``/wms/``; a
customer portal can be added the same way). An area module defines
``AREA = Area(...)`` with its nav links and routes; the app adds the area's
sign-in page and home page and a separate session cookie
(``<area>_session``, HttpOnly, SameSite=Lax, Path=<prefix>).

Every request to an area goes through the same middleware, in this order:
fault injection (latency, slow pages, HTTP 500s, dropped sessions), session
lookup (a dead session redirects to the sign-in page with "Your session has
expired. Please sign in again."), sign-in check, and a CSRF check of every POST.
``POST /_admin/faults`` changes the faults at run time (loopback only, header
``X-Admin-Token``). The password is compared, never stored in pages or logs.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qsl, quote, urlsplit

import jinja2

from .db import SandboxDB
from .faults import Faults, hit
from .sessions import Session, SessionStore

MAX_BODY = 1 << 20
EXPIRED_MESSAGE = "Your session has expired. Please sign in again."
STALE_FORM = "This form is no longer valid. Please fill it in again."
TEMPLATES = Path(__file__).with_name("templates")


@dataclass
class Credentials:
    user: str
    password: str

    def match(self, user: str, password: str) -> bool:
        ok_user = hmac.compare_digest(user.encode(), self.user.encode())
        ok_password = hmac.compare_digest(password.encode(), self.password.encode())
        return ok_user and ok_password


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    cookies: dict[str, str]
    posted: dict[str, str]
    client: str
    body: bytes = b""
    session: Session | None = None

    def form(self) -> dict[str, str] | None:
        """Fields of the posted form by key (random names mapped back); ``None`` for a stale form."""
        return self.session.read_form(self.posted) if self.session else None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


def redirect(location: str) -> Response:
    """A 303 See Other (the browser follows with GET)."""
    return Response(303, headers=[("Location", location)])


def url(path: str, **query) -> str:
    """``path`` with ``query`` (empty values left out), percent-encoded."""
    parts = [f"{k}={quote(str(v), safe='')}" for k, v in query.items() if v not in ("", None)]
    return path + ("?" + "&".join(parts) if parts else "")


Handler = Callable[..., Response]


@dataclass
class Route:
    method: str
    pattern: str
    handler: Handler
    public: bool = False

    def __post_init__(self):
        self.regex = re.compile(f"^{self.pattern}$")


@dataclass
class Area:
    """One application in the sandbox: ``name`` (cookie/templates), ``title``, URL ``prefix``, nav, routes.

    ``credentials``: the area's own user (default: the sandbox's). ``admin(app, method, action, json) -> dict``
    answers ``/_admin/<name>/<action>`` (``ValueError``: HTTP 400, ``LookupError``: HTTP 404).
    """

    name: str
    title: str
    prefix: str
    nav: list[tuple[str, str]]
    routes: list[Route]
    credentials: Credentials | None = None
    admin: Callable[..., dict] | None = None

    @property
    def cookie(self) -> str:
        return f"{self.name}_session"


class Sandbox:
    """The application; ``dispatch(request)`` turns a ``Request`` into a ``Response``."""

    def __init__(self, db: SandboxDB, credentials: Credentials, areas: list[Area], *, faults: Faults | None = None,
                 session_idle: float = 900, unique_po: bool = False, admin_token: str = ""):
        self.db = db
        self.credentials = credentials
        self.faults = faults or Faults()
        self.sessions = SessionStore(session_idle)
        self.unique_po = unique_po
        self.admin_token = admin_token
        self.areas = areas
        self.templates = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                            undefined=jinja2.StrictUndefined, auto_reload=False)

    # -- rendering ------------------------------------------------------------------------------

    def render(self, req: Request, template: str, *, heading: str, status: int = 200, area: Area | None = None,
               alerts: list[str] = (), statuses: list[str] = (), headers: list | None = None, **context) -> Response:
        """An HTML page; flash messages of the session are shown (once) with ``alerts``/``statuses``."""
        session = req.session
        flash = session.take_flash() if session else []
        page = self.templates.get_template(template).render(
            heading=heading, area=area or self.area_of(req.path), user=session.user if session else None,
            csrf=session.csrf if session else "", new_form=session.new_form if session else None,
            alerts=[*(t for k, t in flash if k == "alert"), *alerts],
            statuses=[*(t for k, t in flash if k == "status"), *statuses], **context)
        return Response(status, page.encode("utf-8"), headers=headers or [])

    def error_page(self, req: Request, status: int, message: str = "") -> Response:
        titles = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 413: "Request Too Large",
                  500: "Internal Server Error"}
        req.session = None  # an error page never consumes flash messages or offers forms
        return self.render(req, "error.html", heading=titles.get(status, "Error"), status=status,
                           alerts=[message] if message else [])

    def ghost(self) -> bool:
        """Whether this committed submit should be answered with a 500 anyway (``ghost_submit`` fault)."""
        return hit(self.faults.ghost_submit)

    def area_of(self, path: str) -> Area | None:
        return next((a for a in self.areas if path == a.prefix or path.startswith(a.prefix + "/")), None)

    # -- dispatch -------------------------------------------------------------------------------

    def dispatch(self, req: Request) -> Response:
        if req.path.startswith("/_admin/"):
            return self.admin(req)
        if req.path == "/":
            return self.render(req, "index.html", heading="Sandbox", areas=self.areas)
        if req.path == "/favicon.ico":  # performance: cacheable, so a browser asks once, not on every page
            return Response(204, headers=[("Cache-Control", "max-age=86400")])
        area = self.area_of(req.path)
        if area is None:
            return self.error_page(req, 404, f"No page at {req.path}")
        if req.path == area.prefix:
            return redirect(area.prefix + "/")
        if self.faults.latency:
            time.sleep(self.faults.latency)
        if hit(self.faults.slow_rate):
            time.sleep(self.faults.slow_seconds)
        if hit(self.faults.error_rate):
            return self.error_page(req, 500)
        session_id = req.cookies.get(area.cookie)
        if session_id and hit(self.faults.drop_session):
            self.sessions.drop(session_id)
        session, expired = self.sessions.get(area.name, session_id)
        req.session = session
        for route in self._routes(area):
            match = route.regex.match(req.path[len(area.prefix):])
            if match and route.method == req.method:
                break
        else:
            return self.error_page(req, 404, f"No page at {req.path}")
        login = f"{area.prefix}/login"
        if session is None and expired and (req.method == "POST" or not route.public):
            return redirect(login + "?expired=1")
        if not route.public and (session is None or session.user is None):
            return redirect(login)
        if req.method == "POST" and (session is None or not session.csrf_ok(req.posted.get("csrf_token"))):
            return self.error_page(req, 403, "Invalid or missing security token. Reload the page and try again.")
        return route.handler(self, req, area, **match.groupdict())

    def _routes(self, area: Area) -> list[Route]:
        return [Route("GET", "/login", login_page, public=True), Route("POST", "/login", login_submit, public=True),
                Route("POST", "/logout", logout), Route("GET", "/", home), *area.routes]

    # -- admin ----------------------------------------------------------------------------------

    def admin(self, req: Request) -> Response:
        def reply(status: int, data: dict) -> Response:
            return Response(status, json.dumps(data).encode(), "application/json")

        if not ipaddress.ip_address(req.client).is_loopback:
            return reply(403, {"error": "the admin API answers loopback clients only"})
        if not self.admin_token:
            return reply(403, {"error": "admin API disabled: set ORDERBOTS_SANDBOX_ADMIN_TOKEN to enable it"})
        if not hmac.compare_digest(req.headers.get("x-admin-token", "").encode(), self.admin_token.encode()):
            return reply(403, {"error": "missing or wrong X-Admin-Token header"})
        if req.path != "/_admin/faults":
            return self._area_admin(req, reply)
        if req.method == "POST":
            try:
                values = json.loads(req.body or b"{}")
                if not isinstance(values, dict):
                    raise ValueError("the body must be a JSON object such as {\"error_rate\": 0.1}")
                self.faults = Faults.from_mapping(values)
            except ValueError as exc:
                return reply(400, {"error": str(exc)})
        return reply(200, self.faults.as_dict())

    def _area_admin(self, req: Request, reply: Callable[[int, dict], Response]) -> Response:
        area = next((a for a in self.areas if a.admin and req.path.startswith(f"/_admin/{a.name}/")), None)
        if area is None:
            return reply(404, {"error": f"no admin endpoint {req.path}"})
        try:
            values = json.loads(req.body or b"{}")
            if not isinstance(values, dict):
                raise ValueError("the body must be a JSON object")
            return reply(200, area.admin(self, req.method, req.path[len(f"/_admin/{area.name}/"):], values))
        except ValueError as exc:
            return reply(400, {"error": str(exc)})
        except LookupError as exc:
            return reply(404, {"error": str(exc)})


# -- sign-in pages shared by every area ---------------------------------------------------------

def _cookie(area: Area, session: Session) -> tuple[str, str]:
    return ("Set-Cookie", f"{area.cookie}={session.id}; Path={area.prefix}; HttpOnly; SameSite=Lax")


def login_page(app: Sandbox, req: Request, area: Area) -> Response:
    if req.session is None:
        req.session = app.sessions.create(area.name)
    alerts = [EXPIRED_MESSAGE] if req.query.get("expired") else []
    return app.render(req, "login.html", heading=f"{area.title} – Sign in", area=area, alerts=alerts,
                      username="", headers=[_cookie(area, req.session)])


def login_submit(app: Sandbox, req: Request, area: Area) -> Response:
    fields = req.form()
    if fields is None:
        req.session.add_flash("alert", STALE_FORM)
        return login_page(app, req, area)
    credentials = area.credentials or app.credentials
    if not credentials.match(fields.get("username", ""), fields.get("password", "")):
        return app.render(req, "login.html", heading=f"{area.title} – Sign in", area=area,
                          alerts=["Invalid username or password"], username=fields.get("username", ""))
    app.sessions.drop(req.session.id)
    session = app.sessions.create(area.name, user=credentials.user)
    return Response(303, headers=[("Location", f"{area.prefix}/"), _cookie(area, session)])


def logout(app: Sandbox, req: Request, area: Area) -> Response:
    app.sessions.drop(req.session.id)
    return redirect(f"{area.prefix}/login")


def home(app: Sandbox, req: Request, area: Area) -> Response:
    return app.render(req, "home.html", heading=f"{area.title} – Main menu", area=area)


def stale_form(app: Sandbox, req: Request, location: str) -> Response:
    """The posted form is unknown to the session (an old page): back to ``location`` with an alert."""
    req.session.add_flash("alert", STALE_FORM)
    return redirect(location)


# -- HTTP server ----------------------------------------------------------------------------------

class _HTTPHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LegacyERP/4.2"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body go out as separate writes

    def do_GET(self):
        self._serve()

    def do_POST(self):
        self._serve()

    def _serve(self):
        app: Sandbox = self.server.app
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            return self._send(Response(413 if length > 0 else 400, b"Bad request body", "text/plain"))
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        cookies = SimpleCookie()
        try:
            cookies.load(self.headers.get("Cookie", ""))
        except CookieError:
            pass
        posted = {}
        if self.command == "POST" and "json" not in self.headers.get("Content-Type", ""):
            posted = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        req = Request(self.command, parts.path or "/", dict(parse_qsl(parts.query, keep_blank_values=True)),
                      {k.lower(): v for k, v in self.headers.items()}, {k: m.value for k, m in cookies.items()},
                      posted, self.client_address[0], body)
        try:
            response = app.dispatch(req)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            response = app.error_page(req, 500)
        self._send(response)

    def _send(self, response: Response):
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        if not any(name == "Cache-Control" for name, _ in response.headers):
            self.send_header("Cache-Control", "no-store")
        self.send_header("X-Frame-Options", "SAMEORIGIN")
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, app: Sandbox, host: str, port: int):
        super().__init__((host, port), _HTTPHandler)
        self.app = app

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"
