"""Talking to one IMAP mailbox (imapclient): list, fetch without marking seen, move.

Contract:
- ``ImapMailbox(account)`` connects and logs in on ``open()`` (or ``with``).
  ``security`` is ``ssl`` (implicit TLS, port 993), ``starttls`` or ``plain``
  (port 143; meant for loopback). Login is by password or, when
  ``oauth2_token`` is set, XOAUTH2 with that bearer token.
- Every socket, TLS or protocol failure leaves this module as
  ``ApplicationError`` (the caller reconnects and retries); a refused login is
  a ``ConfigError``. Messages never contain the password or the token.
- ``fetch`` uses ``BODY.PEEK[]``: reading never sets ``\\Seen``.
- ``move`` uses MOVE when the server announces it, else COPY, ``\\Deleted`` and
  UID EXPUNGE of exactly those UIDs (plain EXPUNGE only without UIDPLUS).
"""

from __future__ import annotations

import imaplib
import re
import ssl
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterator

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from connectors.net import is_loopback
from orderbots.errors import ApplicationError, ConfigError

SECURITY = ("ssl", "starttls", "plain")
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


@dataclass
class ImapAccount:
    """Where and how to log in; secrets are kept out of ``repr``."""

    host: str
    user: str
    port: int | None = None
    security: str = "ssl"
    password: str | None = field(default=None, repr=False)
    oauth2_token: str | None = field(default=None, repr=False)
    timeout: float = 60.0
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.security not in SECURITY:
            raise ConfigError(f"IMAP security must be one of {', '.join(SECURITY)}, not {self.security!r}")
        if self.security == "plain" and not is_loopback(self.host):
            raise ConfigError(f"IMAP security 'plain' would send the password to {self.host} unencrypted; "
                              "use ssl or starttls (plain is for a server on this machine only)")
        if not (self.password or self.oauth2_token):
            raise ConfigError(f"IMAP account {self.user}@{self.host} has neither a password nor an OAuth2 token")

    @property
    def label(self) -> str:
        return f"{self.user}@{self.host}"


@dataclass(frozen=True)
class FolderState:
    uidvalidity: int
    uidnext: int
    exists: int


@dataclass(frozen=True)
class Envelope:
    """What is known of a message before its body is fetched."""

    uid: int
    size: int
    message_id: str


@dataclass(frozen=True)
class Fetched:
    """A message's raw bytes and when the server received it (INTERNALDATE, tz-aware)."""

    uid: int
    raw: bytes
    arrived: datetime | None


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn library and socket failures into ``ApplicationError`` naming ``what`` failed."""
    try:
        yield
    except LoginError as exc:
        raise ConfigError(f"{what}: the server refused the login ({exc}); check user and credentials") from exc
    except (IMAPClientError, imaplib.IMAP4.error, OSError, ssl.SSLError, EOFError) as exc:
        raise ApplicationError(f"{what}: {type(exc).__name__}: {exc}") from exc


class ImapMailbox:
    """One logged-in IMAP connection; see module docstring."""

    def __init__(self, account: ImapAccount):
        self.account = account
        self._client: IMAPClient | None = None
        self._selected: str | None = None

    # -- connection ---------------------------------------------------------

    def open(self) -> "ImapMailbox":
        a = self.account
        port = a.port or (993 if a.security == "ssl" else 143)
        context = a.ssl_context or ssl.create_default_context()
        with _translated(f"connecting to IMAP {a.host}:{port}"):
            client = IMAPClient(a.host, port, ssl=a.security == "ssl", ssl_context=context, timeout=a.timeout)
            client.normalise_times = False  # keep INTERNALDATE's time zone
        try:
            with _translated(f"logging in to IMAP as {a.label}"):
                if a.security == "starttls":
                    client.starttls(context)
                if a.oauth2_token:
                    client.oauth2_login(a.user, a.oauth2_token)
                else:
                    client.login(a.user, a.password)
        except BaseException:
            _shutdown(client)
            raise
        self._client, self._selected = client, None
        return self

    def close(self) -> None:
        """Log out (best effort: a dead connection is simply dropped)."""
        client, self._client, self._selected = self._client, None, None
        if client is not None:
            try:
                client.logout()
            except Exception:  # noqa: BLE001 - closing a broken connection must not raise
                _shutdown(client)

    def __enter__(self) -> "ImapMailbox":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def client(self) -> IMAPClient:
        if self._client is None:
            raise ApplicationError(f"IMAP {self.account.label}: not connected")
        return self._client

    @property
    def supports_move(self) -> bool:
        with _translated("reading IMAP capabilities"):
            return self.client.has_capability("MOVE")

    # -- folders ------------------------------------------------------------

    def ensure_folder(self, folder: str) -> None:
        with _translated(f"creating IMAP folder {folder!r}"):
            if not self.client.folder_exists(folder):
                self.client.create_folder(folder)

    def select(self, folder: str) -> FolderState:
        """Open ``folder`` read-write; its UIDVALIDITY tells whether known UIDs still hold."""
        with _translated(f"selecting IMAP folder {folder!r}"):
            info = self.client.select_folder(folder)
        self._selected = folder
        return FolderState(int(info[b"UIDVALIDITY"]), int(info.get(b"UIDNEXT") or 0), int(info[b"EXISTS"]))

    def uids(self, after: int = 0, upto: int | None = None) -> list[int]:
        """UIDs in the selected folder with ``after < uid <= upto`` (no upper bound if ``upto`` is None)."""
        high = "*" if upto is None else str(upto)
        if upto is not None and upto <= after:
            return []
        with _translated(f"searching IMAP folder {self._selected!r}"):
            found = self.client.search(["UID", f"{after + 1}:{high}"])
        return sorted(u for u in found if u > after and (upto is None or u <= upto))

    # -- messages -----------------------------------------------------------

    def envelopes(self, uids: list[int]) -> list[Envelope]:
        """Size and Message-ID of each message (headers only, ``\\Seen`` untouched)."""
        if not uids:
            return []
        with _translated(f"fetching headers from IMAP folder {self._selected!r}"):
            data = self.client.fetch(uids, ["RFC822.SIZE", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
        result = []
        for uid in sorted(data):
            item = data[uid]
            header = next((v for k, v in item.items() if k.startswith(b"BODY[HEADER")), b"") or b""
            match = _MESSAGE_ID.search(header)
            message_id = re.sub(r"\s+", "", match.group(1).decode("ascii", "replace")) if match else ""
            result.append(Envelope(uid, int(item.get(b"RFC822.SIZE", 0)), message_id))
        return result

    def fetch(self, uids: list[int]) -> list[Fetched]:
        """The messages still present among ``uids``, in one ``UID FETCH ... BODY.PEEK[]``."""
        if not uids:
            return []
        with _translated(f"fetching messages from IMAP folder {self._selected!r}"):
            data = self.client.fetch(uids, ["INTERNALDATE", "BODY.PEEK[]"])
        return [Fetched(uid, data[uid][b"BODY[]"], _utc(data[uid].get(b"INTERNALDATE")))
                for uid in sorted(data) if b"BODY[]" in data[uid]]

    def move(self, uids: list[int], folder: str) -> None:
        """Move messages of the selected folder to ``folder``; see module docstring."""
        if not uids:
            return
        with _translated(f"moving {len(uids)} message(s) to IMAP folder {folder!r}"):
            if self.supports_move:
                self.client.move(uids, folder)
                return
            self.client.copy(uids, folder)
            self.client.add_flags(uids, [b"\\Deleted"], silent=True)
            if self.client.has_capability("UIDPLUS"):
                self.client.uid_expunge(uids)
            else:
                self.client.expunge()


def _utc(value: datetime | None) -> datetime | None:
    """A tz-aware INTERNALDATE in UTC (plain ``timezone.utc``, not the library's own tzinfo)."""
    if value is None or value.tzinfo is None:
        return None
    return value.astimezone(timezone.utc)


def _shutdown(client: IMAPClient) -> None:
    try:
        client.shutdown()
    except Exception:  # noqa: BLE001
        pass

