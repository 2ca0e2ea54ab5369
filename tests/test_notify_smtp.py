"""The SMTP connector against a real aiosmtpd server: safe headers, threading, TLS, login, error mapping."""

import pytest

from connectors.smtp import (SmtpConfig, SmtpSender, SmtpUnavailable, Undeliverable, build_message, mailbox,
                             message_ids)
from orderbots.errors import ApplicationError, ConfigError
from tests.plugins.smtp import SmtpServer


def config_for(server: SmtpServer, **extra) -> SmtpConfig:
    return SmtpConfig.from_mapping({"host": "127.0.0.1", "port": server.port, "security": "plain",
                                    "from_address": "orders@shop.example", **extra})


BUYER = mailbox("buyer@customer.example", "Buyer")


def message(name="Buyer", subject="Your order", reply_to=None, msg_id="<m1@shop.example>"):
    return build_message(sender=mailbox("orders@shop.example", "Order Desk"),
                         recipient=mailbox(BUYER.addr_spec, name), subject=subject, text="plain body",
                         html="<p>html body</p>", message_id=msg_id, reply_to=reply_to)


def send(server, msg, **config):
    with SmtpSender(config_for(server, **config)) as sender:
        sender.send(msg, BUYER)


def test_message_arrives_as_multipart_alternative(smtp_server):
    send(smtp_server, message())
    [received] = smtp_server.received
    assert received.rcpt_tos == ["buyer@customer.example"]
    msg = received.message
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["Message-ID"] == "<m1@shop.example>"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Date"]


def test_crlf_in_subject_and_name_cannot_inject_headers(smtp_server):
    evil = "Hello\r\nBcc: victim@evil.example\r\n\r\nforged body"
    send(smtp_server, message(name=evil, subject=evil))
    [received] = smtp_server.received
    assert received.rcpt_tos == ["buyer@customer.example"]
    msg = received.message
    assert msg["Bcc"] is None
    assert msg["Subject"] == "Hello Bcc: victim@evil.example forged body"
    assert msg["To"].addresses[0].display_name == "Hello Bcc: victim@evil.example forged body"
    assert msg["To"].addresses[0].addr_spec == "buyer@customer.example"


def test_non_ascii_display_name_and_subject_are_encoded(smtp_server):
    send(smtp_server, message(name="上海华联贸易有限公司", subject="订单已确认：采购单 PO-1"))
    raw = smtp_server.received[0].message
    assert raw["To"].addresses[0].display_name == "上海华联贸易有限公司"
    assert raw["Subject"] == "订单已确认：采购单 PO-1"
    assert "=?utf-8?" in raw.as_string()            # encoded-words on the wire, not raw UTF-8


@pytest.mark.parametrize("address", ["no-at-sign", "a@b.example\r\nBcc: x@y.example", "two@@at.example",
                                     "Name <a@b.example>", "a@b.example, c@d.example", ""])
def test_invalid_recipient_is_undeliverable(address):
    with pytest.raises(Undeliverable, match="not a valid email address"):
        mailbox(address, "x")


def test_reply_threads_under_the_customer_message(smtp_server):
    reply_to = {"message_id": "<orig.123@customer.example>",
                "references": "<first@customer.example> <second@customer.example>"}
    send(smtp_server, message(reply_to=reply_to))
    msg = smtp_server.messages[0]
    assert msg["In-Reply-To"] == "<orig.123@customer.example>"
    assert msg["References"].split() == ["<first@customer.example>", "<second@customer.example>",
                                         "<orig.123@customer.example>"]


def test_hostile_threading_values_keep_only_message_ids(smtp_server):
    reply_to = {"message_id": "<ok@customer.example>\r\nBcc: victim@evil.example",
                "references": ["junk", "<r1@customer.example>\r\nX-Evil: 1", "<no-at-sign>"]}
    send(smtp_server, message(reply_to=reply_to))
    msg = smtp_server.messages[0]
    assert msg["Bcc"] is None and msg["X-Evil"] is None
    assert msg["In-Reply-To"] == "<ok@customer.example>"
    assert msg["References"] == "<r1@customer.example> <ok@customer.example>"


def test_no_threading_headers_without_a_parent(smtp_server):
    send(smtp_server, message(reply_to={"message_id": "", "references": "<r@x.example>"}))
    msg = smtp_server.messages[0]
    assert msg["In-Reply-To"] is None and msg["References"] is None


def test_long_reference_chains_are_capped():
    refs = " ".join(f"<r{i}@x.example>" for i in range(100))
    msg = message(reply_to={"message_id": "<p@x.example>", "references": refs})
    assert len(message_ids(msg["References"])) == 20
    assert msg["References"].endswith("<r99@x.example> <p@x.example>")


def test_one_session_carries_many_messages(smtp_server):
    with SmtpSender(config_for(smtp_server)) as sender:
        for i in range(5):
            sender.send(message(msg_id=f"<m{i}@shop.example>"), BUYER)
        session = sender._smtp
        assert session is not None
    assert len(smtp_server.messages) == 5


def test_permanent_recipient_refusal_is_undeliverable(smtp_server):
    smtp_server.refuse_rcpt = "550 5.1.1 <buyer@customer.example>: no such user"
    with SmtpSender(config_for(smtp_server)) as sender:
        with pytest.raises(Undeliverable, match="recipient refused.*550 5.1.1"):
            sender.send(message(), BUYER)
        smtp_server.refuse_rcpt = None
        sender.send(message(msg_id="<m2@shop.example>"), BUYER)     # the session is still usable
    assert len(smtp_server.messages) == 1


def test_permanent_data_refusal_is_undeliverable(smtp_server):
    smtp_server.refuse_data = "554 5.7.1 message content rejected"
    with pytest.raises(Undeliverable, match="message refused.*554"):
        send(smtp_server, message())


@pytest.mark.parametrize("where", ["refuse_rcpt", "refuse_data"])
def test_temporary_refusal_is_a_retryable_application_error(smtp_server, where):
    setattr(smtp_server, where, "451 4.3.0 try again later")
    with pytest.raises(ApplicationError, match="451") as info:
        send(smtp_server, message())
    assert not isinstance(info.value, Undeliverable)
    assert smtp_server.messages == []


def test_server_down_is_smtp_unavailable(smtp_server):
    smtp_server.stop()
    with pytest.raises(SmtpUnavailable, match=f"127.0.0.1:{smtp_server.port}"):
        send(smtp_server, message())


def test_reconnects_after_the_server_restarts(smtp_server):
    with SmtpSender(config_for(smtp_server)) as sender:
        sender.send(message(msg_id="<a@shop.example>"), BUYER)
        smtp_server.stop()
        smtp_server.start()
        with pytest.raises(ApplicationError):
            sender.send(message(msg_id="<b@shop.example>"), BUYER)  # the old session is gone
        sender.send(message(msg_id="<b@shop.example>"), BUYER)      # a new one is opened
    assert [m["Message-ID"] for m in smtp_server.messages] == ["<a@shop.example>", "<b@shop.example>"]


@pytest.fixture
def tls_server(request, tls_files):
    server = SmtpServer(tls=tls_files, implicit_tls=request.param == "ssl", login=("mailer", "s3cret-pw")).start()
    yield server
    server.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # aiosmtpd, implicit TLS
@pytest.mark.parametrize("tls_server", ["ssl", "starttls"], indirect=True)
def test_tls_and_login_with_password_from_environment(tls_server, tls_files, monkeypatch):
    mode = "ssl" if tls_server.implicit_tls else "starttls"
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret-pw")
    cfg = config_for(tls_server, security=mode, user="mailer", password_env="TEST_SMTP_PASSWORD",
                     ca_file=str(tls_files[0]))
    with SmtpSender(cfg, password="s3cret-pw") as sender:
        sender.send(message(), BUYER)
    assert len(tls_server.messages) == 1
    assert "s3cret-pw" not in repr(cfg) + repr(SmtpSender(cfg, password="s3cret-pw"))


@pytest.mark.parametrize("tls_server", ["starttls"], indirect=True)
def test_wrong_password_is_a_config_error_without_the_password(tls_server, tls_files):
    cfg = config_for(tls_server, security="starttls", user="mailer", password_env="TEST_SMTP_PASSWORD",
                     ca_file=str(tls_files[0]))
    with pytest.raises(ConfigError, match=r"refused the login of user 'mailer'.*\$TEST_SMTP_PASSWORD") as info:
        with SmtpSender(cfg, password="wrong-guess") as sender:
            sender.send(message(), BUYER)
    assert "wrong-guess" not in str(info.value)


@pytest.mark.parametrize("tls_server", ["starttls"], indirect=True)
def test_untrusted_certificate_is_unavailable(tls_server):
    with pytest.raises(SmtpUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        send(tls_server, message(), security="starttls")


@pytest.mark.parametrize("section, error", [
    ({"security": "tls"}, r"smtp.security is 'tls'; use one of ssl, starttls, plain"),
    ({"host": "mail.example.com"}, r"plain is only allowed to a loopback host"),
    ({"from_address": ""}, r"smtp.from_address is not set"),
    ({"from_address": "orders"}, r"smtp.from_address 'orders' is not an email address"),
    ({"port": "twenty-five"}, r"smtp.port and smtp.timeout must be numbers"),
    ({"pasword_env": "X"}, r"smtp.pasword_env is not a known setting"),
])
def test_bad_config_is_named(section, error):
    with pytest.raises(ConfigError, match=error):
        SmtpConfig.from_mapping({"from_address": "orders@shop.example", **section}, source="orderbots.yaml")


def test_default_ports_follow_security():
    base = {"from_address": "o@shop.example", "host": "smtp.example.com"}
    assert SmtpConfig.from_mapping({**base, "security": "ssl"}).port == 465
    assert SmtpConfig.from_mapping({**base, "security": "starttls"}).port == 587
