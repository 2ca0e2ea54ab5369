"""A private Dovecot IMAP server for the demo and the tests, from a config in its own folder.

``Dovecot(root)`` prepares ``root`` (config, passwd-file with one user and a random
password, maildir owned by the ``dovecot`` user); ``start()`` runs ``dovecot -F``
on a free port of 127.0.0.1 and waits until it answers; ``stop()`` kills it and
its children. Helpers put mail in (``append`` over IMAP, ``deliver`` straight into
the maildir), read folders back, change UIDVALIDITY and drop connections.
"""

from __future__ import annotations

import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterable

from aiosmtpd.controller import Controller
from imapclient import IMAPClient

# Post-login capabilities of a server without MOVE (forces COPY + \Deleted + UID EXPUNGE).
CAPABILITIES_WITHOUT_MOVE = "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE UIDPLUS NAMESPACE UNSELECT"

_CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
default_internal_user = dovecot
default_login_user = dovenull
{extra}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{pid}\n" in status:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class Dovecot:
    """One private Dovecot; ``start``/``stop``/``restart`` keep the same port and mail."""

    host = "127.0.0.1"

    def __init__(self, root: Path | None = None, *, capabilities: str | None = None):
        """``root`` None: a new folder in the system temp dir, removed again by ``close``."""
        self._owns_root = root is None
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="orderbots-dovecot-"))
            root.chmod(0o755)  # Dovecot's unprivileged processes must reach base_dir and the mail
        self.root = root
        self.port = free_port()
        self.user = "orderbot"
        self.password = secrets.token_urlsafe(12)
        self.capabilities = capabilities
        self.process: subprocess.Popen | None = None
        self._uid = pwd.getpwnam("dovecot")
        for sub in ("run", "state", "mail"):
            (root / sub).mkdir(exist_ok=True)
        os.chown(root / "mail", self._uid.pw_uid, self._uid.pw_gid)
        (root / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}\n")

    @property
    def conf(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def maildir(self) -> Path:
        return self.root / "mail" / self.user

    def folder_dir(self, folder: str) -> Path:
        return self.maildir if folder == "INBOX" else self.maildir / ("." + folder.replace("/", "."))

    def start(self) -> None:
        shutil.rmtree(self.root / "run", ignore_errors=True)  # stale sockets of a killed instance
        (self.root / "run").mkdir()
        extra = f"imap_capability = {self.capabilities}" if self.capabilities else ""
        self.conf.write_text(_CONF.format(root=self.root, port=self.port, extra=extra))
        self.process = subprocess.Popen(["dovecot", "-F", "-c", str(self.conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.process.stderr.read().decode()} {self.log()}")
            if self._greets():
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"dovecot did not greet on {self.port}: {self.log()}")

    def _greets(self) -> bool:
        """Whether an IMAP greeting comes back: the master may listen before its login processes serve."""
        try:
            with socket.create_connection((self.host, self.port), timeout=2) as conn:
                return conn.recv(200).startswith(b"* OK")
        except OSError:
            return False

    def stop(self) -> None:
        """Kill the master and its children (by pid): maildir is crash-safe and a graceful stop takes 1 s."""
        if not self.process:
            return
        children = _children(self.process.pid)
        self.process.kill()
        self.process.wait(10)
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10  # a child still alive keeps the sockets a restart needs
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.process.stderr.close()
        self.process = None

    def close(self) -> None:
        """Stop, and remove the folder if this object made it."""
        self.stop()
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    # -- putting mail in ------------------------------------------------------

    def client(self) -> IMAPClient:
        c = IMAPClient(self.host, self.port, ssl=False, timeout=30)
        c.login(self.user, self.password)
        return c

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        """APPEND one message over IMAP."""
        with self.client() as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)
            c.append(folder, raw)

    def deliver(self, messages: Iterable[bytes], folder: str = "INBOX") -> int:
        """Write messages straight into the maildir (fast); Dovecot indexes them on next SELECT."""
        target = self.folder_dir(folder)
        for sub in ("new", "cur", "tmp"):
            (target / sub).mkdir(parents=True, exist_ok=True)
        stamp, n = int(time.time()), 0
        for n, raw in enumerate(messages, 1):
            path = target / "new" / f"{stamp}.M{n}P{os.getpid()}.orderbots-test"
            path.write_bytes(raw)
        for path in [target, *target.iterdir(), *(target / "new").iterdir()]:
            os.chown(path, self._uid.pw_uid, self._uid.pw_gid)
        return n

    def change_uidvalidity(self, folder: str = "INBOX") -> None:
        """Forget the folder's UID list and indexes: Dovecot renumbers it with a new UIDVALIDITY."""
        self.stop()
        target = self.folder_dir(folder)
        for path in target.iterdir():
            if path.name.startswith(("dovecot-uidlist", "dovecot.index")):
                path.unlink()
        self.start()

    def kick(self) -> None:
        """Drop every connection of the user (``doveadm kick``)."""
        done = subprocess.run(["doveadm", "-c", str(self.conf), "kick", self.user],
                              capture_output=True, text=True, timeout=30)
        if done.returncode not in (0, 68):  # 68: nobody was connected
            raise RuntimeError(f"doveadm kick failed: {done.stderr}")

    # -- reading back ---------------------------------------------------------

    def messages(self, folder: str = "INBOX") -> dict[int, bytes]:
        """UID -> raw message of every message in ``folder`` (empty if it does not exist)."""
        with self.client() as c:
            if not c.folder_exists(folder):
                return {}
            c.select_folder(folder, readonly=True)
            uids = c.search("ALL")
            result = {}
            for start in range(0, len(uids), 500):
                fetched = c.fetch(uids[start:start + 500], ["BODY.PEEK[]"])
                result.update({uid: data[b"BODY[]"] for uid, data in fetched.items()})
            return result

    def count(self, folder: str = "INBOX") -> int:
        with self.client() as c:
            if not c.folder_exists(folder):
                return 0
            return c.folder_status(folder, ["MESSAGES"])[b"MESSAGES"]

    def flags(self, folder: str = "INBOX") -> dict[int, tuple]:
        with self.client() as c:
            c.select_folder(folder, readonly=True)
            uids = c.search("ALL")
            return {uid: d[b"FLAGS"] for uid, d in c.fetch(uids, ["FLAGS"]).items()} if uids else {}


class MailSink:
    """An SMTP server on 127.0.0.1 (aiosmtpd) that writes every message it accepts to ``folder``
    as ``<n>-<recipient>.eml``, so a person can open what the bots sent."""

    def __init__(self, folder: Path, port: int | None = None):
        self.folder = Path(folder)
        self.port = port or free_port()
        self.count = 0
        self._controller = None

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        recipient = (envelope.rcpt_tos or ["unknown"])[0].replace("/", "_")
        (self.folder / f"{self.count:04d}-{recipient}.eml").write_bytes(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"

    def start(self) -> "MailSink":
        self.folder.mkdir(parents=True, exist_ok=True)
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
