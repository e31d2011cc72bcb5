"""mail/smtp errors never show the password, against the real SMTP server (see
tests/test_driver_errors_scrubbed.py)."""

from __future__ import annotations

from aetherflow.core.connectors.builtin.mail_smtp import SMTPConnector
from tests.helpers import driver_fault
from tests.services import free_port

SECRET = "Zq7-distinct-S3cret"


def test_smtp_errors_never_show_the_password(starttls_smtp):
    def make(**overrides) -> SMTPConnector:
        return SMTPConnector(config=starttls_smtp.config(**overrides), options={"timeout_seconds": 10})

    def send(connector):
        connector.send(to="someone@example.com", subject="s", body="b", from_addr="a@example.com")

    wrong = driver_fault(send, make(password=SECRET), SECRET)
    assert "refused" in str(wrong)
    driver_fault(send, make(port=free_port(), password=SECRET), SECRET)
    driver_fault(send, make(ca_file=f"/nonexistent/{starttls_smtp.password}.pem"), starttls_smtp.password)
