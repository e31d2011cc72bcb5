"""Faults of ``sftp/paramiko`` against real servers: a server killed in the middle of a
transfer (the session's sshd, which ``killable_sshd`` starts again afterwards), refused
and silent ports."""

from __future__ import annotations

import shutil
import socket
import threading

import pytest

from aetherflow.core.errors import ConnectorError, ConnectorTimeout
from tests.files.conftest import make_sftp, part_files
from tests.services import free_port
from tests.services.sshd import TEST_PASSWORD

KILL_AFTER = 5 * 1024 * 1024


class KillAfter:
    """A progress callback that kills the server once ``limit`` bytes went through."""

    def __init__(self, server, limit: int = KILL_AFTER):
        self.server, self.limit, self.seen, self.killed = server, limit, 0, False

    def __call__(self, amount: int) -> None:
        self.seen += amount
        if not self.killed and self.seen >= self.limit:
            self.killed = True
            self.server.kill()


def test_a_server_killed_mid_download_leaves_no_local_file(killable_sshd, sftp_dir, big_file, tmp_path):
    name, local = sftp_dir
    source, _ = big_file
    shutil.copy(source, local / "big.bin")
    killable_sshd.chown_to_user(local)
    connector = make_sftp(killable_sshd)
    kill = KillAfter(killable_sshd)
    target = tmp_path / "out" / "big.bin"
    with pytest.raises(ConnectorError) as info:
        connector.download(f"{name}/big.bin", target, progress=kill)
    assert kill.killed and kill.seen < source.stat().st_size
    text = str(info.value)
    assert "'sftp_test'" in text and f"download '{name}/big.bin' failed" in text
    assert "lost" in text or "timed out" in text or "no answer" in text
    assert TEST_PASSWORD not in text
    assert not target.exists() and part_files(tmp_path) == []
    connector.close()


def test_a_server_killed_mid_upload_leaves_no_final_remote_file(killable_sshd, sftp_dir, big_file):
    name, local = sftp_dir
    source, _ = big_file
    connector = make_sftp(killable_sshd)
    kill = KillAfter(killable_sshd)
    with pytest.raises(ConnectorError) as info:
        connector.upload(source, f"{name}/uploaded.bin", progress=kill)
    assert kill.killed
    text = str(info.value)
    assert "'sftp_test'" in text and f"upload to '{name}/uploaded.bin' failed" in text and "lost" in text
    assert TEST_PASSWORD not in text
    assert not (local / "uploaded.bin").exists()
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
