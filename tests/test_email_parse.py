"""Reading real-world mail and typed orders (no server): orderbots.mailparse and orderbots.mailtext."""

import pytest

from orderbots import mailparse, mailtext
from orderbots.tabular import DEFAULT_ALIASES
from tests.plugins.home import corpus


def parsed(name: str) -> mailparse.ParsedMail:
    return mailparse.parse(corpus("email", name).read_bytes())


def test_non_rfc_gb2312_attachment_name_and_sender_name():
    mail = parsed("osst-users-2019-06-13-gb2312-attachment-name.eml")
    assert [a.filename for a in mail.attachments] == ["翟于运.gif"]
    assert mail.sender_name == "河南中奥毯业销售部"
    assert mail.automated  # a mailing list: never answered automatically


def test_charset_label_that_lies_is_survived():
    mail = parsed("mailparser-mail_test_12.eml")  # says GB2312, is UTF-8
    assert mail.bodies[0].text.startswith("你好！我公司可代开各类增值税发票")
    assert mail.subject == "代开各地增值税发票"


def test_gbk_quoted_printable_and_gb18030_base64_read_alike():
    qp = parsed("letters-test_chinese_multipart_mixed_gbk_over_quoted-printable.eml")
    b64 = parsed("letters-test_chinese_multipart_mixed_gb18030_over_base64.eml")
    assert qp.bodies[0].text.strip() == b64.bodies[0].text.strip() and "石室诗士施氏" in qp.bodies[0].text
    assert qp.fingerprint == b64.fingerprint  # the same message, re-encoded


@pytest.mark.parametrize("name, address, display", [
    ("mailparser-mail_test_18.eml", "comma.name@example.com", "LastßlName, FirstName"),
    ("mailparser-mail_test_19.eml", "bob@example.com", "alice@example.com"),
    ("mailparser-mail_test_17.eml", "notificaccion-clientes@bbva.mx", "notificaccion-clientes@bbva.mx"),
])
def test_tricky_sender_headers(name, address, display):
    mail = parsed(name)
    assert (mail.sender_email, mail.sender_name) == (address, display)


def test_rfc2231_continuations_raw_8bit_and_duplicate_names():
    assert parsed("mailparser-mail_test_5.eml").attachments[0].filename.startswith("mailingassets_")
    assert [a.filename for a in parsed("mikelmail-attachment_nonascii_filename.eml").attachments] == ["ciële.txt"]
    assert [a.label for a in parsed("cpython-msg_44.txt").attachments] == ["msg.txt", "msg (2).txt"]


def test_forwarded_message_is_read_inside():
    mail = parsed("mikelmail-attachment_msg_from_outlook.eml")
    assert [b.label for b in mail.bodies if not b.html] == ["body", "attached.eml/body"]


def test_outlook_msg_file_is_named_as_such():
    mail = parsed("mailparser-mail_outlook_1.msg")
    assert "Outlook .msg" in mail.not_an_email


def test_subject_with_encoded_crlf_becomes_one_line():
    raw = b"From: a@b.example\r\nSubject: =?utf-8?q?Hi=0D=0ABcc:_x@y.example?=\r\n\r\nbody\r\n"
    assert mailparse.parse(raw).subject == "Hi Bcc: x@y.example"


@pytest.mark.parametrize("table", [
    "SKU;Qty;Price\nSKU-1001;5;8.50\nSKU-1002;1;14.90",
    "SKU\tQty\tPrice\nSKU-1001\t5\t8.50\nSKU-1002\t1\t14.90",
    "| SKU | Qty | Price |\n|-----|-----|-------|\n| SKU-1001 | 5 | 8.50 |\n| SKU-1002 | 1 | 14.90 |",
    "SKU       Qty   Price\nSKU-1001  5     8.50\nSKU-1002  1     14.90",
])
def test_typed_line_tables_in_every_layout(table):
    text = f"Hi,\n\nPO: 4711\nRequested date: 2031-01-02\n\n{table}\n\n> PO: 999 (quoted, ignored)\nThanks\n"
    [found] = mailtext.text_tables(text, DEFAULT_ALIASES)
    rows = [r for r in found.rows if r]
    assert rows[0][:2] == ["PO", "Requested date"]
    assert [r[2:4] for r in rows[1:]] == [["SKU-1001", "5"], ["SKU-1002", "1"]]
    assert all(r[0] == "4711" for r in rows[1:])


def test_prose_without_a_line_table_gives_nothing():
    assert mailtext.text_tables("PO: 12\nPlease send the same as last week, qty as usual.", DEFAULT_ALIASES) == []


def test_html_table_with_key_value_block_and_script_dropped():
    html = ("<script>var PO = 'x';</script><table><tr><td>PO</td><td>H-9</td></tr></table>"
            "<table><tr><th>Item</th><th>Quantity</th></tr><tr><td>SKU-1003</td><td>2</td></tr></table>")
    [found] = mailtext.html_tables(html, DEFAULT_ALIASES)
    assert found.rows == [["PO", "Item", "Quantity"], ["H-9", "SKU-1003", "2"]]
