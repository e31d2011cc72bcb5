"""smb/smbprotocol errors never show the password, against the real smbd (see
tests/test_driver_errors_scrubbed.py)."""

from __future__ import annotations

from aetherflow.core.connectors.builtin.smb_smbprotocol import SMBConnector
from tests.helpers import driver_fault
from tests.services import free_port

SECRET = "Zq7-distinct-S3cret"


def test_smb_errors_never_show_the_password(smbd):
    def make(**overrides) -> SMBConnector:
        return SMBConnector(config=smbd.config(**overrides), options={"timeout_seconds": 10})

    def connect(connector):
        connector.connect()

    wrong = driver_fault(connect, make(password=SECRET), SECRET)
    assert "logon failure" in str(wrong) or "ACCESS_DENIED" in str(wrong)
    driver_fault(connect, make(port=free_port(), password=SECRET), SECRET)
    missing = driver_fault(lambda c: c.stat(f"no-such-{smbd.password}.txt"), make(), smbd.password)
    assert "no-such-***" in str(missing)
