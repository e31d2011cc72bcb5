"""``sftp/paramiko`` against a real OpenSSH sshd: every primitive of the files API."""

from __future__ import annotations

import threading

import pytest

from aetherflow.core.errors import ConnectorConfigError, ConnectorError
from tests.files.conftest import make_sftp, part_files, server_file
from tests.helpers import sha256_of


def test_write_bytes_lands_on_the_server_and_reads_back(sftp, sftp_dir):
    name, local = sftp_dir
    assert sftp.write_bytes(f"{name}/hello.txt", b"hello sftp\n") == 11
    assert (local / "hello.txt").read_bytes() == b"hello sftp\n"
    assert sftp.read_bytes(f"{name}/hello.txt") == b"hello sftp\n"
    assert part_files(local) == []


def test_fifty_megabyte_file_round_trips_with_identical_sha256(sftp, sftp_dir, big_file, tmp_path):
    name, local = sftp_dir
    source, digest = big_file
    seen = []
    sent = sftp.upload(source, f"{name}/{source.name}", progress=seen.append)
    assert sent == source.stat().st_size == sum(seen)
    assert sha256_of(local / source.name) == digest

    back = tmp_path / "back.bin"
    received = sftp.download(f"{name}/{source.name}", back)
    assert received == sent
    assert sha256_of(back) == digest
    assert part_files(local) == [] and part_files(tmp_path) == []


def test_unicode_and_space_names_round_trip(sftp, sftp_dir, tmp_path):
    name, local = sftp_dir
    directory = f"{name}/données été 2024"
    sftp.mkdir(directory)
    path = f"{directory}/résumé final ü 🚀.csv"
    sftp.write_bytes(path, "a,b\nä,ß\n".encode())
    assert (local / "données été 2024" / "résumé final ü 🚀.csv").read_text() == "a,b\nä,ß\n"
    entries = sftp.list(directory)
    assert [(e.name, e.path, e.size) for e in entries] == [("résumé final ü 🚀.csv", path, len("a,b\nä,ß\n".encode()))]
    sftp.download(path, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text() == "a,b\nä,ß\n"


def test_list_is_flat_by_default_and_recursive_with_a_name_pattern(sshd, sftp, sftp_dir):
    name, local = sftp_dir
    for rel in ("a.csv", "b.txt", "sub/c.csv", "sub/deeper/d.csv", "sub/deeper/e.txt", "other/f.CSV"):
        server_file(sshd, local / rel, rel.encode())

    flat = sftp.list(name)
    assert [(e.path, e.is_dir) for e in flat] == [
        (f"{name}/a.csv", False),
        (f"{name}/b.txt", False),
        (f"{name}/other", True),
        (f"{name}/sub", True),
    ]
    assert flat[0].size == len(b"a.csv") and flat[0].mtime > 0

    nested = sftp.list(name, "*.csv", recursive=True)
    assert [e.path for e in nested] == [f"{name}/a.csv", f"{name}/sub/c.csv", f"{name}/sub/deeper/d.csv"]
    assert [e.name for e in nested] == ["a.csv", "c.csv", "d.csv"]
    assert sftp.list(f"{name}/sub", "deep*") == [e for e in sftp.list(f"{name}/sub") if e.name == "deeper"]


def test_list_of_the_start_directory_and_of_an_absolute_path(sshd, sftp, sftp_dir):
    name, local = sftp_dir
    server_file(sshd, local / "x.bin", b"x")
    assert name in [e.name for e in sftp.list("") if e.is_dir]
    absolute = sftp.list(str(local))
    assert [e.path for e in absolute] == [f"{local}/x.bin"]
    assert sftp.read_bytes(absolute[0].path) == b"x"


def test_stat_and_exists_describe_files_and_directories(sshd, sftp, sftp_dir):
    name, local = sftp_dir
    server_file(sshd, local / "dir" / "f.bin", b"12345")
    entry = sftp.stat(f"{name}/dir/f.bin")
    assert (entry.path, entry.name, entry.is_dir, entry.size) == (f"{name}/dir/f.bin", "f.bin", False, 5)
    assert sftp.stat(f"{name}/dir").is_dir
    assert sftp.exists(f"{name}/dir/f.bin") and sftp.exists(f"{name}/dir")
    assert not sftp.exists(f"{name}/dir/missing.bin")
    with pytest.raises(ConnectorError) as info:
        sftp.stat(f"{name}/dir/missing.bin")
    assert "'sftp_test'" in str(info.value) and "missing.bin" in str(info.value) and "no such file" in str(info.value)


def test_mkdir_creates_parents_and_accepts_an_existing_directory(sftp, sftp_dir):
    name, local = sftp_dir
    sftp.mkdir(f"{name}/a/b/c")
    assert (local / "a" / "b" / "c").is_dir()
    sftp.mkdir(f"{name}/a/b/c")
    sftp.mkdir(f"{name}/a/b/c2", parents=False)
    assert (local / "a" / "b" / "c2").is_dir()
    with pytest.raises(ConnectorError, match="no such file"):
        sftp.mkdir(f"{name}/x/y", parents=False)
    sftp.write_bytes(f"{name}/plain", b"")
    with pytest.raises(ConnectorError, match="not a directory"):
        sftp.mkdir(f"{name}/plain/sub")


def test_rename_refuses_an_existing_target_unless_overwrite(sftp, sftp_dir):
    name, local = sftp_dir
    sftp.write_bytes(f"{name}/a", b"A")
    sftp.write_bytes(f"{name}/b", b"B")
    with pytest.raises(ConnectorError, match="exists"):
        sftp.rename(f"{name}/a", f"{name}/b")
    assert (local / "b").read_bytes() == b"B"
    sftp.rename(f"{name}/a", f"{name}/b", overwrite=True)
    assert (local / "b").read_bytes() == b"A" and not (local / "a").exists()
    sftp.rename(f"{name}/b", f"{name}/c")
    assert (local / "c").read_bytes() == b"A"


def test_delete_removes_files_and_empty_directories(sftp, sftp_dir):
    name, local = sftp_dir
    sftp.write_bytes(f"{name}/f", b"x")
    sftp.mkdir(f"{name}/d")
    sftp.delete(f"{name}/f")
    sftp.delete(f"{name}/d")
    assert list(local.iterdir()) == []
    with pytest.raises(ConnectorError) as info:
        sftp.delete(f"{name}/f")
    assert "delete" in str(info.value) and "'sftp_test'" in str(info.value)


def test_upload_without_overwrite_keeps_the_existing_file(sftp, sftp_dir, tmp_path):
    name, local = sftp_dir
    sftp.write_bytes(f"{name}/keep.txt", b"original")
    source = tmp_path / "new.txt"
    source.write_bytes(b"replacement")
    with pytest.raises(ConnectorError, match="exists"):
        sftp.upload(source, f"{name}/keep.txt", overwrite=False)
    assert (local / "keep.txt").read_bytes() == b"original"
    sftp.upload(source, f"{name}/keep.txt")
    assert (local / "keep.txt").read_bytes() == b"replacement"
    assert part_files(local) == []


def test_upload_into_a_missing_directory_fails_and_leaves_nothing(sftp, sftp_dir):
    name, local = sftp_dir
    with pytest.raises(ConnectorError) as info:
        sftp.write_bytes(f"{name}/nowhere/f.txt", b"x")
    assert "upload to" in str(info.value) and "nowhere/f.txt" in str(info.value)
    assert list(local.iterdir()) == []


def test_open_read_streams_in_pieces_and_an_early_stop_keeps_the_connector_usable(sshd, sftp, sftp_dir):
    name, local = sftp_dir
    data = bytes(range(256)) * 4096 * 3  # 3 MiB
    server_file(sshd, local / "stream.bin", data)
    pieces = []
    with sftp.open_read(f"{name}/stream.bin") as reader:
        while piece := reader.read(100_000):
            pieces.append(piece)
    assert b"".join(pieces) == data and max(map(len, pieces)) == 100_000

    with sftp.open_read(f"{name}/stream.bin") as reader:
        assert reader.read(10) == data[:10]
    assert sftp.read_bytes(f"{name}/stream.bin") == data


def test_empty_file_round_trips(sftp, sftp_dir, tmp_path):
    name, local = sftp_dir
    assert sftp.write_bytes(f"{name}/empty", b"") == 0
    assert (local / "empty").read_bytes() == b""
    assert sftp.download(f"{name}/empty", tmp_path / "empty") == 0
    assert (tmp_path / "empty").read_bytes() == b""


@pytest.mark.parametrize("which", ["key", "encrypted_key", "rsa_key"])
def test_key_authentication_with_and_without_passphrase(sshd, sftp_dir, which):
    name, local = sftp_dir
    key = getattr(sshd, which)
    connector = make_sftp(sshd, password=None, private_key_path=str(key.path), passphrase=key.passphrase)
    with connector:
        connector.write_bytes(f"{name}/{which}.txt", b"by key")
    assert (local / f"{which}.txt").read_bytes() == b"by key"


def test_an_encrypted_key_without_passphrase_is_a_clear_config_error(sshd):
    connector = make_sftp(sshd, password=None, private_key_path=str(sshd.encrypted_key.path))
    with pytest.raises(ConnectorConfigError) as info:
        connector.connect()
    assert "encrypted" in str(info.value) and "'sftp_test'" in str(info.value)


def test_a_refused_key_falls_back_to_the_password(sshd, tmp_path, sftp_dir):
    import subprocess

    name, _ = sftp_dir
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    with make_sftp(sshd, private_key_path=str(stranger)) as connector:
        assert connector.exists(name)


def test_one_connector_serves_several_threads_at_once(sftp, sftp_dir, tmp_path):
    name, local = sftp_dir
    payloads = {f"t{i}.bin": bytes([i]) * (1_500_000 + i) for i in range(4)}
    errors = []

    def work(file_name: str, data: bytes) -> None:
        try:
            sftp.write_bytes(f"{name}/{file_name}", data)
            sftp.download(f"{name}/{file_name}", tmp_path / file_name)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=item) for item in payloads.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for file_name, data in payloads.items():
        assert (local / file_name).read_bytes() == data
        assert (tmp_path / file_name).read_bytes() == data


def test_a_dropped_connection_is_replaced_on_the_next_operation(sftp, sftp_dir):
    name, _ = sftp_dir
    sftp.write_bytes(f"{name}/a", b"1")
    sftp.connect().transport.close()
    assert sftp.read_bytes(f"{name}/a") == b"1"


def test_close_is_idempotent_and_the_connector_reconnects_after_it(sftp, sftp_dir):
    name, _ = sftp_dir
    sftp.write_bytes(f"{name}/a", b"1")
    sftp.close()
    sftp.close()
    assert sftp.exists(f"{name}/a")
    sftp.check()


def test_a_wrong_passphrase_is_reported_without_the_passphrase(sshd):
    connector = make_sftp(sshd, password=None, private_key_path=str(sshd.rsa_key.path), passphrase="Wr0ng-Pa55phrase-xyz")
    with pytest.raises(ConnectorConfigError) as info:
        connector.connect()
    text = str(info.value)
    assert "wrong passphrase" in text and "'sftp_test'" in text and "Wr0ng-Pa55phrase-xyz" not in text


def test_a_passphrase_for_an_unencrypted_key_is_not_needed(sshd, sftp_dir):
    name, _ = sftp_dir
    with make_sftp(sshd, password=None, private_key_path=str(sshd.key.path), passphrase="unused") as connector:
        assert connector.exists(name)


def test_a_download_uses_read_ahead_to_the_end_even_when_the_request_sender_lags(sshd, sftp, sftp_dir, tmp_path, monkeypatch):
    # paramiko#2418: when paramiko's read-ahead thread falls behind the reader, paramiko
    # switched to one request per round trip (and buffered the rest unread). A lagging
    # sender is simulated; every block must still be requested exactly once.
    import paramiko
    from paramiko.sftp import CMD_READ

    name, local = sftp_dir
    data = bytes(range(256)) * 4096 * 8  # 8 MiB
    server_file(sshd, local / "lag.bin", data)
    original = paramiko.SFTPClient._async_request
    reads = []

    def lagging(self, fileobj, t, *args):
        if t == CMD_READ:
            reads.append(args[1])
            if "prefetch" in threading.current_thread().name:
                threading.Event().wait(0.003)
        return original(self, fileobj, t, *args)

    monkeypatch.setattr(paramiko.SFTPClient, "_async_request", lagging)
    assert sftp.download(f"{name}/lag.bin", tmp_path / "lag.bin") == len(data)
    assert (tmp_path / "lag.bin").read_bytes() == data
    assert len(reads) == len(set(reads)), "some blocks were requested twice: the read-ahead was abandoned"


class FailingReader:
    """A source that breaks after a few pieces, as a dying source of a copy would."""

    def __init__(self, pieces: int):
        self.pieces = pieces

    def read(self, size=-1):
        if self.pieces == 0:
            raise OSError("the source broke")
        self.pieces -= 1
        return b"x" * 1_000_000


def test_a_failing_source_leaves_neither_final_nor_temporary_file(sftp, sftp_dir):
    name, local = sftp_dir
    with pytest.raises(ConnectorError, match="the source broke"):
        sftp.upload_stream(FailingReader(3), f"{name}/copy.bin")
    assert list(local.iterdir()) == []
    assert sftp.write_bytes(f"{name}/after.bin", b"still fine") == 10


def test_an_error_while_reading_a_stream_leaves_the_connector_usable(sshd, sftp, sftp_dir):
    name, local = sftp_dir
    server_file(sshd, local / "s.bin", b"y" * 5_000_000)
    with pytest.raises(RuntimeError, match="consumer gave up"):
        with sftp.open_read(f"{name}/s.bin") as reader:
            reader.read(1000)
            raise RuntimeError("consumer gave up")
    assert sftp.read_bytes(f"{name}/s.bin") == b"y" * 5_000_000
