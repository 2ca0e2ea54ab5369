"""Hostile and real-world mail through the intake: every message ends imported or in Attention with a reason."""

import base64
import re
import io
import zipfile
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from orderbots import config
from orderbots.bot import run_bot
from tests.plugins.dovecot import ACME, mail, order_rows, write_imap_config, xlsx_bytes, xlsx_order_mail
from tests.plugins.home import corpus


def intake(settings):
    return run_bot("email_intake", settings)


def outcomes(settings) -> dict[str, str]:
    with settings.open_store() as store:
        return {r["ref"]: r["outcome"] for r in store.db.execute("SELECT ref, outcome FROM sources WHERE kind = 'email'")}


def imported(settings) -> dict:
    with settings.open_store() as store:
        return {item.order.po_number: item for item in store.items()}


def zip_bomb_xlsx() -> bytes:
    """A real xlsx whose sheet part unpacks to 60 MB of blanks (~60 kB packed)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx_bytes(order_rows("BOMB")))) as good, \
            zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bomb:
        for info in good.infolist():
            data = good.read(info)
            if info.filename.endswith("sheet1.xml"):
                data = data.replace(b"<sheetData>", b"<sheetData>" + b" " * 60_000_000)
            bomb.writestr(info.filename, data)
    return buffer.getvalue()


def test_attachment_name_forms_and_attached_eml_are_read(dovecot, imap_settings):
    gb_name = "=?GB2312?B?" + base64.b64encode("订单.xlsx".encode("gb2312")).decode() + "?="
    msg = EmailMessage(policy=SMTP)
    msg["From"], msg["Subject"], msg["Message-ID"] = ACME, "orders", "<names@acme-retail.example>"
    msg.set_content("three orders attached")
    msg.add_attachment(xlsx_bytes(order_rows("GB-1")), maintype="application", subtype="octet-stream",
                       filename="x.xlsx")
    msg.add_attachment(xlsx_bytes(order_rows("RFC2231-1")), maintype="application", subtype="octet-stream",
                       filename=("utf-8", "", "bestellung-ä.xlsx"))
    inner = mail(attachments=[("inner.xlsx", xlsx_bytes(order_rows("FWD-1")))], message_id="<inner@x>")
    msg.add_attachment(inner, maintype="application", subtype="octet-stream", filename="forwarded.eml")
    raw = msg.as_bytes()
    raw = raw.replace(b'filename="x.xlsx"', f'filename="{gb_name}"'.encode())  # Foxmail / Outlook CN style

    dovecot.append(raw)
    intake(imap_settings)

    refs = {po: item.order.source_ref for po, item in imported(imap_settings).items()}
    assert refs["GB-1"].startswith("email:<names@acme-retail.example>#订单.xlsx#")
    assert refs["RFC2231-1"].startswith("email:<names@acme-retail.example>#bestellung-ä.xlsx#")
    assert refs["FWD-1"].startswith("email:<names@acme-retail.example>#forwarded.eml/inner.xlsx#")


def test_duplicate_attachment_names_are_both_imported(dovecot, imap_settings):
    dovecot.append(mail(attachments=[("order.xlsx", xlsx_bytes(order_rows("D-1"))),
                                     ("order.xlsx", xlsx_bytes(order_rows("D-2")))]))
    intake(imap_settings)
    refs = sorted(item.order.source_ref.split("#")[1] for item in imported(imap_settings).values())
    assert refs == ["order (2).xlsx", "order.xlsx"]


def test_oversized_message_is_not_downloaded_and_goes_to_attention(home, dovecot, monkeypatch):
    write_imap_config(home, dovecot, monkeypatch, max_message_mb=1)
    dovecot.append(mail(attachments=[("big.csv", b"PO Number,SKU,Qty\n" + b"P,SKU-1001,1\n" * 150_000)],
                        message_id="<big@acme-retail.example>"))
    settings = config.load(home)
    intake(settings)
    reason = outcomes(settings)["email:<big@acme-retail.example>"]
    assert re.match(r"attention: message is 2\.\d MB, over the 1 MB limit \(imap.max_message_mb\)", reason)
    assert dovecot.count("Attention") == 1 and imported(settings) == {}


def test_zip_bomb_attachment_gives_a_reason_and_other_orders_are_held(dovecot, imap_settings):
    dovecot.append(mail(attachments=[("bomb.xlsx", zip_bomb_xlsx())], message_id="<bomb@acme-retail.example>"))
    dovecot.append(mail(attachments=[("bomb.xlsx", zip_bomb_xlsx()), ("ok.xlsx", xlsx_bytes(order_rows("OK-1")))],
                        message_id="<bomb2@acme-retail.example>"))

    intake(imap_settings)

    reason = outcomes(imap_settings)["email:<bomb@acme-retail.example>"]
    assert reason.startswith("attention: no readable order") and "bomb.xlsx" in reason and "expands" in reason
    item = imported(imap_settings)["OK-1"]
    assert item.state == "held"
    assert any(f.code == "unread_content" and "bomb.xlsx" in f.text() for f in item.findings)


def test_broken_mime_and_binary_garbage_go_to_attention(dovecot, imap_settings):
    broken = (b"From: orders@acme-retail.example\r\nMessage-ID: <broken@acme-retail.example>\r\n"
              b"Content-Type: multipart/mixed; boundary=\"nope\"\r\n\r\n--other\r\n"
              b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n")
    dovecot.append(broken)
    dovecot.deliver([b"\x00\x01\x02 binary junk \xff\xfe" * 100])

    intake(imap_settings)

    reasons = outcomes(imap_settings)
    assert reasons["email:<broken@acme-retail.example>"].startswith("attention: no readable order")
    assert any(r == "attention: this is not an email message (no mail headers found)" for r in reasons.values())
    assert dovecot.count("Attention") == 2 and dovecot.count("INBOX") == 0


def test_crlf_in_names_and_script_in_fields_stay_inert(dovecot, imap_settings):
    rows = order_rows("XSS-1", ship=["<script>alert(1)</script>", "=HYPERLINK(\"http://evil\")", "London",
                                     "EC1A 1AA", "GB"])
    raw = mail(sender="PLACEHOLDER <buyer@stranger.example>", attachments=[("o.xlsx", xlsx_bytes(rows))])
    raw = raw.replace(b"PLACEHOLDER", b"=?utf-8?q?Evil=0D=0ABcc:_victim@example.com?=")

    dovecot.append(raw)
    intake(imap_settings)

    item = imported(imap_settings)["XSS-1"]
    assert item.order.ship_to.name == "<script>alert(1)</script>"  # kept as text; templates escape it
    assert item.order.customer.name == "Evil Bcc: victim@example.com"  # one line, no header break
    codes = {f.code for f in item.findings}
    assert {"unknown_sender", "formula_in_cell"} <= codes


def test_deeply_nested_attached_mail_is_not_followed_forever(dovecot, imap_settings):
    raw = mail(attachments=[("o.xlsx", xlsx_bytes(order_rows("DEEP-1")))], message_id="<deep0@x>")
    for depth in range(1, 6):
        msg = EmailMessage()
        msg["From"], msg["Message-ID"] = ACME, f"<deep{depth}@acme-retail.example>"
        msg.set_content("fwd")
        msg.add_attachment(raw, maintype="application", subtype="octet-stream", filename=f"fwd{depth}.eml")
        raw = msg.as_bytes()
    dovecot.append(raw)
    intake(imap_settings)
    reason = outcomes(imap_settings)["email:<deep5@acme-retail.example>"]
    assert "nested deeper than 3 levels" in reason


@pytest.mark.timeout(120)
def test_every_corpus_mail_ends_imported_or_in_attention_with_a_reason(dovecot, imap_settings):
    mails = sorted(corpus("email").iterdir())
    assert len(mails) == 24
    dovecot.deliver(path.read_bytes() for path in mails)

    run = intake(imap_settings)

    assert dovecot.count("INBOX") == 0
    assert dovecot.count("Attention") + dovecot.count("Processed") == len(mails)
    reasons = outcomes(imap_settings)
    # the two letters-*-multipart files are one message in two encodings (GB18030/base64, GBK/QP): the
    # second is recognised as already read; the plain-text one reuses their Message-ID and is read on its own
    assert len(reasons) == len(mails) - 1 and run.counts["already_imported"] == 1
    assert sum(ref.startswith("email:<Message-Id-1@example.com>") for ref in reasons) == 2
    for ref, outcome in reasons.items():
        assert outcome == "processed" or (outcome.startswith("attention: ") and len(outcome) > 30), (ref, outcome)
    assert any("Outlook .msg" in o for o in reasons.values())
    assert run.counts["attention"] + run.counts["processed"] == len(mails) - 1
