"""Sending email over SMTP: building safe messages and delivering them on one reused connection.

Contract:
- ``SmtpConfig.from_mapping(section)`` reads the ``smtp:`` section of
  ``orderbots.yaml`` (host, port, security, user, password_env, from_address,
  from_name, ops_address, timeout, ca_file) and raises ``ConfigError`` naming
  the bad key. ``security`` is ``ssl`` (implicit TLS), ``starttls`` or ``plain``;
  ``plain`` is only allowed to a loopback host. The password is never in the
  file: the caller reads the variable named by ``password_env``.
- ``build_message(...)`` returns a multipart/alternative message (text, then
  HTML, both UTF-8). Every header value that may come from customer data is
  sanitised: control characters (CR, LF, ...) are removed, addresses are
  ``email.headerregistry.Address`` objects (the address itself must be one
  plain ASCII ``local@domain``; display names are quoted as needed and
  RFC 2047-encoded when not ASCII), and ``In-Reply-To`` / ``References`` keep
  only well-formed ``<id@host>`` tokens. The wire form is generated with the
  ``compat32`` MIME classes, because ``EmailMessage``'s header refolding cost
  more per notice than rendering, the database and SMTP together.
- ``SmtpSender(config, password)`` is a context manager holding at most one
  connection; ``send(message, recipient)`` connects when needed and returns
  once the server has accepted the message (250 after DATA).

Errors, translated here so callers decide from the class alone:
- ``SmtpUnavailable`` (an ``ApplicationError``): no session could be opened
  (refused, timeout, TLS failure). Nothing was sent.
- ``ApplicationError``: a transient failure during a session (4xx reply,
  connection lost, timeout). The connection is dropped; the next ``send``
  reconnects. If the connection was lost after DATA the server may still have
  accepted the message: that is the only duplicate risk, and the retry carries
  the same Message-ID.
- ``Undeliverable`` (an ``ApplicationError``): the server refused this message
  or its recipient permanently (5xx to RCPT or DATA), or the recipient address
  is not valid. Retrying cannot help; the caller gives up on the message at
  once. A refused *sender* (MAIL FROM) is our configuration, not the message's
  fault, so it stays a transient ``ApplicationError``.
- ``ConfigError``: the server refused our login, or the configuration is invalid.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
import uuid
from dataclasses import dataclass, field
from email import policy as email_policy
from email.header import Header
from email.headerregistry import Address
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate
from typing import Any, Mapping

from connectors.net import is_loopback
from orderbots.errors import ApplicationError, ConfigError

SECURITY_MODES = ("ssl", "starttls", "plain")
DEFAULT_PORTS = {"ssl": 465, "starttls": 587, "plain": 25}
MAX_REFERENCES = 20
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ADDR_SPEC = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                        r"@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$")
_MSG_ID = re.compile(r"<[^<>\s@]+@[^<>\s@]+>")


WIRE_POLICY = email_policy.compat32.clone(linesep="\r\n")


class SmtpUnavailable(ApplicationError):
    """No SMTP session could be opened; nothing was sent."""


class Undeliverable(ApplicationError):
    """The message can never be delivered as it is (5xx refusal or invalid recipient): do not retry."""


@dataclass(frozen=True)
class SmtpConfig:
    """The ``smtp:`` section of ``orderbots.yaml``; see module docstring."""

    from_address: str
    host: str = "127.0.0.1"
    port: int = 25
    security: str = "plain"
    user: str = ""
    password_env: str = "ORDERBOTS_SMTP_PASSWORD"
    from_name: str = ""
    ops_address: str = ""
    timeout: float = 30.0
    ca_file: str = ""

    @classmethod
    def from_mapping(cls, section: Mapping[str, Any], source: str = "orderbots.yaml") -> "SmtpConfig":
        """Validated settings from the ``smtp:`` mapping; ``ConfigError`` names ``source`` and the key."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(section) - known)
        if unknown:
            raise ConfigError(f"{source}: smtp.{unknown[0]} is not a known setting; use one of {sorted(known)}")
        security = str(section.get("security", "plain")).lower()
        if security not in SECURITY_MODES:
            raise ConfigError(f"{source}: smtp.security is {security!r}; use one of {', '.join(SECURITY_MODES)}")
        values = {k: v for k, v in section.items() if v is not None}
        values["security"] = security
        values.setdefault("port", DEFAULT_PORTS[security])
        if not values.get("from_address"):
            raise ConfigError(f"{source}: smtp.from_address is not set; it is the sender of every notice")
        try:
            values["port"], values["timeout"] = int(values["port"]), float(values.get("timeout", 30.0))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: smtp.port and smtp.timeout must be numbers") from exc
        config = cls(**{k: (str(v) if k not in ("port", "timeout") else v) for k, v in values.items()})
        if security == "plain" and not is_loopback(config.host):
            raise ConfigError(f"{source}: smtp.security plain is only allowed to a loopback host, "
                              f"not {config.host!r}; use starttls or ssl")
        for name in ("from_address", "ops_address"):
            value = getattr(config, name)
            if value and not _ADDR_SPEC.match(value):
                raise ConfigError(f"{source}: smtp.{name} {value!r} is not an email address")
        return config


def header_text(value: Any, limit: int = 200) -> str:
    """``value`` as one header-safe line: control characters dropped, spaces collapsed, cut at ``limit``."""
    return " ".join(_CONTROL.sub(" ", str(value or "")).split())[:limit]


def mailbox(addr_spec: str, display_name: str = "") -> Address:
    """An ``Address`` for ``addr_spec``; ``Undeliverable`` if it is not one plain ``local@domain``."""
    addr = str(addr_spec or "").strip()
    if not _ADDR_SPEC.match(addr):
        raise Undeliverable(f"recipient {header_text(addr, 80)!r} is not a valid email address")
    local, domain = addr.rsplit("@", 1)
    return Address(display_name=header_text(display_name, 100), username=local, domain=domain)


def message_ids(value: Any) -> list[str]:
    """The well-formed ``<id@host>`` tokens in ``value`` (a string or a list of strings)."""
    text = " ".join(value) if isinstance(value, (list, tuple)) else str(value or "")
    return _MSG_ID.findall(text)


def build_message(*, sender: Address, recipient: Address, subject: str, text: str, html: str,
                  message_id: str, reply_to: Mapping[str, Any] | None = None) -> Message:
    """A multipart/alternative message; threads under ``reply_to["message_id"]`` when given."""
    # Both parts are base64, whose alphabet has no "_" or ".", so this boundary never occurs in them
    # (and the generator need not search the text for a safe one).
    msg = MIMEMultipart("alternative", boundary=f"=_part.{uuid.uuid4().hex}")
    msg["From"] = _address_header(sender)
    msg["To"] = _address_header(recipient)
    subject = header_text(subject)
    msg["Subject"] = Header(subject, "us-ascii" if subject.isascii() else "utf-8")
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = message_ids(message_id)[0]
    msg["Auto-Submitted"] = "auto-generated"
    parent = message_ids((reply_to or {}).get("message_id"))[:1]
    if parent:
        references = [r for r in message_ids((reply_to or {}).get("references")) if r != parent[0]]
        msg["In-Reply-To"] = parent[0]
        msg["References"] = " ".join([*references[-(MAX_REFERENCES - 1):], parent[0]])
    msg.attach(MIMEText(text, "plain", "utf-8"))
    msg.attach(MIMEText(html, "html", "utf-8"))
    return msg


def _address_header(address: Address) -> str:
    """``Name <local@domain>`` with the display name quoted or RFC 2047-encoded as needed."""
    return formataddr((header_text(address.display_name, 100), address.addr_spec), charset="utf-8")


@dataclass
class SmtpSender:
    """One SMTP session reused for many messages; see module docstring."""

    config: SmtpConfig
    password: str | None = field(default=None, repr=False)
    _smtp: smtplib.SMTP | None = field(default=None, init=False, repr=False)

    def __enter__(self) -> "SmtpSender":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Say QUIT (best effort) and drop the connection."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    def send(self, message: Message, recipient: Address) -> None:
        """Deliver ``message`` to ``recipient`` (from ``from_address``); returns once the server accepted it."""
        smtp = self._session()
        data = message.as_bytes(policy=WIRE_POLICY)
        try:
            smtp.sendmail(self.config.from_address, [recipient.addr_spec], data)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            self._refused("recipient refused", code, reply)
        except smtplib.SMTPDataError as exc:
            self._refused("message refused", exc.smtp_code, exc.smtp_error)
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise ApplicationError(f"SMTP session with {self._where()} failed: {_describe(exc)}") from exc

    def _refused(self, what: str, code: int, reply: bytes | str) -> None:
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        message = f"{what} by {self._where()}: {code} {header_text(text, 300)}"
        if 500 <= code < 600:
            raise Undeliverable(message)
        self._drop()
        raise ApplicationError(message)

    def _session(self) -> smtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        cfg = self.config
        try:
            if cfg.security == "ssl":
                smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout, context=self._tls())
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
            try:
                if cfg.security == "starttls":
                    smtp.starttls(context=self._tls())
                if cfg.user:
                    smtp.login(cfg.user, self.password or "")
            except BaseException:
                smtp.close()
                raise
        except smtplib.SMTPAuthenticationError as exc:
            raise ConfigError(f"SMTP server {self._where()} refused the login of user {cfg.user!r} "
                              f"({exc.smtp_code}); check the password in ${cfg.password_env}") from None
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise SmtpUnavailable(f"cannot open an SMTP session with {self._where()}: {_describe(exc)}") from exc
        self._smtp = smtp
        return smtp

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.config.ca_file or None)

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def _where(self) -> str:
        return f"{self.config.host}:{self.config.port}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        return f"{exc.smtp_code} {header_text(text, 300)}"
    return header_text(f"{type(exc).__name__}: {exc}", 300)
