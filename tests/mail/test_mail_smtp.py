"""``mail/smtp`` against real aiosmtpd servers: what arrives, parsed with ``email``."""

from __future__ import annotations

import pytest

from aetherflow.core.connectors.builtin.mail_smtp import SMTPConnector, attachment_type
from aetherflow.core.errors import ConnectorConfigError, ConnectorError
from tests.services.smtp_server import QUIET_WARNINGS

pytestmark = [pytest.mark.filterwarnings(w) for w in QUIET_WARNINGS]

SECRET = "S3cr3t-Pa55-xyz"


@pytest.fixture
def files(tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "daily.csv").write_text("id,name\n1,Zoë\n", encoding="utf-8")
    (folder / "Bericht-März.pdf").write_bytes(b"%PDF-1.4\n% not a real pdf\n")
    (folder / "dump.json.gz").write_bytes(b"\x1f\x8b\x08\x00fake")
    (folder / "blob.unknownext").write_bytes(bytes(range(256)))
    return folder


def test_message_arrives_with_recipients_alternatives_attachments_and_no_bcc(smtp, make_mailer, files):
    mailer = make_mailer(smtp.config(from_addr="Zoë Reports <reports@example.com>"))
    result = mailer.send(
        to=["Anna Ärger <anna@example.com>", "bob@example.com"],
        subject="Tagesbericht — Grüße ✓",
        body="Plain text body\nline two",
        html="<p>HTML <b>body</b></p>",
        cc="Carol <carol@example.com>",
        bcc=["hidden@example.com", "bob@example.com"],
        attachments=[files / "daily.csv", files / "Bericht-März.pdf", files / "dump.json.gz", files / "blob.unknownext"],
    )
    envelope = ["anna@example.com", "bob@example.com", "carol@example.com", "hidden@example.com"]
    assert result["sent"] is True
    assert result["recipients"] == envelope
    assert result["refused"] == {}

    [received] = smtp.messages
    assert received.mail_from == "reports@example.com"
    assert received.rcpt_tos == envelope  # bcc in the envelope, duplicates once
    assert b"hidden@example.com" not in received.data  # ... and nowhere in the message
    message = received.parsed()
    assert message["Bcc"] is None
    assert message["Subject"] == "Tagesbericht — Grüße ✓"
    assert message["From"].addresses[0].display_name == "Zoë Reports"
    assert [a.display_name for a in message["To"].addresses] == ["Anna Ärger", ""]
    assert message["Cc"].addresses[0].addr_spec == "carol@example.com"
    assert message["Message-ID"] == result["message_id"]
    assert message["Message-ID"].endswith("@example.com>")

    assert message.get_content_type() == "multipart/mixed"
    alternative = next(part for part in message.iter_parts() if part.get_content_type() == "multipart/alternative")
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    assert message.get_body(("plain",)).get_content() == "Plain text body\nline two\n"
    assert message.get_body(("html",)).get_content() == "<p>HTML <b>body</b></p>\n"

    attachments = {part.get_filename(): part for part in message.iter_attachments()}
    assert {name: part.get_content_type() for name, part in attachments.items()} == {
        "daily.csv": "text/csv",
        "Bericht-März.pdf": "application/pdf",
        "dump.json.gz": "application/gzip",
        "blob.unknownext": "application/octet-stream",
    }
    assert attachments["daily.csv"].get_content() == "id,name\n1,Zoë\n"
    assert attachments["blob.unknownext"].get_content() == bytes(range(256))


def test_text_only_message_is_a_single_text_part(starttls_smtp, make_mailer):
    mailer = make_mailer(starttls_smtp.config(from_addr="ops@example.com"))
    mailer.send("team@example.com", "done", "all good")
    message = starttls_smtp.messages[0].parsed()
    assert message.get_content_type() == "text/plain"
    assert message.get_content() == "all good\n"


def test_from_addr_argument_wins_over_the_config(starttls_smtp, make_mailer):
    mailer = make_mailer(starttls_smtp.config(from_addr="default@example.com"))
    mailer.send("x@example.com", "s", "b", from_addr="Other <other@example.com>")
    assert starttls_smtp.messages[0].mail_from == "other@example.com"


@pytest.mark.parametrize(
    "field, value",
    [
        ("to", "alice@example.com\r\nBcc: eve@evil.test"),
        ("to", ["alice@example.com", "bob@example.com\nCc: eve@evil.test"]),
        ("cc", "Carol <carol@example.com>\r\n, eve@evil.test"),
        ("bcc", "x@example.com\rTo: eve@evil.test"),
        ("from_addr", "ops@example.com\r\nReply-To: eve@evil.test"),
    ],
)
def test_an_address_with_a_line_break_is_refused_and_nothing_is_sent(starttls_smtp, make_mailer, field, value):
    mailer = make_mailer(starttls_smtp.config(from_addr="ops@example.com"))
    arguments = {"to": "team@example.com", "subject": "s", "body": "b", field: value}
    sent_before = len(starttls_smtp.messages)
    with pytest.raises(ConnectorConfigError) as info:
        mailer.send(**arguments)
    assert "line break" in str(info.value)
    assert len(starttls_smtp.messages) == sent_before


def test_a_subject_with_a_line_break_is_refused_clearly(starttls_smtp, make_mailer):
    mailer = make_mailer(starttls_smtp.config(from_addr="ops@example.com"))
    with pytest.raises(ConnectorConfigError) as info:
        mailer.send("team@example.com", "report\r\nBcc: eve@evil.test", "b")
    assert "line break" in str(info.value) and "subject" in str(info.value)


def test_check_logs_in_over_each_transport(smtp, make_mailer):
    make_mailer(smtp.config()).check()


def test_wrong_password_fails_without_showing_it(starttls_smtp, tls_smtp, make_mailer):
    for server in (starttls_smtp, tls_smtp):
        mailer = make_mailer(server.config(password="Wr0ng-" + SECRET, from_addr="a@example.com"))
        with pytest.raises(ConnectorError) as info:
            mailer.send("x@example.com", "s", "b")
        message = str(info.value)
        assert SECRET not in message and "Wr0ng" not in message
        assert f"login as '{server.username}' refused" in message
        assert "535" in message
        assert server.messages == []


def test_untrusted_certificate_is_refused_without_ca_file(starttls_smtp, tls_smtp, make_mailer):
    for server in (starttls_smtp, tls_smtp):
        mailer = make_mailer(server.config(ca_file=None))
        with pytest.raises(ConnectorError) as info:
            mailer.check()
        assert "certificate is not trusted" in str(info.value)
        assert "ca_file" in info.value.hint


def test_verify_false_accepts_an_untrusted_certificate(starttls_smtp, make_mailer):
    make_mailer(starttls_smtp.config(ca_file=None, verify=False)).check()


def test_login_on_a_server_that_demands_starttls_first_says_so(starttls_smtp, make_mailer):
    mailer = make_mailer(starttls_smtp.config(starttls=False))
    with pytest.raises(ConnectorError) as info:
        mailer.check()
    assert "offers no login (AUTH) on this connection" in str(info.value)
    assert "set starttls: true" in info.value.hint


def test_ssl_and_starttls_together_are_a_config_error(make_mailer):
    with pytest.raises(ConnectorConfigError, match="exclude each other"):
        make_mailer({"host": "127.0.0.1", "ssl": True, "starttls": True}).check()


def test_a_message_needs_a_sender_and_a_recipient(make_mailer):
    mailer = make_mailer({"host": "127.0.0.1"})
    with pytest.raises(ConnectorConfigError, match="no sender"):
        mailer.send("x@example.com", "s", "b")
    with pytest.raises(ConnectorConfigError, match="no recipients"):
        mailer.send([], "s", "b", from_addr="a@example.com")
    with pytest.raises(ConnectorConfigError, match="not an e-mail address"):
        mailer.send("not-an-address", "s", "b", from_addr="a@example.com")


def test_unreachable_server_names_the_resource_and_address(make_mailer):
    from tests.services import free_port

    port = free_port()
    with pytest.raises(ConnectorError, match=rf"resource 'mailer' \(mail/smtp\): connect to 127.0.0.1:{port} \(plain\) failed"):
        make_mailer({"host": "127.0.0.1", "port": port}, timeout_seconds=2).check()


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a.csv", ("text", "csv")), ("a.PDF", ("application", "pdf")), ("a.tar.gz", ("application", "gzip")), ("noext", ("application", "octet-stream"))],
)
def test_attachment_types_come_from_mimetypes(name, expected):
    assert attachment_type(name) == expected


def test_connector_class_declares_password_secret():
    assert SMTPConnector.config_schema["password"].secret is True
