"""The files_* steps against the real smbd, and files_copy between SFTP, SMB and local
directories (called directly with a step context)."""

from __future__ import annotations

import hashlib
import os

import pytest

from aetherflow.core.connectors.builtin.fs_local import LocalFilesConnector
from aetherflow.core.connectors.builtin.sftp_paramiko import SFTPConnector
from aetherflow.core.errors import ConnectorError
from aetherflow.core.steps.base import STEP_SKIPPED, STEP_SUCCESS
from aetherflow.core.steps.registry import get_step
from tests.helpers import sha256_of, step_context
from tests.smb.support import make_connector, share_file


def run_step(type_name: str, ctx, **given):
    cls = get_step(type_name)
    return cls().run(ctx, cls.bind_inputs(given))


@pytest.fixture
def ctx(tmp_path, smb, sshd):
    sftp = SFTPConnector(config=sshd.config(), options={})
    sftp.name = "partner"
    local = LocalFilesConnector(config={"root": str(tmp_path / "landing")}, options={})
    local.name = "landing"
    (tmp_path / "landing").mkdir()
    context = step_context(tmp_path, connectors={"nas": smb, "partner": sftp, "landing": local})
    yield context
    sftp.close()
    local.close()


@pytest.fixture
def inbox(smbd, smb_dir):
    """A small tree on the share: two csv files (one nested, unicode name), a txt."""
    name, _ = smb_dir
    share_file(smbd, f"{name}/in/orders 1.csv", b"id\n1\n")
    share_file(smbd, f"{name}/in/région ü/orders 2.csv", b"id\n2\n")
    share_file(smbd, f"{name}/in/readme.txt", b"read me")
    return name


def test_files_list_on_smb_returns_files_and_skips_below_min_count(ctx, inbox):
    result = run_step("files_list", ctx, resource="nas", remote_dir=f"{inbox}/in", pattern="*.csv", recursive=True)
    assert result.status == STEP_SUCCESS
    assert [f["path"] for f in result.outputs["files"]] == [f"{inbox}/in/orders 1.csv", f"{inbox}/in/région ü/orders 2.csv"]
    assert result.outputs["files"][0]["size"] == 5
    skipped = run_step("files_list", ctx, resource="nas", remote_dir=f"{inbox}/in", pattern="*.parquet")
    assert skipped.status == STEP_SKIPPED and skipped.outputs == {"files": [], "count": 0, "has_data": False}


def test_files_download_from_smb_keeps_the_tree(ctx, inbox):
    listed = run_step("files_list", ctx, resource="nas", remote_dir=f"\\\\127.0.0.1\\share\\{inbox}\\in", recursive=True)
    result = run_step("files_download", ctx, resource="nas", files=listed.outputs["files"], dest_dir="fetched")
    fetched = ctx.workspace / "fetched"
    assert result.outputs["count"] == 3 and result.outputs["bytes"] == 5 + 5 + 7
    assert (fetched / "région ü" / "orders 2.csv").read_bytes() == b"id\n2\n"
    assert sorted(result.outputs["local_files"]) == sorted(
        str(fetched / n) for n in ("orders 1.csv", "readme.txt", "région ü/orders 2.csv")
    )


def test_files_upload_to_smb_creates_the_directory_and_respects_overwrite(ctx, smbd, smb_dir):
    name, local_dir = smb_dir
    (ctx.workspace / "out").mkdir()
    (ctx.workspace / "out" / "a b.csv").write_bytes(b"a")
    (ctx.workspace / "out" / "c.csv").write_bytes(b"cc")
    result = run_step("files_upload", ctx, resource="nas", local_files=["out/*.csv"], remote_dir=f"SHARE:/{name}/up/2024")
    assert result.outputs["count"] == 2 and result.outputs["bytes"] == 3
    assert (local_dir / "up" / "2024" / "a b.csv").read_bytes() == b"a"
    with pytest.raises(ConnectorError, match="overwrite is false"):
        run_step("files_upload", ctx, resource="nas", local_files="out/c.csv", remote_dir=f"{name}/up/2024", overwrite=False)


def test_files_delete_on_smb(ctx, inbox, smbd):
    listed = run_step("files_list", ctx, resource="nas", remote_dir=f"{inbox}/in", pattern="*.csv", recursive=True)
    result = run_step("files_delete", ctx, resource="nas", files=listed.outputs["files"])
    assert result.outputs["deleted"] == [f"{inbox}/in/orders 1.csv", f"{inbox}/in/région ü/orders 2.csv"]
    remaining = sorted(p.name for p in (smbd.share_dir / inbox).rglob("*") if p.is_file())
    assert remaining == ["readme.txt"]


def test_files_copy_sftp_to_smb_streams_a_50mb_file_and_a_tree(ctx, sshd, sftp_dir, smb_dir, big_file):
    sftp_name, sftp_local = sftp_dir
    name, local_dir = smb_dir
    source, digest = big_file
    (sftp_local / "outbox" / "nested ü").mkdir(parents=True)
    os.link(source, sftp_local / "outbox" / "big.bin")
    (sftp_local / "outbox" / "nested ü" / "small.txt").write_bytes(b"small")
    sshd.chown_to_user(sftp_local)

    result = run_step(
        "files_copy", ctx, source="partner", target="nas", remote_dir=f"{sftp_name}/outbox", recursive=True,
        target_dir=f"//127.0.0.1/share/{name}/incoming",
    )
    assert result.outputs["count"] == 2
    assert result.outputs["bytes"] == 50 * 1024 * 1024 + 5
    assert sha256_of(local_dir / "incoming" / "big.bin") == digest
    assert (local_dir / "incoming" / "nested ü" / "small.txt").read_bytes() == b"small"
    assert [p.name for p in (local_dir / "incoming").rglob("*.part-*")] == []


def test_files_copy_smb_to_local(ctx, inbox, tmp_path):
    listed = run_step("files_list", ctx, resource="nas", remote_dir=f"{inbox}/in", pattern="*.csv", recursive=True)
    result = run_step("files_copy", ctx, source="nas", target="landing", files=listed.outputs["files"], target_dir="copied")
    assert result.outputs["copied"] == ["copied/orders 1.csv", "copied/région ü/orders 2.csv"]
    assert (tmp_path / "landing" / "copied" / "région ü" / "orders 2.csv").read_bytes() == b"id\n2\n"


def test_files_copy_smb_to_sftp_and_back_is_byte_identical(ctx, smbd, sftp_dir, smb_dir):
    sftp_name, sftp_local = sftp_dir
    name, local_dir = smb_dir
    data = os.urandom(6 * 1024 * 1024 + 3)
    share_file(smbd, f"{name}/blob.bin", data)
    run_step("files_copy", ctx, source="nas", target="partner", files=[f"{name}/blob.bin"], target_dir=f"{sftp_name}/from-smb")
    assert (sftp_local / "from-smb" / "blob.bin").read_bytes() == data
    run_step("files_copy", ctx, source="partner", target="nas", files=[f"{sftp_name}/from-smb/blob.bin"], target_dir=f"{name}/back")
    assert hashlib.sha256((local_dir / "back" / "blob.bin").read_bytes()).digest() == hashlib.sha256(data).digest()


def test_a_step_failing_on_a_wrong_smb_password_carries_no_secret(tmp_path, smbd):
    wrong = "Wr0ng-S3cr3t-Pa55-xyz"
    connector = make_connector(smbd, password=wrong)
    context = step_context(tmp_path, connectors={"nas": connector})
    with pytest.raises(ConnectorError) as info:
        run_step("files_list", context, resource="nas", remote_dir="")
    assert "resource 'nas' (smb/smbprotocol)" in str(info.value) and "logon failure" in str(info.value)
    assert wrong not in str(info.value)
