"""The server dies in the middle of a transfer: a clear error naming the resource and
the path, no secret in it, and no final file anywhere. The tests kill the session's smbd
(``killable_smbd`` starts it again afterwards) and work in a directory of their own."""

from __future__ import annotations

import io
import os
import socket

import pytest

from aetherflow.core.errors import ConnectorError, ConnectorTimeout
from tests.services import process_gone
from tests.services.smbd import TEST_PASSWORD
from tests.smb.support import make_connector


def assert_clear_failure(error: ConnectorError, path: str) -> None:
    message = str(error)
    assert message.startswith("resource 'nas' (smb/smbprotocol): ")
    assert path in message
    assert "failed" in message
    assert TEST_PASSWORD not in message


class KillingReader(io.RawIOBase):
    """Random data; kills the server once ``after`` bytes have been handed out."""

    def __init__(self, server, total: int, after: int):
        self.server, self.left, self.after, self.given = server, total, after, 0

    def readable(self):
        return True

    def read(self, size=-1):
        if self.given >= self.after and self.server.running():
            self.server.kill()
        size = min(self.left, 1024 * 1024 if size is None or size < 0 else size)
        self.left -= size
        self.given += size
        return os.urandom(size)


def test_server_killed_during_upload_leaves_no_final_file(killable_smbd, smb_dir):
    name, local = smb_dir
    connector = make_connector(killable_smbd)
    try:
        connector.write_bytes(f"{name}/warmup.txt", b"connected")
        pid = killable_smbd.pid
        with pytest.raises(ConnectorError) as info:
            connector.upload_stream(KillingReader(killable_smbd, 64 * 1024 * 1024, 8 * 1024 * 1024), f"{name}/big.bin")
        assert_clear_failure(info.value, f"/share/{name}/big.bin'")
        assert process_gone(pid)
        assert not (local / "big.bin").exists()
    finally:
        connector.close()


def test_server_killed_during_download_leaves_no_local_file(killable_smbd, smb_dir, tmp_path):
    name, local = smb_dir
    (local / "big.bin").write_bytes(os.urandom(32 * 1024 * 1024))
    connector = make_connector(killable_smbd)
    target_dir = tmp_path / "landing"
    received = []

    def progress(count: int) -> None:
        received.append(count)
        if len(received) == 2:
            killable_smbd.kill()

    try:
        with pytest.raises(ConnectorError) as info:
            connector.download(f"{name}/big.bin", target_dir / "big.bin", progress=progress)
        assert_clear_failure(info.value, f"/share/{name}/big.bin'")
        assert "connection to the server was lost" in str(info.value) or "closed" in str(info.value).lower()
        assert os.listdir(target_dir) == []  # neither the file nor its temporary
    finally:
        connector.close()


def test_operations_after_the_server_died_fail_clearly(killable_smbd, smb_dir):
    name, _ = smb_dir
    connector = make_connector(killable_smbd)
    try:
        connector.write_bytes(f"{name}/a.txt", b"x")
        killable_smbd.kill()
        with pytest.raises(ConnectorError) as info:
            connector.read_bytes(f"{name}/a.txt")
        assert_clear_failure(info.value, f"/share/{name}/a.txt'")
    finally:
        connector.close()


def test_a_server_that_never_answers_times_out_after_timeout_seconds(smbd):
    # A socket that accepts connections and says nothing: the negotiate never returns.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        connector = make_connector(smbd, port=silent.getsockname()[1], options={"timeout_seconds": 1})
        with pytest.raises(ConnectorTimeout) as info:
            connector.check()
    assert "resource 'nas' (smb/smbprotocol): connect to '//127.0.0.1:" in str(info.value)
    assert "timeout of 1 seconds" in str(info.value)
    assert TEST_PASSWORD not in str(info.value)
