"""Notice templates: every kind in both locales, autoescaping, one-line subjects, clear errors."""

from pathlib import Path

import pytest

from orderbots.errors import ConfigError
from orderbots.render import Renderer, render_notice

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
LINES = [{"line_no": 1, "sku": "WID-100", "description": "Blue widget", "qty": "12", "unit": "EA",
          "unit_price": "2.50"},
         {"line_no": 2, "sku": "GAD-7", "description": "", "qty": "3", "unit": "BOX", "unit_price": None}]
PAYLOADS = {
    "order_received": {"po_number": "PO-77", "customer_name": "Acme Retail Ltd", "reply_to": {}},
    "order_confirmed": {"po_number": "PO-77", "customer_name": "Acme Retail Ltd", "erp_number": "SO-1042",
                        "lines": LINES, "currency": "EUR", "expected_ship_date": "2024-06-03"},
    "order_rejected": {"po_number": "PO-77", "customer_name": "Acme Retail Ltd",
                       "reasons": ["unknown item ZZZ-1", "credit limit exceeded"]},
    "clarification_needed": {"subject": "Order for June", "reason": "no order table found"},
    "ops_digest": {"period": "2024-06-01", "generated_at": "2024-06-01T08:00:00+00:00",
                   "held": [{"key": "C1001/PO-77", "customer_id": "C1001", "customer_name": "Acme",
                             "po_number": "PO-77", "state": "held", "updated_at": "2024-06-01T07:00",
                             "reasons": ["stock: only 3 of WID-100 available"],
                             "artifacts": ["runlog/artifacts/4/C1001_PO-77/attempt-1/page.png"]}],
                   "failed": [{"key": "C1002/PO-9", "customer_id": "C1002", "customer_name": "",
                               "po_number": "PO-9", "state": "failed", "updated_at": "2024-06-01T07:30",
                               "reasons": ["erp_entry failed after 5 attempts: timeout"], "artifacts": []}],
                   "undeliverable": [{"id": 17, "kind": "order_received", "recipient": "gone@nowhere.example",
                                      "order_key": "C1003/PO-1", "attempts": 1,
                                      "last_error": "Undeliverable: 550 no such user"}]},
}
# (kind, locale) -> texts that must appear in subject, text and html
EXPECTED = {
    ("order_received", "en"): (["Order received", "PO-77"], ["Dear Acme Retail Ltd", "PO-77"]),
    ("order_received", "zh-CN"): (["订单已收到", "PO-77"], ["尊敬的Acme Retail Ltd", "已收到您的采购单"]),
    ("order_confirmed", "en"): (["confirmed", "PO-77", "SO-1042"],
                                ["SO-1042", "2024-06-03", "WID-100", "Blue widget", "12", "2.50", "GAD-7", "EUR"]),
    ("order_confirmed", "zh-CN"): (["订单已确认", "SO-1042"],
                                   ["我方订单号为", "SO-1042", "预计发货日期", "2024-06-03", "WID-100", "GAD-7"]),
    ("order_rejected", "en"): (["cannot accept", "PO-77"], ["unknown item ZZZ-1", "credit limit exceeded"]),
    ("order_rejected", "zh-CN"): (["无法接受", "PO-77"], ["原因如下", "unknown item ZZZ-1", "credit limit exceeded"]),
    ("clarification_needed", "en"): (["could not read your order", "Order for June"],
                                     ["Order for June", "no order table found", "Dear customer"]),
    ("clarification_needed", "zh-CN"): (["无法读取您的订单", "Order for June"],
                                        ["Order for June", "原因：no order table found", "尊敬的客户"]),
    ("ops_digest", "en"): (["2024-06-01", "1 held", "1 failed", "1 undeliverable"],
                           ["C1001/PO-77", "stock: only 3 of WID-100 available",
                            "runlog/artifacts/4/C1001_PO-77/attempt-1/page.png", "C1002/PO-9",
                            "erp_entry failed after 5 attempts: timeout", "gone@nowhere.example",
                            "550 no such user", "orderbots resend NOTICE"]),
}
EXPECTED[("ops_digest", "zh-CN")] = EXPECTED[("ops_digest", "en")]  # ops mail falls back to English


@pytest.fixture(scope="module")
def renderer():
    return Renderer(TEMPLATES)


@pytest.mark.parametrize("kind, locale", sorted(EXPECTED))
def test_each_notice_renders_in_each_locale(renderer, kind, locale):
    out = renderer.render(kind, locale, PAYLOADS[kind])
    subject_parts, body_parts = EXPECTED[(kind, locale)]
    for part in subject_parts:
        assert part in out.subject
    for part in body_parts:
        assert part in out.text
        assert part in out.html
    assert "\n" not in out.subject
    assert out.html.lstrip().startswith("<!DOCTYPE html>")
    assert f'<html lang="{locale}">' in out.html


def test_digest_names_each_undeliverable_notice_for_resend(renderer):
    out = renderer.render("ops_digest", "en", PAYLOADS["ops_digest"])
    assert "notice 17: order_received to gone@nowhere.example" in out.text
    assert "<td>17</td><td>order_received</td>" in out.html
    queued_before_ids = {**PAYLOADS["ops_digest"],
                         "undeliverable": [{k: v for k, v in n.items() if k != "id"}
                                           for n in PAYLOADS["ops_digest"]["undeliverable"]]}
    assert "- order_received to gone@nowhere.example" in renderer.render("ops_digest", "en", queued_before_ids).text


def test_confirmation_lists_every_line_in_a_table(renderer):
    html = renderer.render("order_confirmed", "en", PAYLOADS["order_confirmed"]).html
    assert html.count("<tr>") == 1 + len(LINES)      # header + one row per line
    assert "Expected ship date: <strong>2024-06-03</strong>" in html


def test_missing_ship_date_reads_to_be_advised(renderer):
    payload = {**PAYLOADS["order_confirmed"], "expected_ship_date": None}
    assert "to be advised" in renderer.render("order_confirmed", "en", payload).text
    assert "待定" in renderer.render("order_confirmed", "zh-CN", payload).text


def test_html_is_autoescaped_and_text_is_not(renderer):
    hostile = '<script>alert("x")</script>'
    payload = {**PAYLOADS["order_rejected"], "customer_name": hostile, "reasons": [hostile]}
    out = renderer.render("order_rejected", "en", payload)
    assert "<script>" not in out.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in out.html
    assert hostile in out.text


def test_subject_from_customer_data_is_one_line(renderer):
    payload = {**PAYLOADS["clarification_needed"], "subject": "Hi\r\nBcc: victim@example.com\x00\u2028X"}
    out = renderer.render("clarification_needed", "en", payload)
    assert out.subject == "We could not read your order: Hi Bcc: victim@example.com X"
    assert '"Hi Bcc: victim@example.com X"' in out.text


@pytest.mark.parametrize("locale", ["fr", "", "de-DE"])
def test_unknown_locale_falls_back_to_english(renderer, locale):
    assert renderer.render("order_received", locale, PAYLOADS["order_received"]).subject.startswith("Order received")


def test_locale_with_underscore_is_understood(renderer):
    assert renderer.render("order_received", "zh_CN", PAYLOADS["order_received"]).subject.startswith("订单已收到")


def test_missing_template_is_a_config_error_naming_it(renderer):
    with pytest.raises(ConfigError, match=r"no template for notice kind 'order_lost'.*en/order_lost\.subject\.txt"):
        renderer.render("order_lost", "zh-CN", {})


def test_payload_missing_a_field_names_template_and_field(renderer):
    payload = {k: v for k, v in PAYLOADS["order_confirmed"].items() if k != "erp_number"}
    with pytest.raises(ConfigError, match=r"order_confirmed\.subject\.txt: 'erp_number' is undefined"):
        renderer.render("order_confirmed", "en", payload)


def test_syntax_error_names_file_and_line(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "broken.subject.txt").write_text("fine\n{% if %}\n")
    with pytest.raises(ConfigError, match=r"broken\.subject\.txt:2: "):
        render_notice("broken", "en", {}, tmp_path)


def test_locale_part_missing_falls_back_per_part(tmp_path):
    for locale, part, text in [("en", "subject.txt", "EN subject"), ("en", "txt", "EN text"),
                               ("en", "html", "<p>EN</p>"), ("zh-CN", "subject.txt", "中文主题")]:
        (tmp_path / locale).mkdir(exist_ok=True)
        (tmp_path / locale / f"note.{part}").write_text(text, encoding="utf-8")
    out = render_notice("note", "zh-CN", {}, tmp_path)
    assert (out.subject, out.text, out.html) == ("中文主题", "EN text", "<p>EN</p>")
