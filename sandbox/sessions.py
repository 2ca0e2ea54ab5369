"""Server-side sessions, CSRF tokens and per-load random form field names.

A ``Session`` belongs to one area (ERP, WMS, ...) and lives in memory only: a
restart signs everybody out. It carries a CSRF token, the signed-in user (or
``None`` before sign-in), free ``data`` for screens (the order being entered)
and one-shot ``flash`` messages.

Every rendered form gets a ``Form``: each field has a fresh random ``name`` and
``id``; the form's token (hidden input ``form_token``) lets the server map the
posted names back to field keys. A session keeps its last ``MAX_FORMS`` forms.

``SessionStore.get`` tells a missing session from an expired one, so the app
can say "Your session has expired" only when there was a session to expire.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

MAX_FORMS = 50


def random_token(nbytes: int = 16) -> str:
    return secrets.token_urlsafe(nbytes)


def random_name() -> str:
    """A random HTML name/id: starts with a letter, safe in CSS selectors."""
    return "f" + secrets.token_hex(6)


class Form:
    """The random field names of one rendered form; ``name(key)``/``id(key)`` create them on first use."""

    def __init__(self, token: str, mapping: dict[str, str]):
        self.token = token
        self._mapping = mapping  # random name -> field key (shared with the session)
        self._names: dict[str, tuple[str, str]] = {}

    def _pair(self, key: str) -> tuple[str, str]:
        if key not in self._names:
            name, id_ = random_name(), random_name()
            self._names[key] = (name, id_)
            self._mapping[name] = key
        return self._names[key]

    def name(self, key: str) -> str:
        return self._pair(key)[0]

    def id(self, key: str) -> str:
        return self._pair(key)[1]


@dataclass
class Session:
    id: str
    area: str
    csrf: str = field(default_factory=random_token)
    user: str | None = None
    last_seen: float = field(default_factory=time.monotonic)
    data: dict = field(default_factory=dict)
    flash: list[tuple[str, str]] = field(default_factory=list)
    forms: OrderedDict = field(default_factory=OrderedDict)

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf.encode(), str(token).encode())

    def new_form(self) -> Form:
        token = random_token(9)
        mapping: dict[str, str] = {}
        self.forms[token] = mapping
        while len(self.forms) > MAX_FORMS:
            self.forms.popitem(last=False)
        return Form(token, mapping)

    def read_form(self, posted: dict[str, str]) -> dict[str, str] | None:
        """The posted fields by key, or ``None`` when the form token is unknown (stale page)."""
        mapping = self.forms.get(posted.get("form_token", ""))
        if mapping is None:
            return None
        return {key: posted.get(name, "") for name, key in mapping.items()}

    def add_flash(self, kind: str, text: str) -> None:
        """Queue a message (``kind`` is ``alert`` or ``status``) for the next rendered page."""
        self.flash.append((kind, text))

    def take_flash(self) -> list[tuple[str, str]]:
        messages, self.flash = self.flash, []
        return messages


class SessionStore:
    """Thread-safe in-memory sessions with an idle timeout in seconds."""

    def __init__(self, idle_seconds: float):
        self.idle_seconds = idle_seconds
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, area: str, user: str | None = None) -> Session:
        session = Session(random_token(24), area, user=user)
        with self._lock:
            self._sweep()
            self._sessions[session.id] = session
        return session

    def get(self, area: str, session_id: str | None) -> tuple[Session | None, bool]:
        """``(session, expired)``: the live session, or ``None`` and whether a cookie named a dead one."""
        if not session_id:
            return None, False
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.area != area:
                return None, True
            if now - session.last_seen > self.idle_seconds:
                del self._sessions[session_id]
                return None, True
            session.last_seen = now
            return session, False

    def drop(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def _sweep(self) -> None:
        now = time.monotonic()
        for sid in [s.id for s in self._sessions.values() if now - s.last_seen > self.idle_seconds]:
            del self._sessions[sid]
