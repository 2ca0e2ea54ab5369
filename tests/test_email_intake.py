"""Email intake against a real Dovecot: what a customer's mail becomes, and where the message goes."""

import base64
import json
from email.message import EmailMessage
from pathlib import Path

import pytest

from orderbots import config
from orderbots.bot import run_bot
from orderbots.errors import ConfigError
from tests.plugins.dovecot import (ACME, CAPABILITIES_WITHOUT_MOVE, PASSWORD_ENV, mail, order_rows,
                                   write_imap_config, xlsx_bytes, xlsx_order_mail)


def intake(settings, **args):
    return run_bot("email_intake", settings, **args)


def orders(settings) -> dict:
    with settings.open_store() as store:
        return {item.order.po_number: item for item in store.items()}


def sources(settings) -> dict[str, dict]:
    with settings.open_store() as store:
        return {r["ref"]: dict(r) for r in store.db.execute("SELECT * FROM sources")}


def outbox(settings) -> list[dict]:
    with settings.open_store() as store:
        return [{**dict(r), "payload": json.loads(r["payload_json"])} for r in store.db.execute("SELECT * FROM outbox")]


def test_xlsx_order_is_imported_once_and_message_moved_unread(dovecot, imap_settings):
    dovecot.append(xlsx_order_mail("PO-1", subject="Order PO-1"))

    run = intake(imap_settings)

    item = orders(imap_settings)["PO-1"]
    order = item.order
    assert order.channel == "email"
    assert order.customer.id == "C1001"
    assert order.source_ref == "email:<PO-1@acme-retail.example>#order-PO-1.xlsx#Orders!2-2"
    assert [(l.sku, str(l.qty)) for l in order.lines] == [("SKU-1001", "10")]
    assert order.reply_to == {"message_id": "<PO-1@acme-retail.example>", "references": ""}
    assert Path(order.raw_path).read_bytes().startswith(b"From: ")
    assert Path(order.raw_path).parent == imap_settings.runlog_dir / "raw" / "email"
    assert item.state != "received"  # validated right after import
    assert sources(imap_settings)["email:<PO-1@acme-retail.example>"]["outcome"] == "processed"
    assert dovecot.count("INBOX") == 0
    assert [b"\\Seen" in f for f in dovecot.flags("Processed").values()] == [False]
    assert run.counts["processed"] == 1
    assert [n["kind"] for n in outbox(imap_settings)] == ["order_received"]

    dovecot.append(xlsx_order_mail("PO-1", subject="Order PO-1"))  # the same mail delivered again
    intake(imap_settings)
    assert len(orders(imap_settings)) == 1
    assert dovecot.count("Processed") == 2


def test_order_typed_in_the_body_is_understood(dovecot, imap_settings):
    body = ("Hello,\n\nplease deliver:\n\nPO: T-77\nShip to: Acme Retail Ltd\nAddress: 1 High Street\n"
            "City: London\nPostcode: EC1A 1AA\nCountry: GB\nRequested date: 2031-05-01\n\n"
            "SKU       | Qty | Price\n----------|-----|------\nSKU-1001  | 12  | 8.50\nSKU-1002  | 3   | 14.90\n\n"
            "Regards,\nJo\n")
    dovecot.append(mail(body=body, message_id="<t77@acme-retail.example>"))

    intake(imap_settings)

    order = orders(imap_settings)["T-77"].order
    assert [(l.sku, str(l.qty), str(l.unit_price)) for l in order.lines] == [
        ("SKU-1001", "12", "8.50"), ("SKU-1002", "3", "14.90")]
    assert order.requested_date.isoformat() == "2031-05-01"
    assert order.ship_to.city == "London"
    assert order.source_ref.startswith("email:<t77@acme-retail.example>#body#")


def test_html_table_order_and_gb2312_mail(dovecot, imap_settings):
    html = ("<html><head><script>alert('x')</script></head><body><p>订单号：CN-1</p>"
            "<table><tr><th>物料编码</th><th>数量</th><th>单价</th></tr>"
            "<tr><td>SKU-3001</td><td>100</td><td>22.00</td></tr></table></body></html>")
    def gb2312_word(text):
        return "=?GB2312?B?" + base64.b64encode(text.encode("gb2312")).decode() + "?="

    msg = EmailMessage()
    msg["From"] = f"{gb2312_word('华联采购')} <caigou@hualian-trade.example>"
    msg["Subject"] = gb2312_word("订单")
    msg["Message-ID"] = "<cn-1@hualian-trade.example>"
    msg.set_content(html.encode("gb2312"), maintype="text", subtype="html", cte="base64")
    msg.replace_header("Content-Type", 'text/html; charset="GB2312"')

    dovecot.append(msg.as_bytes())
    intake(imap_settings)

    order = orders(imap_settings)["CN-1"].order
    assert order.customer.id == "C1003"
    assert [(l.sku, str(l.qty)) for l in order.lines] == [("SKU-3001", "100")]
    assert sources(imap_settings)["email:<cn-1@hualian-trade.example>"]["name"] == "订单"


def test_unknown_sender_orders_are_held(dovecot, imap_settings):
    dovecot.append(xlsx_order_mail("PO-U", sender="Somebody <buyer@stranger.example>"))

    intake(imap_settings)

    item = orders(imap_settings)["PO-U"]
    assert item.state == "held"
    assert "unknown_sender" in [f.code for f in item.findings]
    assert item.order.customer.email == "buyer@stranger.example"
    assert outbox(imap_settings) == []  # no "we have your order" to an unknown address
    assert dovecot.count("Processed") == 1


def test_known_sender_ordering_for_another_customer_is_held(dovecot, imap_settings):
    rows = [["PO Number", "Customer ID", "SKU", "Qty"], ["PO-X", "C1002", "SKU-1001", 1]]
    dovecot.append(mail(attachments=[("x.xlsx", xlsx_bytes(rows))]))

    intake(imap_settings)

    item = orders(imap_settings)["PO-X"]
    assert item.order.customer.id == "C1002"
    assert any(f.code == "unknown_sender" and "C1002" in f.text() for f in item.findings)


def test_unreadable_email_goes_to_attention_and_sender_is_asked(dovecot, imap_settings):
    raw = mail(subject="PLACEHOLDER", body="Same as last time please!", message_id="<vague@acme-retail.example>")
    # an encoded word hiding CR LF and a header: must never reach a header unsanitised
    dovecot.append(raw.replace(b"PLACEHOLDER", b"=?utf-8?q?Bitte_liefern=0D=0ABcc:_victim@example.com?="))

    run = intake(imap_settings)

    assert orders(imap_settings) == {}
    assert dovecot.count("Attention") == 1 and dovecot.count("INBOX") == 0
    outcome = sources(imap_settings)["email:<vague@acme-retail.example>"]["outcome"]
    assert outcome.startswith("attention: no readable order")
    [notice] = outbox(imap_settings)
    assert notice["kind"] == "clarification_needed"
    assert notice["recipient"] == ACME
    assert notice["dedupe_key"] == "clarify:<vague@acme-retail.example>"
    assert notice["payload"]["reply_to"]["message_id"] == "<vague@acme-retail.example>"
    assert "\n" not in notice["payload"]["subject"] and "\r" not in notice["payload"]["subject"]
    assert notice["payload"]["reason"]
    assert run.counts["attention"] == 1


def test_bounce_is_not_answered(dovecot, imap_settings):
    dovecot.append(mail(sender="MAILER-DAEMON@mx.example", subject="Undelivered Mail",
                        headers={"Auto-Submitted": "auto-replied"}))
    intake(imap_settings)
    assert dovecot.count("Attention") == 1
    assert outbox(imap_settings) == []


def test_copy_expunge_path_when_server_lacks_move(dovecot, imap_settings):
    dovecot.capabilities = CAPABILITIES_WITHOUT_MOVE
    dovecot.restart()
    for n in range(5):
        dovecot.append(xlsx_order_mail(f"PO-C{n}"))
    dovecot.append(mail(body="hello", message_id="<nothing@acme-retail.example>"))

    intake(imap_settings)

    assert dovecot.count("INBOX") == 0
    assert dovecot.count("Processed") == 5 and dovecot.count("Attention") == 1
    assert all(b"\\Deleted" not in f for f in dovecot.flags("Processed").values())
    assert len(orders(imap_settings)) == 5


def test_missing_password_variable_is_a_config_error(home, dovecot, monkeypatch):
    write_imap_config(home, dovecot, monkeypatch)
    monkeypatch.delenv(PASSWORD_ENV)
    with pytest.raises(ConfigError, match=PASSWORD_ENV):
        intake(config.load(home))


def test_wrong_password_is_reported_without_the_secret(home, dovecot, monkeypatch):
    write_imap_config(home, dovecot, monkeypatch)
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password-s3cr3t")
    with pytest.raises(ConfigError) as err:
        intake(config.load(home))
    assert "refused the login" in str(err.value)
    assert "s3cr3t" not in str(err.value) and "s3cr3t" not in repr(err.value.__cause__)


def test_unknown_config_key_names_file_and_line(home, dovecot, monkeypatch):
    write_imap_config(home, dovecot, monkeypatch, batchsize=5)
    with pytest.raises(ConfigError, match=r"orderbots.yaml:\d+: unknown key\(s\) batchsize"):
        intake(config.load(home))


def test_two_different_mails_reusing_one_message_id_are_both_imported(dovecot, imap_settings):
    dovecot.append(xlsx_order_mail("R-1", message_id="<reused@acme-retail.example>"))
    dovecot.append(xlsx_order_mail("R-2", message_id="<reused@acme-retail.example>"))

    intake(imap_settings)

    refs = sorted(item.order.source_ref.split("#")[0] for item in orders(imap_settings).values())
    assert len(refs) == 2
    assert refs[0] == "email:<reused@acme-retail.example>"
    assert refs[1].startswith("email:<reused@acme-retail.example>~")


def test_plain_imap_to_a_remote_host_is_refused(home, dovecot, monkeypatch):
    write_imap_config(home, dovecot, monkeypatch)
    text = (home / "orderbots.yaml").read_text().replace("host: 127.0.0.1", "host: mail.example.com")
    (home / "orderbots.yaml").write_text(text)
    with pytest.raises(ConfigError, match="unencrypted"):
        intake(config.load(home))
