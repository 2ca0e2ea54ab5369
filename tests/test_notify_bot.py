"""The notifier and ops digest bots through a real store and a real aiosmtpd server."""

import threading
import time
from decimal import Decimal

import pytest

from orderbots import notices, states
from orderbots.bot import run_bot
from orderbots.errors import ConfigError
from orderbots.model import Customer, Finding, Order, OrderLine
from orderbots.notices import Notice
from orderbots.store import Store
from tests.plugins.smtp import configure

ACME = Customer("C1001", "Acme Retail Ltd", "orders@acme-retail.example", "en")
HUALIAN = Customer("C1003", "上海华联贸易有限公司", "caigou@hualian-trade.example", "zh-CN")


def make_order(po: str, customer: Customer = ACME, **extra) -> Order:
    return Order("email", f"email:<{po}@customer.example>#body", customer, po,
                 [OrderLine(1, "WID-100", Decimal("12"), "Blue widget", "EA", Decimal("2.50"))], currency="EUR",
                 reply_to={"message_id": f"<{po}@customer.example>", "references": "<thread@customer.example>"},
                 **extra)


def add_received(store: Store, po: str, customer: Customer = ACME) -> str:
    order = make_order(po, customer)
    return store.add_order(order, notices=notices.received(order, order.key)).key


def confirmation(order: Order, key: str) -> list[Notice]:
    """The confirmation notice, via the builder of orderbots.notices when it exists."""
    if hasattr(notices, "confirmed"):
        return notices.confirmed(order, key, "SO-5001", "2024-06-03")
    payload = {"po_number": order.po_number, "customer_name": order.customer.name, "reply_to": order.reply_to,
               "erp_number": "SO-5001", "expected_ship_date": "2024-06-03", "currency": order.currency,
               "lines": [{"line_no": l.line_no, "sku": l.sku, "qty": str(l.qty)} for l in order.lines]}
    return [Notice("order_confirmed", order.customer.email, order.customer.locale, payload, key)]


def outbox(store: Store) -> list[dict]:
    return [dict(r) for r in store.db.execute("SELECT * FROM outbox ORDER BY id")]


def test_received_notices_are_delivered_and_marked_sent(notify_settings, store, smtp_server):
    keys = [add_received(store, f"PO-{i}") for i in range(3)] + [add_received(store, "PO-CN", HUALIAN)]
    run = run_bot("notifier", notify_settings)
    assert run.counts == {"sent": 4}
    assert all(row["sent_at"] for row in outbox(store))
    by_recipient = {r.rcpt_tos[0]: r.message for r in smtp_server.received}
    assert set(by_recipient) == {ACME.email, HUALIAN.email}
    assert by_recipient[HUALIAN.email]["Subject"] == "订单已收到：采购单 PO-CN"
    assert by_recipient[HUALIAN.email]["To"].addresses[0].display_name == HUALIAN.name
    assert len(keys) == 4 and len(smtp_server.messages) == 4
    assert run_bot("notifier", notify_settings).counts == {}            # nothing left to send
    assert len(smtp_server.messages) == 4


def test_confirmation_replies_in_the_customer_thread(notify_settings, store, smtp_server):
    order = make_order("PO-T")
    key = store.add_order(order).key
    store.transition(key, states.VALIDATED, actor="test")
    store.transition(key, states.IN_ERP, actor="test", erp_number="SO-5001", notices=confirmation(order, key))
    run_bot("notifier", notify_settings)
    [msg] = smtp_server.messages
    assert msg["In-Reply-To"] == "<PO-T@customer.example>"
    assert msg["References"] == "<thread@customer.example> <PO-T@customer.example>"
    assert "SO-5001" in msg["Subject"]
    assert "2024-06-03" in msg.get_body(("plain",)).get_content()
    assert "WID-100" in msg.get_body(("html",)).get_content()


def test_smtp_down_then_up_delivers_every_notice_exactly_once(notify_settings, store, smtp_server):
    for i in range(20):
        add_received(store, f"PO-{i}")
    smtp_server.stop()
    down = run_bot("notifier", notify_settings)
    assert down.counts == {"retry": 1}                  # the run stops at the first refused connection
    rows = outbox(store)
    assert not any(r["sent_at"] for r in rows)
    assert "SmtpUnavailable" in rows[0]["last_error"] and rows[0]["attempts"] == 1
    smtp_server.start()
    up = run_bot("notifier", notify_settings)
    assert up.counts == {"sent": 20}
    counts = smtp_server.count_by_message_id()
    assert len(counts) == 20 and set(counts.values()) == {1}
    assert sorted(m["To"].addresses[0].addr_spec for m in smtp_server.messages) == [ACME.email] * 20
    assert all(r["sent_at"] and r["last_error"] is None for r in outbox(store))
    run_bot("notifier", notify_settings)
    assert len(smtp_server.messages) == 20


def test_an_outage_never_gives_a_notice_up(notify_settings, store, smtp_server):
    add_received(store, "PO-1")
    smtp_server.stop()
    for _ in range(5):                                    # max_attempts is 3 in this home
        run_bot("notifier", notify_settings)
    [row] = outbox(store)
    assert row["attempts"] == 5 and store.notices("undeliverable") == []
    smtp_server.start()
    assert run_bot("notifier", notify_settings).counts == {"sent": 1}


def test_failed_send_is_retried_with_exponential_backoff(home, store, smtp_server):
    settings = configure(home, smtp={"host": "127.0.0.1", "port": smtp_server.port,
                                     "from_address": "orders@shop.example"},
                         notifier={"backoff": 30, "max_backoff": 100, "max_attempts": 5})
    add_received(store, "PO-1")
    smtp_server.refuse_rcpt = "452 4.2.2 mailbox full, try later"
    delays = []
    for _ in range(3):
        before = time.time()
        assert run_bot("notifier", settings).counts == {"retry": 1}
        [row] = outbox(store)
        delays.append(row["next_attempt_at"] - before)
        store.db.execute("UPDATE outbox SET next_attempt_at = 0")       # let the backoff time pass
    assert [round(d, -1) for d in delays] == [30, 60, 100]               # doubling, capped at max_backoff
    assert row["attempts"] == 3 and "452 4.2.2 mailbox full" in row["last_error"]
    smtp_server.refuse_rcpt = None
    assert run_bot("notifier", settings).counts == {"sent": 1}


def test_not_yet_due_notice_waits(home, store, smtp_server):
    settings = configure(home, smtp={"port": smtp_server.port, "from_address": "orders@shop.example"},
                         notifier={"backoff": 600})
    add_received(store, "PO-1")
    smtp_server.refuse_rcpt = "451 4.3.0 later"
    run_bot("notifier", settings)
    smtp_server.refuse_rcpt = None
    assert run_bot("notifier", settings).counts == {}
    assert smtp_server.messages == []


def test_transient_failures_give_up_after_max_attempts(notify_settings, store, smtp_server):
    add_received(store, "PO-1")
    smtp_server.refuse_data = "451 4.3.0 local error"
    outcomes = [run_bot("notifier", notify_settings).counts for _ in range(4)]
    assert outcomes == [{"retry": 1}, {"retry": 1}, {"undeliverable": 1}, {}]
    [row] = store.notices("undeliverable")
    assert row["attempts"] == 3 and "451 4.3.0 local error" in row["last_error"]


def test_permanent_refusal_is_given_up_at_once_and_others_still_go(notify_settings, store, smtp_server):
    add_received(store, "PO-1")
    smtp_server.refuse_rcpt = "550 5.1.1 no such user"
    assert run_bot("notifier", notify_settings).counts == {"undeliverable": 1}
    smtp_server.refuse_rcpt = None
    add_received(store, "PO-2")
    assert run_bot("notifier", notify_settings).counts == {"sent": 1}
    [gone] = store.notices("undeliverable")
    assert gone["order_key"] == "C1001/PO-1" and "550 5.1.1 no such user" in gone["last_error"]


def test_invalid_recipient_is_undeliverable_without_contacting_the_server(notify_settings, store, smtp_server):
    store.enqueue([Notice("clarification_needed", "someone@example.com\r\nBcc: victim@evil.example", "en",
                          {"subject": "hi", "reason": "no order found"}, dedupe_key="clarify:<x@y>")])
    assert run_bot("notifier", notify_settings).counts == {"undeliverable": 1}
    assert smtp_server.messages == []
    assert "not a valid email address" in store.notices("undeliverable")[0]["last_error"]


def test_missing_template_is_retried_and_does_not_block_others(notify_settings, store, smtp_server):
    store.enqueue([Notice("order_lost", "orders@acme-retail.example", "en", {}, dedupe_key="lost:1")])
    add_received(store, "PO-1")
    assert run_bot("notifier", notify_settings).counts == {"retry": 1, "sent": 1}
    lost = outbox(store)[0]
    assert "no template for notice kind 'order_lost'" in lost["last_error"]


def test_clarification_reply_with_hostile_subject(notify_settings, store, smtp_server):
    store.enqueue([Notice("clarification_needed", "buyer@customer.example", "zh-CN",
                          {"subject": "订单\r\nBcc: victim@evil.example", "reason": "<script>x</script>",
                           "reply_to": {"message_id": "<orig@customer.example>", "references": ""}},
                          dedupe_key="clarify:<orig@customer.example>")])
    run_bot("notifier", notify_settings)
    [received] = smtp_server.received
    msg = received.message
    assert received.rcpt_tos == ["buyer@customer.example"] and msg["Bcc"] is None
    assert msg["Subject"] == "我们无法读取您的订单：订单 Bcc: victim@evil.example"
    assert msg["In-Reply-To"] == "<orig@customer.example>"
    assert "&lt;script&gt;x&lt;/script&gt;" in msg.get_body(("html",)).get_content()


def test_crash_after_acceptance_resends_with_the_same_message_id(home, store, smtp_server, monkeypatch):
    """The one duplicate window (accepted, not yet marked sent) is bounded and recognisable."""
    settings = configure(home, smtp={"port": smtp_server.port, "from_address": "orders@shop.example"},
                         notifier={"lease": 0})
    add_received(store, "PO-1")
    add_received(store, "PO-2")

    def crash(self, notice_id):
        raise KeyboardInterrupt("killed between acceptance and mark_sent")

    with monkeypatch.context() as patch:
        patch.setattr(Store, "mark_sent", crash)
        with pytest.raises(KeyboardInterrupt):
            run_bot("notifier", settings)
    assert len(smtp_server.messages) == 1
    assert run_bot("notifier", settings).counts == {"sent": 2}
    counts = smtp_server.count_by_message_id()
    assert sorted(counts.values()) == [1, 2]                # PO-1 twice (same Message-ID), PO-2 once


def test_crash_before_sending_delays_but_does_not_duplicate(home, store, smtp_server, monkeypatch):
    settings = configure(home, smtp={"port": smtp_server.port, "from_address": "orders@shop.example"},
                         notifier={"lease": 0})
    add_received(store, "PO-1")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed while rendering")

    with monkeypatch.context() as patch:
        patch.setattr("bots.notifier.compose", crash)
        with pytest.raises(KeyboardInterrupt):
            run_bot("notifier", settings)
    assert run_bot("notifier", settings).counts == {"sent": 1}
    assert len(smtp_server.messages) == 1


def test_two_notifiers_at_once_send_each_notice_once(notify_settings, store, smtp_server):
    for i in range(60):
        add_received(store, f"PO-{i}")
    runs, errors = [], []

    def notifier():
        try:
            runs.append(run_bot("notifier", notify_settings))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=notifier) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(r.counts["sent"] for r in runs) == 60
    counts = smtp_server.count_by_message_id()
    assert len(counts) == 60 and set(counts.values()) == {1}


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_login_refused_stops_the_run_without_charging_notices(home, store, tls_files, monkeypatch):
    from tests.plugins.smtp import SmtpServer
    server = SmtpServer(tls=tls_files, login=("mailer", "right")).start()
    try:
        monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong")
        settings = configure(home, smtp={"port": server.port, "security": "starttls", "user": "mailer",
                                         "password_env": "TEST_SMTP_PASSWORD", "ca_file": str(tls_files[0]),
                                         "from_address": "orders@shop.example"})
        add_received(store, "PO-1")
        with pytest.raises(ConfigError, match="refused the login"):
            run_bot("notifier", settings)
        assert outbox(store)[0]["attempts"] == 0
        monkeypatch.setenv("TEST_SMTP_PASSWORD", "right")
        store.db.execute("UPDATE outbox SET next_attempt_at = 0")      # the claim's lease has passed
        assert run_bot("notifier", settings).counts == {"sent": 1}
    finally:
        server.stop()


def test_missing_password_variable_is_named(home, store, smtp_server, monkeypatch):
    monkeypatch.delenv("TEST_SMTP_PASSWORD", raising=False)
    settings = configure(home, smtp={"port": smtp_server.port, "from_address": "orders@shop.example",
                                     "user": "mailer", "password_env": "TEST_SMTP_PASSWORD"})
    with pytest.raises(ConfigError, match="TEST_SMTP_PASSWORD .SMTP password. is not set"):
        run_bot("notifier", settings)


# -- ops digest ---------------------------------------------------------------

@pytest.fixture
def problem_orders(notify_settings, store):
    """One held order with a finding and artifacts, one failed order, one undeliverable notice."""
    held = store.add_order(make_order("PO-H")).key
    store.transition(held, states.HELD, actor="test", reason="stock",
                     findings=[Finding("stock", "hold", {"en": "only 3 of WID-100 available"})])
    failed = store.add_order(make_order("PO-F")).key
    store.transition(failed, states.FAILED, actor="test", resume_step="erp_entry", attempts=5,
                     last_error="ApplicationError: ERP timed out")
    artifacts = notify_settings.artifacts_dir
    for run_id, name in [("3", "attempt-1/page.png"), ("5", "attempt-2/trace.zip")]:
        path = artifacts / run_id / "C1001_PO-F" / name
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")
    store.enqueue([Notice("order_received", "gone@nowhere.example", "en",
                          {"po_number": "PO-X", "customer_name": "Gone"}, dedupe_key="gone")])
    store.mark_send_failed(outbox(store)[-1]["id"], "Undeliverable: 550 no such user", float("inf"))
    return held, failed


def test_digest_lists_held_failed_and_undeliverable(notify_settings, store, smtp_server, problem_orders):
    assert run_bot("ops_digest", notify_settings).counts == {"digest": 1, "held": 1, "failed": 1,
                                                             "undeliverable": 1}
    run_bot("notifier", notify_settings)
    [received] = smtp_server.received
    assert received.rcpt_tos == ["ops@shop.example"]
    msg = received.message
    assert msg["Subject"].endswith("1 held, 1 failed, 1 undeliverable notices")
    text = msg.get_body(("plain",)).get_content()
    for expected in ["C1001/PO-H", "stock: only 3 of WID-100 available", "C1001/PO-F",
                     "erp_entry failed after 5 attempts: ApplicationError: ERP timed out",
                     "runlog/artifacts/3/C1001_PO-F/attempt-1/page.png",
                     "runlog/artifacts/5/C1001_PO-F/attempt-2/trace.zip",
                     "gone@nowhere.example", "550 no such user"]:
        assert expected in text
    assert "runlog/artifacts/3/C1001_PO-F/attempt-1/page.png" in msg.get_body(("html",)).get_content()


def test_one_digest_per_period(notify_settings, store, smtp_server, problem_orders):
    run_bot("ops_digest", notify_settings)
    run_bot("ops_digest", notify_settings)
    digests = [r for r in outbox(store) if r["kind"] == "ops_digest"]
    assert len(digests) == 1 and digests[0]["dedupe_key"].startswith("ops_digest:")
    run_bot("ops_digest", notify_settings, period="hour")                 # a different period, a new digest
    assert len([r for r in outbox(store) if r["kind"] == "ops_digest"]) == 2


def test_no_digest_when_nothing_needs_a_person(notify_settings, store):
    add_received(store, "PO-1")
    assert run_bot("ops_digest", notify_settings).counts == {"nothing_to_report": 1}
    assert [r["kind"] for r in outbox(store)] == ["order_received"]


def test_digest_needs_an_ops_address(home, store, smtp_server):
    settings = configure(home, smtp={"port": smtp_server.port, "from_address": "orders@shop.example"})
    with pytest.raises(ConfigError, match="smtp.ops_address is not set"):
        run_bot("ops_digest", settings)


@pytest.mark.parametrize("section, error", [
    ({"digest_period": "week"}, "notifier.digest_period is 'week'"),
    ({"max_attempts": "many"}, "notifier: invalid literal"),
    ({"retries": 3}, "notifier.retries is not a known setting"),
])
def test_bad_notifier_config_is_named(home, smtp_server, section, error):
    settings = configure(home, smtp={"port": smtp_server.port, "from_address": "orders@shop.example"},
                         notifier=section)
    with pytest.raises(ConfigError, match=error):
        run_bot("notifier", settings)


def test_a_person_resends_a_given_up_notice_to_a_corrected_address(notify_settings, store, smtp_server, cli_invoke):
    key = add_received(store, "PO-1")
    smtp_server.refuse_rcpt = "550 5.1.1 no such user"
    assert run_bot("notifier", notify_settings).counts == {"undeliverable": 1}
    smtp_server.refuse_rcpt = None
    listed = cli_invoke("notices")
    assert listed.exit_code == 0 and "550 5.1.1 no such user" in listed.output
    [given_up] = store.notices("undeliverable")
    assert cli_invoke("resend", str(given_up["id"]), "--to", "not an address").exit_code == 2
    result = cli_invoke("resend", str(given_up["id"]), "--to", "buyer@acme-retail.example")
    assert result.exit_code == 0 and "buyer@acme-retail.example" in result.output
    assert run_bot("notifier", notify_settings).counts == {"sent": 1}
    [message] = smtp_server.messages
    assert message["To"].endswith("<buyer@acme-retail.example>") or message["To"] == "buyer@acme-retail.example"
    assert "orders@acme-retail.example" in store.events(key)[-1]["data"]["previous_recipient"]
    again = cli_invoke("resend", str(given_up["id"]))
    assert again.exit_code == 2 and "is not sent twice" in again.output
    assert run_bot("notifier", notify_settings).counts == {}
    assert len(smtp_server.messages) == 1
