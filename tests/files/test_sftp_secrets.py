"""sftp/paramiko errors never show a password or passphrase, against the real sshd (see
tests/test_driver_errors_scrubbed.py)."""

from __future__ import annotations

from aetherflow.core.connectors.builtin.sftp_paramiko import SFTPConnector
from tests.helpers import driver_fault
from tests.services import free_port

SECRET = "Zq7-distinct-S3cret"


def test_sftp_errors_never_show_the_password_or_passphrase(sshd):
    def make(**overrides) -> SFTPConnector:
        return SFTPConnector(config=sshd.config(**overrides), options={"timeout_seconds": 10})

    def connect(connector):
        connector.connect()

    wrong = driver_fault(connect, make(password=SECRET), SECRET)
    assert "authentication" in str(wrong)
    driver_fault(connect, make(port=free_port(), password=SECRET), SECRET)
    driver_fault(connect, make(password=None, private_key_path=str(sshd.rsa_key.path), passphrase=SECRET), SECRET)
    missing = driver_fault(lambda c: c.stat(f"no-such-{sshd.password}"), make(), sshd.password)
    assert "no such file" in str(missing)
    # A message built from the config itself would quote the password it was given.
    driver_fault(connect, make(known_hosts=f"/nonexistent/{sshd.password}"), sshd.password)
