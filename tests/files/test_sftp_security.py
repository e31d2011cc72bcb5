"""Host key verification of ``sftp/paramiko`` and what never leaks: against the real sshd."""

from __future__ import annotations

import subprocess

import pytest

from aetherflow.core.errors import ConnectorConfigError, ConnectorError
from tests.files.conftest import make_sftp
from tests.services.sshd import TEST_PASSWORD

OTHER_FINGERPRINT = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"


def new_log(sshd, before: int) -> str:
    return sshd.log.read_text(errors="replace")[before:]


def test_an_unknown_host_key_is_refused_by_default_before_any_credential_is_sent(sshd):
    before = len(sshd.log.read_text(errors="replace"))
    connector = make_sftp(sshd, known_hosts=None)
    with pytest.raises(ConnectorError) as info:
        connector.connect()
    text = str(info.value)
    assert "'sftp_test'" in text and "host key" in text and "not known" in text
    assert sshd.host_key_fingerprint in text  # what to check and pin
    assert "host_key_fingerprint" in text and "known_hosts" in text and "accept_unknown_host_keys" in text
    # The server never saw a login attempt: the password stayed home.
    log = new_log(sshd, before)
    assert "password" not in log.lower() and "Accepted" not in log


def test_a_known_hosts_file_without_this_host_is_refused(sshd, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port + 1} {sshd.host_key_line}\nexample.org {sshd.host_key_line}\n")
    with pytest.raises(ConnectorError, match="not known"):
        make_sftp(sshd, known_hosts=str(known)).connect()


def test_a_pinned_fingerprint_is_accepted_without_known_hosts(sshd, sftp_dir):
    name, _ = sftp_dir
    with make_sftp(sshd, known_hosts=None, host_key_fingerprint=sshd.host_key_fingerprint) as connector:
        assert connector.exists(name)


def test_a_pin_may_be_one_of_several_and_padding_is_ignored(sshd, sftp_dir):
    name, _ = sftp_dir
    pins = [OTHER_FINGERPRINT, sshd.host_key_fingerprint + "="]
    with make_sftp(sshd, known_hosts=None, host_key_fingerprint=pins) as connector:
        assert connector.exists(name)


def test_a_wrong_pinned_fingerprint_is_refused_even_when_unknown_keys_are_accepted(sshd):
    connector = make_sftp(
        sshd, known_hosts=None, host_key_fingerprint=OTHER_FINGERPRINT, options={"accept_unknown_host_keys": True}
    )
    with pytest.raises(ConnectorError) as info:
        connector.connect()
    text = str(info.value)
    assert "does not match host_key_fingerprint" in text and sshd.host_key_fingerprint in text
    assert "intercepting" in text


def test_a_changed_key_in_known_hosts_is_refused_even_when_unknown_keys_are_accepted(sshd, tmp_path):
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    line = " ".join(other.with_suffix(".pub").read_text().split()[:2])
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {line}\n")
    connector = make_sftp(sshd, known_hosts=str(known), options={"accept_unknown_host_keys": True})
    with pytest.raises(ConnectorError, match="does not match its entry"):
        connector.connect()


def test_hashed_known_hosts_entries_are_understood(sshd, tmp_path, sftp_dir):
    name, _ = sftp_dir
    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts.read_text())
    subprocess.run(["ssh-keygen", "-H", "-f", str(known)], check=True, capture_output=True)
    assert "127.0.0.1" not in known.read_text()
    with make_sftp(sshd, known_hosts=str(known)) as connector:
        assert connector.exists(name)


def test_unknown_keys_are_accepted_only_when_asked(sshd, sftp_dir):
    name, _ = sftp_dir
    with make_sftp(sshd, known_hosts=None, options={"accept_unknown_host_keys": True}) as connector:
        assert connector.exists(name)


def test_a_missing_known_hosts_file_and_a_malformed_pin_are_config_errors(sshd, tmp_path):
    with pytest.raises(ConnectorConfigError, match="does not exist"):
        make_sftp(sshd, known_hosts=str(tmp_path / "nope")).connect()
    with pytest.raises(ConnectorConfigError, match="is not a fingerprint"):
        make_sftp(sshd, known_hosts=None, host_key_fingerprint="ed25519 AAAA").connect()


def test_a_wrong_password_names_the_resource_and_never_shows_a_password(sshd):
    wrong = "Wr0ng-Pa55-xyz"
    connector = make_sftp(sshd, password=wrong)
    with pytest.raises(ConnectorError) as info:
        connector.connect()
    text = str(info.value)
    assert "'sftp_test'" in text and "sftp/paramiko" in text and "authentication" in text and sshd.username in text
    assert wrong not in text and TEST_PASSWORD not in text
    assert wrong not in repr(connector) and TEST_PASSWORD not in repr(connector)


def test_errors_of_a_logged_in_connector_never_show_the_password(sftp):
    with pytest.raises(ConnectorError) as info:
        sftp.read_bytes("no/such/file")
    assert TEST_PASSWORD not in str(info.value)
