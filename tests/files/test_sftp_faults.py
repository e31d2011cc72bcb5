"""Faults of ``sftp/paramiko`` against real servers: a server killed in the middle of a
transfer (its own sshd, so the others keep running), refused and silent ports."""

from __future__ import annotations

import shutil
import socket
import threading

import pytest

from aetherflow_core.errors import ConnectorError, ConnectorTimeout
from tests.files.conftest import make_sftp, part_files
from tests.services import free_port
from tests.services.sshd import TEST_PASSWORD, sshd_server

KILL_AFTER = 5 * 1024 * 1024


@pytest.fixture
def doomed_sshd(sshd):
    """A second sshd, for tests that kill it (``sshd`` makes sure the binary works)."""
    with sshd_server() as server:
        yield server


class KillAfter:
    """A progress callback that kills the server once ``limit`` bytes went through."""

    def __init__(self, server, limit: int = KILL_AFTER):
        self.server, self.limit, self.seen, self.killed = server, limit, 0, False

    def __call__(self, amount: int) -> None:
        self.seen += amount
        if not self.killed and self.seen >= self.limit:
            self.killed = True
            self.server.kill()


def test_a_server_killed_mid_download_leaves_no_local_file(doomed_sshd, big_file, tmp_path):
    source, _ = big_file
    shutil.copy(source, doomed_sshd.data_dir / "big.bin")
    doomed_sshd.chown_to_user(doomed_sshd.data_dir)
    connector = make_sftp(doomed_sshd)
    kill = KillAfter(doomed_sshd)
    target = tmp_path / "out" / "big.bin"
    with pytest.raises(ConnectorError) as info:
        connector.download("big.bin", target, progress=kill)
    assert kill.killed and kill.seen < source.stat().st_size
    text = str(info.value)
    assert "'sftp_test'" in text and "download 'big.bin' failed" in text
    assert "lost" in text or "timed out" in text or "no answer" in text
    assert TEST_PASSWORD not in text
    assert not target.exists() and part_files(tmp_path) == []
    connector.close()


def test_a_server_killed_mid_upload_leaves_no_final_remote_file(doomed_sshd, big_file):
    source, _ = big_file
    connector = make_sftp(doomed_sshd)
    kill = KillAfter(doomed_sshd)
    with pytest.raises(ConnectorError) as info:
        connector.upload(source, "uploaded.bin", progress=kill)
    assert kill.killed
    text = str(info.value)
    assert "'sftp_test'" in text and "upload to 'uploaded.bin' failed" in text and "lost" in text
    assert TEST_PASSWORD not in text
    assert not (doomed_sshd.data_dir / "uploaded.bin").exists()
    connector.close()


def test_a_closed_port_is_a_clear_error(sshd):
    port = free_port()
    connector = make_sftp(sshd, port=port)
    with pytest.raises(ConnectorError) as info:
        connector.connect()
    assert f"cannot connect to 127.0.0.1:{port}" in str(info.value) and "'sftp_test'" in str(info.value)


def test_a_server_that_never_speaks_ssh_times_out(sshd):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    stop = threading.Event()

    def accept() -> None:
        conn, _ = listener.accept()
        accepted.append(conn)
        stop.wait(10)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    connector = make_sftp(sshd, port=listener.getsockname()[1], options={"timeout_seconds": 0.5})
    try:
        with pytest.raises(ConnectorError) as info:
            connector.connect()
        assert "'sftp_test'" in str(info.value)
        assert isinstance(info.value, ConnectorTimeout) and "did not finish within 0.5 s" in str(info.value)
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        listener.close()
