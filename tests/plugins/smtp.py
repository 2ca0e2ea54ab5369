"""A real SMTP server for tests (aiosmtpd on 127.0.0.1) that records every message it accepts.

``SmtpServer`` can be stopped and started again on the same port (an outage),
can refuse recipients or messages with any reply (``refuse_rcpt = "550 ..."``),
and can require STARTTLS or implicit TLS and a login. Fixtures:
``smtp_server`` (plain), ``tls_files`` (a self-signed certificate for
127.0.0.1), ``notify_settings`` (the test home configured to send to
``smtp_server`` with short backoffs).
"""

from __future__ import annotations

import email
import ssl
import subprocess
import threading
from collections import Counter
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from orderbots import config
from sandbox.mailserver import free_port


@dataclass
class Received:
    """One accepted message: the envelope and the raw bytes, parsed on first use (as ``message``)."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    _parsed: EmailMessage | None = None

    @property
    def message(self) -> EmailMessage:
        if self._parsed is None:
            self._parsed = email.message_from_bytes(self.data, policy=policy.default)
        return self._parsed


class _Recorder:
    """aiosmtpd handler: refuses as told, else stores the message."""

    def __init__(self, server: "SmtpServer"):
        self.server = server

    async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
        if self.server.refuse_rcpt:
            return self.server.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp, session, envelope):
        if self.server.refuse_data:
            return self.server.refuse_data
        data = envelope.original_content or envelope.content
        with self.server.lock:
            self.server.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), data))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    """A recording SMTP server on 127.0.0.1; see module docstring."""

    port: int = field(default_factory=free_port)
    tls: tuple[Path, Path] | None = None      # (cert, key)
    implicit_tls: bool = False                # True: TLS from the first byte (smtps); False: STARTTLS if tls
    login: tuple[str, str] | None = None      # required (user, password)
    refuse_rcpt: str | None = None
    refuse_data: str | None = None
    host: str = "127.0.0.1"
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Controller | None = None

    def start(self) -> "SmtpServer":
        kwargs = {}
        if self.tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*map(str, self.tls))
            kwargs.update({"ssl_context": context} if self.implicit_tls
                          else {"tls_context": context, "require_starttls": True})
        if self.login:
            # aiosmtpd only counts STARTTLS as TLS; with implicit TLS the channel is encrypted anyway.
            kwargs.update(authenticator=self._authenticate, auth_required=True,
                          auth_require_tls=not self.implicit_tls)
        self._controller = Controller(_Recorder(self), hostname=self.host, port=self.port, **kwargs)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = self.login is not None and (auth_data.login, auth_data.password) == tuple(
            v.encode() for v in self.login)
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd replies 535 itself

    @property
    def messages(self) -> list[EmailMessage]:
        with self.lock:
            return [r.message for r in self.received]

    def count_by_message_id(self) -> Counter:
        return Counter(m["Message-ID"] for m in self.messages)


@pytest.fixture
def smtp_server():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate and key for 127.0.0.1 / localhost (the cert doubles as the CA file)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


def configure(home: Path, **sections: dict) -> config.Settings:
    """Merge ``sections`` into ``<home>/orderbots.yaml`` and return the reloaded settings."""
    file = home / config.CONFIG_FILE
    data = yaml.safe_load(file.read_text(encoding="utf-8")) if file.exists() else {}
    for name, values in sections.items():
        data[name] = {**(data.get(name) or {}), **values}
    file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return config.load(home)


def smtp_section(server: SmtpServer, **extra) -> dict:
    return {"host": server.host, "port": server.port, "security": "plain",
            "from_address": "orders@shop.example", "from_name": "Order Desk",
            "ops_address": "ops@shop.example", "timeout": 10, **extra}


@pytest.fixture
def notify_settings(home, smtp_server) -> config.Settings:
    """The test home sending to ``smtp_server``; backoff 0 so a retry is due at once."""
    return configure(home, smtp=smtp_section(smtp_server),
                     notifier={"backoff": 0, "max_backoff": 0, "max_attempts": 3, "lease": 60})
