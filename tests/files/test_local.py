"""``fs/local``: the remote-files API over a local directory, confined to its root."""

from __future__ import annotations

import hashlib
import os

import pytest

from aetherflow.core.connectors.builtin.fs_local import LocalFilesConnector
from aetherflow.core.errors import ConnectorConfigError, ConnectorError
from tests.files.conftest import make_local, part_files
from tests.helpers import sha256_of


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def local(root):
    connector = make_local(root)
    yield connector
    connector.close()


def test_write_read_stat_and_exists(local, root):
    assert local.write_bytes("a.txt", b"hello") == 5
    assert (root / "a.txt").read_bytes() == b"hello"
    assert local.read_bytes("a.txt") == b"hello"
    entry = local.stat("a.txt")
    assert (entry.path, entry.name, entry.is_dir, entry.size) == ("a.txt", "a.txt", False, 5)
    assert local.exists("a.txt") and not local.exists("b.txt")
    assert part_files(root) == []


def test_fifty_megabyte_file_round_trips_with_identical_sha256(local, root, big_file, tmp_path):
    source, digest = big_file
    seen = []
    assert local.upload(source, "big.bin", progress=seen.append) == source.stat().st_size == sum(seen)
    assert sha256_of(root / "big.bin") == digest
    local.download("big.bin", tmp_path / "back.bin")
    assert sha256_of(tmp_path / "back.bin") == digest
    received = []
    local.download("big.bin", tmp_path / "again.bin", progress=received.append)
    assert sum(received) == source.stat().st_size and sha256_of(tmp_path / "again.bin") == digest
    assert part_files(tmp_path) == []


def test_unicode_nested_listing_with_pattern(local, root):
    for rel in ("é 1.csv", "b.txt", "sub dir/ü 2.csv", "sub dir/deeper/3.csv"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    assert [(e.path, e.is_dir) for e in local.list("")] == [("b.txt", False), ("sub dir", True), ("é 1.csv", False)]
    assert [e.path for e in local.list("", "*.csv", recursive=True)] == [
        "sub dir/deeper/3.csv",
        "sub dir/ü 2.csv",
        "é 1.csv",
    ]
    assert [e.name for e in local.list("sub dir", "*.csv")] == ["ü 2.csv"]


def test_paths_may_not_leave_the_root(local, root, tmp_path):
    (tmp_path / "outside.txt").write_text("secret")
    for path in ("../outside.txt", "a/../../outside.txt", str(tmp_path / "outside.txt")):
        with pytest.raises(ConnectorConfigError, match="outside root"):
            local.read_bytes(path)
    with pytest.raises(ConnectorConfigError, match="outside root"):
        local.write_bytes("../escape.txt", b"x")
    assert not (tmp_path / "escape.txt").exists()
    local.write_bytes(str(root / "inside.txt"), b"ok")
    assert (root / "inside.txt").read_bytes() == b"ok"


def test_upload_without_overwrite_keeps_the_existing_file(local, root):
    local.write_bytes("k.txt", b"original")
    with pytest.raises(ConnectorError, match="already exists"):
        local.write_bytes("k.txt", b"new", overwrite=False)
    assert (root / "k.txt").read_bytes() == b"original"
    assert part_files(root) == []


def test_upload_into_a_missing_directory_fails_cleanly(local, root):
    with pytest.raises(ConnectorError, match="no such file or directory"):
        local.write_bytes("nowhere/f.txt", b"x")
    assert list(root.iterdir()) == []


def test_mkdir_rename_delete(local, root):
    local.mkdir("a/b/c")
    local.mkdir("a/b/c")
    assert (root / "a/b/c").is_dir()
    with pytest.raises(ConnectorError):
        local.mkdir("x/y", parents=False)
    local.write_bytes("a/f", b"1")
    local.write_bytes("a/g", b"2")
    with pytest.raises(ConnectorError, match="already exists"):
        local.rename("a/f", "a/g")
    local.rename("a/f", "a/g", overwrite=True)
    assert (root / "a/g").read_bytes() == b"1" and not (root / "a/f").exists()
    local.rename("a/g", "a/h")
    local.delete("a/h")
    local.delete("a/b/c")
    assert sorted(os.listdir(root / "a")) == ["b"]
    with pytest.raises(ConnectorError, match="no such file"):
        local.delete("a/h")
    with pytest.raises(ConnectorConfigError, match="root directory"):
        local.delete("")


def test_a_missing_root_is_a_config_error(tmp_path):
    connector = LocalFilesConnector(config={"root": str(tmp_path / "missing")}, options={})
    connector.name = "local_test"
    with pytest.raises(ConnectorConfigError, match="is not a directory"):
        connector.check()


def test_open_read_streams(local, root):
    data = hashlib.sha256(b"x").digest() * 10000
    (root / "s.bin").write_bytes(data)
    with local.open_read("s.bin") as reader:
        assert reader.read(100) + reader.read() == data


@pytest.fixture
def outside(tmp_path):
    """A directory next to the root, with a file a symbolic link inside the root points to."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret.txt").write_bytes(b"not yours")
    return path


@pytest.fixture
def linked_root(root, outside):
    (root / "sub").mkdir()
    (root / "sub" / "ok.txt").write_bytes(b"fine")
    os.symlink(outside, root / "escape")  # a directory link leaving the root
    os.symlink(outside / "secret.txt", root / "secret.txt")  # a file link leaving the root
    os.symlink(root / "sub", root / "inner")  # a link that stays inside
    os.symlink("sub/ok.txt", root / "ok-link.txt")
    return root


def test_symbolic_links_out_of_the_root_are_refused_for_every_operation(local, linked_root, outside):
    operations = {
        "list a linked directory": lambda: local.list("escape"),
        "stat": lambda: local.stat("secret.txt"),
        "read": lambda: local.read_bytes("secret.txt"),
        "read through a linked directory": lambda: local.read_bytes("escape/secret.txt"),
        "download": lambda: local.download("secret.txt", str(linked_root.parent / "copy.txt")),
        "upload into a linked directory": lambda: local.write_bytes("escape/new.txt", b"planted"),
        "upload over a link": lambda: local.write_bytes("secret.txt", b"overwritten"),
        "delete through a linked directory": lambda: local.delete("escape/secret.txt"),
        "mkdir through a linked directory": lambda: local.mkdir("escape/made"),
        "rename out through a link": lambda: local.rename("sub/ok.txt", "escape/moved.txt"),
    }
    for what, operation in operations.items():
        with pytest.raises(ConnectorConfigError) as info:
            operation()
        assert "outside root" in str(info.value) and "symbolic link" in str(info.value), what
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    assert (outside / "secret.txt").read_bytes() == b"not yours"
    assert not (linked_root.parent / "copy.txt").exists()
    assert (linked_root / "sub" / "ok.txt").exists()


def test_links_that_stay_inside_the_root_work_and_links_out_are_not_listed(local, linked_root):
    assert local.read_bytes("inner/ok.txt") == b"fine"
    assert local.read_bytes("ok-link.txt") == b"fine"
    local.write_bytes("inner/new.txt", b"x")
    assert (linked_root / "sub" / "new.txt").read_bytes() == b"x"
    names = [entry.path for entry in local.list("", recursive=True)]
    assert "secret.txt" not in names and "escape" not in names
    assert {"inner", "ok-link.txt", "sub", "sub/ok.txt"} <= set(names)
