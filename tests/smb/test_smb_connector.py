"""``smb/smbprotocol`` against a real Samba smbd on a loopback port (never 445: every
test passing also proves the port reaches every smbclient call)."""

from __future__ import annotations

import io
import os
import threading
import time

import pytest

from aetherflow.core.errors import ConnectorConfigError, ConnectorError
from tests.helpers import sha256_of
from tests.services.smbd import TEST_PASSWORD
from tests.smb.support import make_connector


def part_files(local_dir) -> list[str]:
    return [name for _, _, files in os.walk(local_dir) for name in files if ".part-" in name]


# -- transfers ---------------------------------------------------------------------------


def test_50mb_upload_and_download_round_trip_keeps_the_sha256(smb, smb_dir, big_file, tmp_path):
    name, local_dir = smb_dir
    source, digest = big_file
    seen = []

    smb.mkdir(f"{name}/nested deep")
    sent = smb.upload(source, f"{name}/nested deep/ü big.bin", progress=seen.append)
    assert sent == 50 * 1024 * 1024
    assert sum(seen) == sent
    assert sha256_of(local_dir / "nested deep" / "ü big.bin") == digest
    assert part_files(local_dir) == []

    received = smb.download(f"{name}/nested deep/ü big.bin", tmp_path / "back" / "copy.bin")
    assert received == sent
    assert sha256_of(tmp_path / "back" / "copy.bin") == digest
    assert os.listdir(tmp_path / "back") == ["copy.bin"]


def test_write_and_read_bytes_with_unicode_and_space_names(smb, smb_dir):
    name, local_dir = smb_dir
    smb.mkdir(f"{name}/Grüße aus Köln/日本語")
    path = f"{name}/Grüße aus Köln/日本語/report final (v2).csv"
    data = "id,name\n1,Jürgen\n".encode()
    assert smb.write_bytes(path, data) == len(data)
    assert smb.read_bytes(path) == data
    assert (local_dir / "Grüße aus Köln" / "日本語" / "report final (v2).csv").read_bytes() == data


def test_empty_file_round_trip(smb, smb_dir, tmp_path):
    name, local_dir = smb_dir
    assert smb.write_bytes(f"{name}/empty.txt", b"") == 0
    assert (local_dir / "empty.txt").stat().st_size == 0
    assert smb.read_bytes(f"{name}/empty.txt") == b""
    assert smb.download(f"{name}/empty.txt", tmp_path / "empty.txt") == 0


def test_open_read_streams_in_pieces_of_any_size(smb, smb_dir):
    name, local_dir = smb_dir
    data = os.urandom(3 * 1024 * 1024 + 123)
    (local_dir / "blob.bin").write_bytes(data)
    pieces = []
    with smb.open_read(f"{name}/blob.bin") as reader:
        pieces.append(reader.read(10))
        pieces.append(reader.read(2 * 1024 * 1024))
        while chunk := reader.read(777_777):
            pieces.append(chunk)
    assert b"".join(pieces) == data
    assert len(pieces[0]) == 10


def test_upload_stream_from_a_reader_that_returns_small_pieces(smb, smb_dir):
    name, local_dir = smb_dir

    class Trickle(io.RawIOBase):
        def __init__(self, data):
            self.data = memoryview(data)

        def readable(self):
            return True

        def read(self, size=-1):
            piece = bytes(self.data[: min(size, 1000)])
            self.data = self.data[len(piece):]
            return piece

    data = os.urandom(2 * 1024 * 1024 + 5)
    assert smb.upload_stream(Trickle(data), f"{name}/trickle.bin") == len(data)
    assert (local_dir / "trickle.bin").read_bytes() == data


def test_upload_replaces_an_existing_file_by_default(smb, smb_dir):
    # Samba denies FILE_EXECUTE on files without the execute bit (the test share's
    # create mask is 0644): smbclient.replace() failed exactly here.
    name, local_dir = smb_dir
    smb.write_bytes(f"{name}/a.txt", b"first")
    smb.write_bytes(f"{name}/a.txt", b"second")
    assert (local_dir / "a.txt").read_bytes() == b"second"
    assert part_files(local_dir) == []


def test_upload_without_overwrite_refuses_an_existing_file(smb, smb_dir):
    name, local_dir = smb_dir
    smb.write_bytes(f"{name}/a.txt", b"keep me")
    with pytest.raises(ConnectorError, match="exists and overwrite is false"):
        smb.write_bytes(f"{name}/a.txt", b"other", overwrite=False)
    assert (local_dir / "a.txt").read_bytes() == b"keep me"


def test_upload_into_a_missing_directory_fails_and_leaves_nothing(smb, smb_dir):
    name, local_dir = smb_dir
    with pytest.raises(ConnectorError, match=r"upload '//127\.0\.0\.1:\d+/share/t-.*/missing/a\.txt' failed"):
        smb.write_bytes(f"{name}/missing/a.txt", b"x")
    assert os.listdir(local_dir) == []


def test_concurrent_transfers_through_one_connector(smb, smb_dir):
    name, local_dir = smb_dir
    # Fresh connection: the first transfers compete for the server's initial credits.
    smb.close()
    payloads = {f"{name}/f{i}.bin": os.urandom(4 * 1024 * 1024 + i) for i in range(6)}
    errors = []

    def work(path, data):
        try:
            smb.write_bytes(path, data)
            assert smb.read_bytes(path) == data
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=item) for item in payloads.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(os.listdir(local_dir)) == [f"f{i}.bin" for i in range(6)]


# -- listing and metadata ------------------------------------------------------------------


def test_list_flat_recursive_and_with_pattern(smb, smb_dir):
    name, local_dir = smb_dir
    (local_dir / "in" / "2024" / "q1").mkdir(parents=True)
    (local_dir / "in" / "a.csv").write_bytes(b"12345")
    (local_dir / "in" / "b.txt").write_bytes(b"x")
    (local_dir / "in" / "2024" / "c.csv").write_bytes(b"xyz")
    (local_dir / "in" / "2024" / "q1" / "d.csv").write_bytes(b"")

    flat = smb.list(f"{name}/in")
    assert [(e.path, e.is_dir) for e in flat] == [
        (f"{name}/in/2024", True),
        (f"{name}/in/a.csv", False),
        (f"{name}/in/b.txt", False),
    ]
    a_csv = flat[1]
    assert a_csv.name == "a.csv" and a_csv.size == 5
    assert abs(a_csv.mtime - (local_dir / "in" / "a.csv").stat().st_mtime) < 2

    deep = smb.list(f"{name}/in", pattern="*.csv", recursive=True)
    assert [e.path for e in deep] == [f"{name}/in/2024/c.csv", f"{name}/in/2024/q1/d.csv", f"{name}/in/a.csv"]


def test_stat_and_exists(smb, smb_dir):
    name, local_dir = smb_dir
    (local_dir / "sub").mkdir()
    (local_dir / "sub" / "f.txt").write_bytes(b"abc")
    entry = smb.stat(f"{name}/sub/f.txt")
    assert (entry.path, entry.name, entry.is_dir, entry.size) == (f"{name}/sub/f.txt", "f.txt", False, 3)
    assert abs(entry.mtime - time.time()) < 60
    assert smb.stat(f"{name}/sub").is_dir
    assert smb.exists(f"{name}/sub/f.txt")
    assert not smb.exists(f"{name}/sub/nope.txt")
    assert not smb.exists(f"{name}/nope/deeper.txt")


def test_stat_of_a_missing_file_names_resource_and_path(smb, smb_dir):
    name, _ = smb_dir
    with pytest.raises(ConnectorError) as info:
        smb.stat(f"{name}/ghost.txt")
    message = str(info.value)
    assert message.startswith("resource 'nas' (smb/smbprotocol): stat '//127.0.0.1:")
    assert f"/share/{name}/ghost.txt' failed: No such file or directory" in message


# -- paths ---------------------------------------------------------------------------------


def test_every_path_form_reaches_the_same_file(smb, smbd, smb_dir):
    name, local_dir = smb_dir
    (local_dir / "dir").mkdir()
    (local_dir / "dir" / "file.txt").write_bytes(b"same")
    forms = [
        f"{name}/dir/file.txt",
        f"{name}\\dir\\file.txt",
        f"/{name}/dir/file.txt",
        f"\\\\{smbd.server}\\{smbd.share}\\{name}\\dir\\file.txt",
        f"//{smbd.server}/{smbd.share}/{name}/dir/file.txt",
        f"{smbd.share.upper()}:/{name}/dir/file.txt",
        f"{smbd.share}:\\{name}\\dir\\file.txt",
        f"{name}/./other/../dir/file.txt",
    ]
    for form in forms:
        assert smb.relative(form) == f"{name}/dir/file.txt", form
        assert smb.read_bytes(form) == b"same", form
    assert [e.name for e in smb.list(f"\\\\{smbd.server}\\{smbd.share}\\{name}\\dir")] == ["file.txt"]


@pytest.mark.parametrize(
    ("form", "complaint"),
    [
        ("\\\\otherhost\\share\\x.txt", "names server 'otherhost'"),
        ("//127.0.0.1/othershare/x.txt", "names share 'othershare'"),
        ("OTHER:/x.txt", "names share 'OTHER'"),
        ("../x.txt", "climbs above the share root"),
        ("a/../../x.txt", "climbs above the share root"),
        ("\\\\127.0.0.1", "has no share"),
    ],
)
def test_paths_outside_this_share_are_refused(smb, form, complaint):
    with pytest.raises(ConnectorConfigError, match=complaint):
        smb.read_bytes(form)


# -- changes -------------------------------------------------------------------------------


def test_mkdir_with_and_without_parents(smb, smb_dir):
    name, local_dir = smb_dir
    smb.mkdir(f"{name}/a/b/c")
    assert (local_dir / "a" / "b" / "c").is_dir()
    smb.mkdir(f"{name}/a/b/c")  # existing is fine
    smb.mkdir(f"{name}/a/single", parents=False)
    assert (local_dir / "a" / "single").is_dir()
    with pytest.raises(ConnectorError, match="mkdir"):
        smb.mkdir(f"{name}/x/y", parents=False)
    assert not (local_dir / "x").exists()


def test_delete_file_and_empty_directory(smb, smb_dir):
    name, local_dir = smb_dir
    smb.mkdir(f"{name}/d")
    smb.write_bytes(f"{name}/d/f.txt", b"x")
    smb.delete(f"{name}/d/f.txt")
    assert not (local_dir / "d" / "f.txt").exists()
    smb.delete(f"{name}/d")
    assert not (local_dir / "d").exists()
    with pytest.raises(ConnectorError, match=r"delete .*/gone\.txt' failed"):
        smb.delete(f"{name}/gone.txt")
    with pytest.raises(ConnectorConfigError, match="share root"):
        smb.delete("")


def test_rename_refuses_an_existing_target_unless_overwrite(smb, smb_dir):
    name, local_dir = smb_dir
    smb.mkdir(f"{name}/sub")
    smb.write_bytes(f"{name}/a.txt", b"A")
    smb.write_bytes(f"{name}/b.txt", b"B")
    with pytest.raises(ConnectorError, match="rename"):
        smb.rename(f"{name}/a.txt", f"{name}/b.txt")
    assert (local_dir / "b.txt").read_bytes() == b"B"
    smb.rename(f"{name}/a.txt", f"{name}/b.txt", overwrite=True)
    assert (local_dir / "b.txt").read_bytes() == b"A"
    assert not (local_dir / "a.txt").exists()
    smb.rename(f"{name}\\b.txt", f"{name}/sub/moved.txt")
    assert (local_dir / "sub" / "moved.txt").read_bytes() == b"A"


# -- sessions, security, options -----------------------------------------------------------


def test_encryption_on_round_trip(smbd, smb_dir):
    name, local_dir = smb_dir
    connector = make_connector(smbd, options={"encrypt": True})
    try:
        data = os.urandom(5 * 1024 * 1024)
        connector.write_bytes(f"{name}/enc.bin", data)
        assert connector.read_bytes(f"{name}/enc.bin") == data
        sessions = [s for conn in connector.connect().cache.values() for s in conn.session_table.values()]
        assert sessions and all(s.encrypt_data for s in sessions)
    finally:
        connector.close()
    assert (local_dir / "enc.bin").read_bytes() == data


def test_unsigned_session_is_refused_by_an_smb311_server_with_a_hint(smbd):
    connector = make_connector(smbd, options={"require_signing": False})
    with pytest.raises(ConnectorError) as info:
        connector.check()
    assert "STATUS_ACCESS_DENIED" in str(info.value)
    assert "set require_signing to true" in str(info.value)


def test_wrong_password_is_a_clear_error_without_the_secret(smbd):
    wrong = "Wr0ng-S3cr3t-Pa55-xyz"
    connector = make_connector(smbd, password=wrong)
    with pytest.raises(ConnectorError) as info:
        connector.list("")
    message = str(info.value)
    assert message.startswith("resource 'nas' (smb/smbprotocol): connect to '//127.0.0.1:")
    assert "logon failure: wrong user name or password" in message
    assert wrong not in message and TEST_PASSWORD not in message
    with pytest.raises(ConnectorError, match="logon failure"):
        connector.check()


def test_errors_never_contain_the_password(smb, smb_dir):
    name, _ = smb_dir
    messages = []
    for action in (lambda: smb.read_bytes(f"{name}/nothing"), lambda: smb.delete(f"{name}/nothing"),
                   lambda: smb.rename(f"{name}/nothing", f"{name}/else"), lambda: smb.list(f"{name}/nothing")):
        with pytest.raises(ConnectorError) as info:
            action()
        messages.append(str(info.value))
    assert all(TEST_PASSWORD not in m and "resource 'nas'" in m for m in messages)
    assert TEST_PASSWORD not in repr(smb)


def test_missing_share_is_reported_on_connect(smbd):
    connector = make_connector(smbd, share="nosuchshare")
    with pytest.raises(ConnectorError, match=r"connect to '//127\.0\.0\.1:\d+/nosuchshare/'"):
        connector.check()


def test_close_ends_only_this_connectors_session_and_is_idempotent(smbd, smb_dir):
    name, _ = smb_dir
    first, second = make_connector(smbd, name="first"), make_connector(smbd, name="second")
    try:
        first.write_bytes(f"{name}/x.txt", b"1")
        second.write_bytes(f"{name}/y.txt", b"2")
        cache = first.connect().cache
        connection = next(iter(cache.values()))
        first.close()
        first.close()
        assert not first.connected
        assert cache == {} and not connection.transport.connected
        assert second.read_bytes(f"{name}/x.txt") == b"1"  # the other session is untouched
        assert first.read_bytes(f"{name}/y.txt") == b"2"  # and a closed connector reconnects
    finally:
        first.close()
        second.close()
