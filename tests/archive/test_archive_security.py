"""Extraction treats archives as hostile: nothing may land outside ``dest_dir``, the
error names the refused entry, and a refused archive leaves nothing behind."""

from __future__ import annotations

import os
import stat
import tarfile

import pytest

from aetherflow.core.connectors.builtin.archive_tar import TarArchiveConnector
from aetherflow.core.connectors.builtin.archive_zipfile import ZipArchiveConnector
from aetherflow.core.errors import ConnectorError
from tests.archive.builders import files_under, tar_link, tar_special, tar_with, zip_symlink, zip_with


def zip_connector():
    connector = ZipArchiveConnector(config={}, options={})
    connector.name = "bundle"
    return connector


def tar_connector():
    connector = TarArchiveConnector(config={}, options={})
    connector.name = "bundle"
    return connector


def assert_refused(connector, archive, dest, root, entry: str, reason: str):
    with pytest.raises(ConnectorError) as info:
        connector.extract(archive, dest)
    message = str(info.value)
    assert f"refusing entry {entry!r}" in message
    assert reason in message
    assert "resource 'bundle' (archive/" in message
    # Nothing anywhere: not outside, not inside, no staging directory left over.
    assert files_under(root) == []
    assert os.listdir(dest) == []


# -- zip -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil.txt", "'..' component"),
        ("good/../../evil.txt", "'..' component"),
        ("..\\..\\evil.txt", "'..' component"),
        ("/tmp/evil.txt", "absolute path"),
        ("C:/evil.txt", "absolute path"),
    ],
)
def test_zip_entry_escaping_by_name_is_refused_and_nothing_is_extracted(tmp_path, jail, name, reason):
    root, dest = jail
    archive = zip_with(tmp_path / "evil.zip", [("first.txt", b"harmless"), (name, b"pwned")])
    assert_refused(zip_connector(), archive, dest, root, name, reason)


@pytest.mark.parametrize("target", ["../../../outside.txt", "/etc/passwd", "../sub/../../x"])
def test_zip_symlink_pointing_outside_is_refused(tmp_path, jail, target):
    root, dest = jail
    archive = zip_with(tmp_path / "link.zip", [("data.txt", b"x"), zip_symlink("sub/link", target)])
    assert_refused(zip_connector(), archive, dest, root, "sub/link", "points outside the destination")


def test_zip_symlink_inside_the_destination_is_extracted_as_a_link(tmp_path, jail):
    _root, dest = jail
    archive = zip_with(tmp_path / "link.zip", [("data/file.txt", b"payload"), zip_symlink("shortcut", "data/file.txt")])
    names = zip_connector().extract(archive, dest)
    assert names == ["data/file.txt", "shortcut"]
    assert os.readlink(dest / "shortcut") == "data/file.txt"
    assert (dest / "shortcut").read_bytes() == b"payload"


def test_zip_device_entry_is_refused(tmp_path, jail):
    root, dest = jail
    archive = zip_with(tmp_path / "dev.zip", [("null", b"", stat.S_IFCHR | 0o666)])
    assert_refused(zip_connector(), archive, dest, root, "null", "special file")


def test_zip_entry_modes_never_grant_setuid_or_world_write(tmp_path, jail):
    _, dest = jail
    archive = zip_with(tmp_path / "modes.zip", [("tool", b"#!/bin/sh\n", stat.S_IFREG | 0o4777)])
    zip_connector().extract(archive, dest)
    assert stat.S_IMODE(os.stat(dest / "tool").st_mode) == 0o755


# -- tar -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [("../evil.txt", "'..' component"), ("a/../../../evil.txt", "'..' component"), ("/etc/evil.txt", "absolute path")],
)
def test_tar_entry_escaping_by_name_is_refused_and_nothing_is_extracted(tmp_path, jail, name, reason):
    root, dest = jail
    archive = tar_with(tmp_path / "evil.tar", [("first.txt", b"harmless"), (name, b"pwned")])
    assert_refused(tar_connector(), archive, dest, root, name, reason)


@pytest.mark.parametrize("target", ["../../escape", "/etc", "x/../../.."])
def test_tar_symlink_pointing_outside_is_refused(tmp_path, jail, target):
    root, dest = jail
    archive = tar_with(tmp_path / "link.tar.gz", [("ok.txt", b"ok"), tar_link("link", target)], mode="w:gz")
    assert_refused(tar_connector(), archive, dest, root, "link", "points outside the destination")


def test_tar_symlink_chain_escaping_through_another_link_is_refused(tmp_path, jail):
    # Each link looks harmless alone: "a" -> "." and "b" -> "a/.." (lexically ".").
    # On disk "b" resolves to the parent of the destination.
    root, dest = jail
    archive = tar_with(tmp_path / "chain.tar", [("ok.txt", b"ok"), tar_link("a", "."), tar_link("b", "a/..")])
    assert_refused(tar_connector(), archive, dest, root, "b", "points outside the destination")


def test_tar_file_written_through_its_own_symlink_is_refused(tmp_path, jail):
    root, dest = jail
    archive = tar_with(tmp_path / "through.tar", [tar_link("link", "sub"), ("link/payload.txt", b"x")])
    assert_refused(tar_connector(), archive, dest, root, "link", "conflicts with another entry")


@pytest.mark.parametrize("target", ["../../../../etc/passwd", "/etc/passwd", "missing.txt"])
def test_tar_hardlink_outside_or_to_nothing_is_refused(tmp_path, jail, target):
    root, dest = jail
    archive = tar_with(tmp_path / "hard.tar", [("ok.txt", b"ok"), tar_link("hard", target, tarfile.LNKTYPE)])
    with pytest.raises(ConnectorError) as info:
        tar_connector().extract(archive, dest)
    assert "refusing entry 'hard'" in str(info.value)
    assert files_under(root) == []


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_tar_device_and_fifo_entries_are_refused(tmp_path, jail, kind):
    root, dest = jail
    archive = tar_with(tmp_path / "dev.tar", [("ok.txt", b"ok"), tar_special("dev/thing", kind)])
    assert_refused(tar_connector(), archive, dest, root, "dev/thing", "special file")


def test_tar_hardlink_to_an_earlier_file_is_extracted_as_a_link(tmp_path, jail):
    _, dest = jail
    archive = tar_with(tmp_path / "hard.tar", [("data.txt", b"same"), tar_link("copy.txt", "data.txt", tarfile.LNKTYPE)])
    assert tar_connector().extract(archive, dest) == ["data.txt", "copy.txt"]
    assert os.stat(dest / "data.txt").st_ino == os.stat(dest / "copy.txt").st_ino


def test_tar_hardlink_whose_target_is_not_selected_gets_the_data(tmp_path, jail):
    _, dest = jail
    archive = tar_with(tmp_path / "hard.tar", [("data.txt", b"same"), tar_link("copy.txt", "data.txt", tarfile.LNKTYPE)])
    assert tar_connector().extract(archive, dest, members=["copy.txt"]) == ["copy.txt"]
    assert (dest / "copy.txt").read_bytes() == b"same"
    assert not (dest / "data.txt").exists()


# -- the destination's own links -------------------------------------------------------


def test_extraction_never_writes_through_a_symlink_already_in_the_destination(tmp_path, jail):
    _root, dest = jail
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (dest / "data").symlink_to(elsewhere)
    archive = zip_with(tmp_path / "a.zip", [("data/x.txt", b"x")])
    with pytest.raises(ConnectorError, match="refusing entry 'data'.*not a directory"):
        zip_connector().extract(archive, dest)
    assert os.listdir(elsewhere) == []


def test_archive_link_redirected_by_a_destination_link_is_removed_and_refused(tmp_path, jail):
    _root, dest = jail
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (dest / "out").symlink_to(elsewhere)
    archive = tar_with(tmp_path / "a.tar", [tar_link("peek", "out/secret")])
    with pytest.raises(ConnectorError, match="refusing entry 'peek'"):
        tar_connector().extract(archive, dest)
    assert not os.path.lexists(dest / "peek")


def test_unknown_member_is_an_error_naming_it(tmp_path, jail):
    _, dest = jail
    archive = zip_with(tmp_path / "a.zip", [("a.txt", b"a")])
    with pytest.raises(ConnectorError, match="member 'b.txt' is not in archive"):
        zip_connector().extract(archive, dest, members=["b.txt"])


def test_corrupt_archive_is_a_clear_error(tmp_path, jail):
    _, dest = jail
    bogus = tmp_path / "bogus.zip"
    bogus.write_bytes(b"this is not a zip file at all")
    with pytest.raises(ConnectorError, match="read archive .*bogus.zip.* failed"):
        zip_connector().extract(bogus, dest)


def test_an_entry_stored_twice_is_extracted_once_with_the_later_content(tmp_path, jail):
    _, dest = jail
    archive = tar_with(tmp_path / "twice.tar", [("a.txt", b"old"), ("a.txt", b"new")])
    assert tar_connector().extract(archive, dest) == ["a.txt"]
    assert (dest / "a.txt").read_bytes() == b"new"


def test_zip_directory_marked_only_by_its_mode_bits_is_a_directory(tmp_path, jail):
    _, dest = jail
    archive = zip_with(tmp_path / "dir.zip", [("folder", b"", stat.S_IFDIR | 0o755), ("folder/x.txt", b"x")])
    assert zip_connector().extract(archive, dest) == ["folder/x.txt"]
    assert (dest / "folder").is_dir()
