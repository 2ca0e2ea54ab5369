"""A real Dovecot IMAP server per test, from a private config in a temp dir.

``dovecot`` yields a running ``Dovecot``: plaintext IMAP on a free high port of
127.0.0.1, one passwd-file user, maildir storage owned by the ``dovecot`` user.
Helpers put messages in (``append`` over IMAP, ``deliver`` as maildir files for
big mailboxes), read folders back, change UIDVALIDITY and drop connections.
``imap_home`` is an orderbots home whose ``orderbots.yaml`` points its ``imap:``
section at that server (password through an environment variable).

``DropProxy`` sits between a client and the server and cuts the connection once,
after a given number of server bytes: a disconnect in the middle of a FETCH.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from orderbots import config
from sandbox.mailserver import CAPABILITIES_WITHOUT_MOVE, Dovecot  # noqa: F401 (re-exported for tests)

PASSWORD_ENV = "ORDERBOTS_TEST_IMAP_PASSWORD"


class DropProxy:
    """A TCP relay to ``target`` that, once armed with ``cut_after(n)``, closes after n more server bytes."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._budget: int | None = None
        self.cuts = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._closing = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def cut_after(self, n_bytes: int) -> None:
        with self._lock:
            self._budget = n_bytes

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_server: bool) -> None:
        try:
            while data := src.recv(65536):
                if from_server:
                    with self._lock:
                        if self._budget is not None:
                            if len(data) >= self._budget:
                                dst.sendall(data[:self._budget])
                                self._budget, self.cuts = None, self.cuts + 1
                                raise ConnectionAbortedError("cut")
                            self._budget -= len(data)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self._closing = True
        self.listener.close()
        for s in self._sockets:
            try:
                s.close()
            except OSError:
                pass


@pytest.fixture
def dovecot():
    """A running private Dovecot; stopped (with any stray child) at teardown."""
    server = Dovecot()
    server.start()
    try:
        yield server
    finally:
        server.close()


def write_imap_config(home: Path, server: Dovecot, monkeypatch, *, port: int | None = None, **extra) -> None:
    """Write ``home/orderbots.yaml`` with an ``imap:`` section for ``server`` (password via env)."""
    monkeypatch.setenv(PASSWORD_ENV, server.password)
    section = {"host": server.host, "port": port or server.port, "security": "plain", "user": server.user,
               "password_env": PASSWORD_ENV, "folder": "INBOX", "processed_folder": "Processed",
               "attention_folder": "Attention", "batch_size": 50, **extra}
    lines = ["imap:"] + [f"  {k}: {v}" for k, v in section.items()]
    (home / "orderbots.yaml").write_text("\n".join(lines) + "\n")


@pytest.fixture
def imap_home(home, dovecot, monkeypatch) -> Path:
    """An orderbots home whose ``imap:`` section points at ``dovecot``."""
    write_imap_config(home, dovecot, monkeypatch)
    return home


@pytest.fixture
def imap_settings(imap_home):
    return config.load(imap_home)


# -- test messages -----------------------------------------------------------------

ORDER_HEADER = ["PO Number", "SKU", "Qty", "Unit Price", "Ship To", "Address", "City", "Postcode", "Country"]
ACME = "orders@acme-retail.example"
ACME_SHIP = ["Acme Retail Ltd", "1 High Street", "London", "EC1A 1AA", "GB"]


def _cell(ref: str, value) -> str:
    if isinstance(value, (int, float)):
        return f'<c r="{ref}"><v>{value}</v></c>'
    from xml.sax.saxutils import escape
    return f'<c r="{ref}" t="inlineStr"><is><t>{escape(str(value))}</t></is></c>'


def xlsx_bytes(rows: list[list]) -> bytes:
    """A minimal valid .xlsx (inline strings) with one sheet ``Orders``; fast enough for thousands."""
    import io
    import zipfile
    sheet_rows = "".join(
        f'<row r="{r}">' + "".join(_cell(f"{chr(65 + c)}{r}", v) for c, v in enumerate(row)) + "</row>"
        for r, row in enumerate(rows, 1))
    parts = {
        "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>',
        "_rels/.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Orders" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{sheet_rows}</sheetData></worksheet>',
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in parts.items():  # fixed timestamps: the same rows give the same bytes
            z.writestr(zipfile.ZipInfo(name, date_time=(2025, 1, 1, 0, 0, 0)), text, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def order_rows(po: str, lines=(("SKU-1001", 10, 8.5),), ship=ACME_SHIP) -> list[list]:
    return [ORDER_HEADER] + [[po, sku, qty, price, *ship] for sku, qty, price in lines]


def mail(*, sender: str = ACME, subject: str = "Order", body: str = "Please find our order attached.",
         message_id: str | None = None, attachments: list[tuple[str, bytes]] = (), html: str | None = None,
         headers: dict[str, str] | None = None) -> bytes:
    """An RFC 822 message (CRLF) as a mail client would send it."""
    from email.message import EmailMessage
    from email.policy import SMTP
    from email.utils import make_msgid
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = "orders@orderbots.example"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id or make_msgid(domain="customer.example")
    msg["Date"] = "Mon, 03 Mar 2025 09:00:00 +0000"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, data in attachments:
        maintype, subtype = ("text", "csv") if filename.endswith(".csv") else (
            "application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def xlsx_order_mail(po: str, **kwargs) -> bytes:
    """A message from Acme with one .xlsx order attachment for ``po``."""
    return mail(attachments=[(f"order-{po}.xlsx", xlsx_bytes(order_rows(po)))],
                message_id=kwargs.pop("message_id", f"<{po}@acme-retail.example>"), **kwargs)
