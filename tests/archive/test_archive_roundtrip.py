"""``create`` then ``extract`` gives back the same tree, for every format and compression."""

from __future__ import annotations

import hashlib
import os
import tarfile
import zipfile

import pytest

from aetherflow.core.connectors.builtin.archive_tar import TarArchiveConnector
from aetherflow.core.connectors.builtin.archive_zipfile import ZipArchiveConnector
from aetherflow.core.errors import ConnectorConfigError, ConnectorError


def tree_digest(root) -> dict[str, str]:
    """``relative path -> sha256`` of every file, ``"<dir>"`` for every directory."""
    result = {}
    for base, dirs, files in os.walk(root):
        for name in dirs:
            result[os.path.relpath(os.path.join(base, name), root)] = "<dir>"
        for name in files:
            path = os.path.join(base, name)
            with open(path, "rb") as fh:
                result[os.path.relpath(path, root)] = hashlib.sha256(fh.read()).hexdigest()
    return result


@pytest.fixture(scope="module")
def source_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree") / "data"
    (root / "nested" / "deeper" / "deepest").mkdir(parents=True)
    (root / "empty dir").mkdir()
    (root / "plain.txt").write_text("plain\n")
    (root / "with space.csv").write_text("a,b\n1,2\n")
    (root / "nested" / "ünïcødé-名前.txt").write_text("unicode name\n", encoding="utf-8")
    (root / "nested" / "deeper" / "deepest" / "empty.bin").write_bytes(b"")
    (root / "nested" / "deeper" / "random.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    return root


CASES = [
    ("zip", {"compression": "deflated"}, "out.zip", None),
    ("zip", {"compression": "stored"}, "out.zip", None),
    ("zip", {"compression": "bzip2", "level": 1}, "out.zip", None),
    ("zip", {"compression": "lzma"}, "out.zip", None),
    ("tar", {"compression": "none"}, "out.tar", "r:"),
    ("tar", {"compression": "gz"}, "out.tar.gz", "r:gz"),
    ("tar", {"compression": "bz2", "level": 1}, "out.tar.bz2", "r:bz2"),
    ("tar", {"compression": "xz", "level": 0}, "out.tar.xz", "r:xz"),
]


@pytest.mark.parametrize(("fmt", "config", "name", "tar_mode"), CASES, ids=[f"{c[0]}-{c[1]['compression']}" for c in CASES])
def test_round_trip_restores_every_file_and_directory(tmp_path, source_tree, fmt, config, name, tar_mode):
    connector = (ZipArchiveConnector if fmt == "zip" else TarArchiveConnector)(config=config, options={})
    output = tmp_path / "archives" / name
    result = connector.create(output, [source_tree], base_dir=source_tree.parent)

    assert result == {"path": str(output), "count": 5, "bytes": output.stat().st_size}
    assert sorted(os.listdir(output.parent)) == [name]  # no temporary file left
    if tar_mode:
        with tarfile.open(output, tar_mode) as tf:  # really written with that compression
            assert "data/plain.txt" in tf.getnames()
    else:
        with zipfile.ZipFile(output) as zf:
            assert {i.compress_type for i in zf.infolist() if not i.is_dir()} == {
                {"deflated": zipfile.ZIP_DEFLATED, "stored": zipfile.ZIP_STORED, "bzip2": zipfile.ZIP_BZIP2, "lzma": zipfile.ZIP_LZMA}[config["compression"]]
            }

    dest = tmp_path / "dest"
    names = connector.extract(output, dest)
    assert sorted(names) == sorted(
        ["data/plain.txt", "data/with space.csv", "data/nested/ünïcødé-名前.txt", "data/nested/deeper/random.bin",
         "data/nested/deeper/deepest/empty.bin"]
    )
    assert tree_digest(dest / "data") == tree_digest(source_tree)
    assert [p for p in os.listdir(dest) if p.startswith(".")] == []  # staging directory gone


def test_without_base_dir_each_path_is_stored_under_its_own_name(tmp_path, source_tree):
    connector = ZipArchiveConnector(config={}, options={})
    result = connector.create(tmp_path / "x.zip", [source_tree / "plain.txt", source_tree / "nested" / "deeper"])
    with zipfile.ZipFile(result["path"]) as zf:
        names = zf.namelist()
    assert "plain.txt" in names
    assert "deeper/random.bin" in names
    assert "deeper/deepest/empty.bin" in names


def test_extracting_again_replaces_files_and_keeps_other_content(tmp_path, source_tree):
    connector = TarArchiveConnector(config={"compression": "gz"}, options={})
    archive = connector.create(tmp_path / "x.tgz", [source_tree], base_dir=source_tree.parent)["path"]
    dest = tmp_path / "dest"
    (dest / "data").mkdir(parents=True)
    (dest / "data" / "plain.txt").write_text("old content")
    (dest / "data" / "keep.me").write_text("mine")
    connector.extract(archive, dest)
    assert (dest / "data" / "plain.txt").read_text() == "plain\n"
    assert (dest / "data" / "keep.me").read_text() == "mine"


def test_members_selects_files_and_whole_directories(tmp_path, source_tree):
    connector = ZipArchiveConnector(config={}, options={})
    archive = connector.create(tmp_path / "x.zip", [source_tree], base_dir=source_tree.parent)["path"]
    names = connector.extract(archive, tmp_path / "dest", members=["data/plain.txt", "data/nested/deeper"])
    assert sorted(names) == ["data/nested/deeper/deepest/empty.bin", "data/nested/deeper/random.bin", "data/plain.txt"]
    assert not (tmp_path / "dest" / "data" / "with space.csv").exists()


def test_file_outside_base_dir_is_refused_and_nothing_is_written(tmp_path, source_tree):
    connector = TarArchiveConnector(config={}, options={})
    with pytest.raises(ConnectorError, match="is not under base_dir"):
        connector.create(tmp_path / "out" / "x.tar.gz", [source_tree / "plain.txt"], base_dir=source_tree / "nested")
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


def test_invalid_compression_level_is_a_config_error_and_writes_nothing(tmp_path, source_tree):
    connector = ZipArchiveConnector(config={"compression": "deflated", "level": 42}, options={})
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ConnectorConfigError, match="level 42 is not valid for deflated"):
        connector.create(out / "x.zip", [source_tree])
    assert os.listdir(out) == []


def test_create_failing_midway_leaves_neither_archive_nor_temporary_file(tmp_path, source_tree, monkeypatch):
    written = []
    real_write = zipfile.ZipFile.write

    def write_then_fail(self, filename, arcname=None, *args, **kwargs):
        if written:
            raise OSError(5, "Input/output error")
        written.append(arcname)
        return real_write(self, filename, arcname, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "write", write_then_fail)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ConnectorError, match="create archive .*x.zip.* failed: .*Input/output error"):
        ZipArchiveConnector(config={}, options={}).create(out / "x.zip", [source_tree])
    assert written
    assert os.listdir(out) == []


def test_archiving_a_directory_that_contains_the_output_skips_the_output(tmp_path, source_tree):
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "sub" / "a.txt").write_text("a")
    connector = ZipArchiveConnector(config={}, options={})
    result = connector.create(work / "self.zip", [work], base_dir=work)
    with zipfile.ZipFile(result["path"]) as zf:
        assert sorted(zf.namelist()) == ["sub/", "sub/a.txt"]


def test_symlinks_in_the_input_are_followed(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (tmp_path / "real.txt").write_text("real data")
    (src / "alias.txt").symlink_to(tmp_path / "real.txt")
    connector = TarArchiveConnector(config={"compression": "none"}, options={})
    archive = connector.create(tmp_path / "x.tar", [src], base_dir=src)["path"]
    with tarfile.open(archive) as tf:
        member = tf.getmember("alias.txt")
        assert member.isreg()
        assert tf.extractfile(member).read() == b"real data"
