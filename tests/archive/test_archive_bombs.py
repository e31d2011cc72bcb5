"""Archive bombs: extraction stops at max_total_bytes and max_ratio, before writing when
the entries' sizes already say so, and leaves nothing behind."""

from __future__ import annotations

import os
import tarfile
import zipfile

import pytest

from aetherflow.core.connectors.builtin.archive_tar import TarArchiveConnector
from aetherflow.core.connectors.builtin.archive_zipfile import ZipArchiveConnector
from aetherflow.core.errors import ConnectorError
from tests.archive.builders import files_under
from tests.helpers import run_cli, write_flow

MiB = 1024 * 1024
ZEROS = b"\0" * MiB


def named(connector):
    connector.name = "bundle"
    return connector


def zip_bomb(path, mebibytes: int, entries: int = 1):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for n in range(entries):
            with zf.open(f"zeros-{n}.bin", "w", force_zip64=True) as fh:
                for _ in range(mebibytes):
                    fh.write(ZEROS)
    return path


class Zeros:
    def __init__(self, size):
        self.left = size

    def read(self, n=-1):
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return b"\0" * n


def tar_bomb(path, mebibytes: int):
    with tarfile.open(path, "w:gz", compresslevel=9) as tf:
        info = tarfile.TarInfo("zeros.bin")
        info.size = mebibytes * MiB
        tf.addfile(info, Zeros(info.size))
    return path


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_a_bomb_is_refused_by_its_ratio_before_anything_is_written(jail, fmt):
    root, dest = jail
    archive = root.parent / f"bomb.{fmt}"
    connector = named(ZipArchiveConnector(config={}, options={}) if fmt == "zip" else TarArchiveConnector(config={}, options={}))
    (zip_bomb if fmt == "zip" else tar_bomb)(archive, 256)
    size = archive.stat().st_size
    assert 256 * MiB / size > 200, size
    with pytest.raises(ConnectorError) as info:
        connector.extract(archive, dest)
    message = str(info.value)
    assert "expands to" in message and "max_ratio" in message
    assert info.value.hint and "max_ratio" in info.value.hint
    assert files_under(root) == [] and os.listdir(dest) == []


def test_max_total_bytes_bounds_an_archive_that_compresses_normally(jail):
    root, dest = jail
    archive = root.parent / "data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for n in range(5):
            zf.writestr(f"part-{n}.bin", os.urandom(300_000))
    connector = named(ZipArchiveConnector(config={}, options={}))
    with pytest.raises(ConnectorError) as info:
        connector.extract(archive, dest, max_total_bytes=1_000_000)
    assert "max_total_bytes=1,000,000" in str(info.value)
    assert files_under(root) == [] and os.listdir(dest) == []
    assert connector.extract(archive, dest, max_total_bytes=2_000_000) == [f"part-{n}.bin" for n in range(5)]


def test_a_small_archive_may_compress_well(jail):
    root, dest = jail
    archive = zip_bomb(root.parent / "small.zip", 8)  # 8 MiB of zeros: a ratio of about 1000
    assert named(ZipArchiveConnector(config={}, options={})).extract(archive, dest) == ["zeros-0.bin"]
    assert (dest / "zeros-0.bin").stat().st_size == 8 * MiB


def test_the_written_bytes_are_counted_too_when_sizes_are_not_declared(jail, monkeypatch):
    # A format that does not know its entries' sizes (a plugin, a stream) is stopped while writing.
    root, dest = jail
    archive = zip_bomb(root.parent / "undeclared.zip", 64)
    connector = named(ZipArchiveConnector(config={}, options={}))
    read_members = ZipArchiveConnector._read_members

    def without_sizes(self, handle):
        for member in read_members(self, handle):
            member.size = None
            yield member

    monkeypatch.setattr(ZipArchiveConnector, "_read_members", without_sizes)
    with pytest.raises(ConnectorError) as info:
        connector.extract(archive, dest, max_total_bytes=20 * MiB, max_ratio=1_000_000)
    assert "max_total_bytes" in str(info.value)
    assert files_under(root) == [] and os.listdir(dest) == []


def test_archive_extract_takes_the_limits_as_inputs(tmp_path, cli_env):
    work = tmp_path / "data"
    work.mkdir()
    zip_bomb(work / "bomb.zip", 64)
    flow = write_flow(tmp_path / "flow.yaml", f"""
version: 1
flow: {{id: bombs}}
jobs:
  - id: a
    steps:
      - {{id: strict, type: archive_extract, inputs: {{archive: "{work}/bomb.zip", dest_dir: out, max_ratio: 10}}}}
  - id: b
    steps:
      - {{id: lenient, type: archive_extract, inputs: {{archive: "{work}/bomb.zip", dest_dir: out, max_ratio: 100000, max_total_bytes: 100000000}}}}
""")
    result = run_cli("run", flow, "--json", env=cli_env)
    assert result.exit_code == 1, result.output
    jobs = {job["id"]: job for job in result.json["jobs"]}
    assert "max_ratio" in jobs["a"]["steps"][0]["error"]
    assert jobs["b"]["status"] == "SUCCESS"
    assert jobs["b"]["steps"][0]["outputs"]["count"] == 1
