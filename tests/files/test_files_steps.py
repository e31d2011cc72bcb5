"""The ``files_*`` steps called directly, against the real sshd and local directories."""

from __future__ import annotations

import os

import pytest

from aetherflow.core.api import RemoteFile, RemoteFilesConnector
from aetherflow.core.errors import ConnectorError, StepError, StepInputError
from aetherflow.core.steps.base import STEP_SKIPPED, STEP_SUCCESS
from aetherflow.core.steps.builtin.files import (
    FilesCopy,
    FilesDelete,
    FilesDownload,
    FilesList,
    FilesUpload,
    relative_names,
)
from tests.files.conftest import make_local, make_sftp, part_files, server_file
from tests.helpers import sha256_of, step_context
from tests.services.sshd import TEST_PASSWORD


class RecordingBar:
    def __init__(self, description, total, unit):
        self.description, self.total, self.unit = description, total, unit
        self.advanced, self.closed = 0, False

    def advance(self, amount=1):
        self.advanced += amount

    def close(self):
        self.closed = True


class RecordingProgress:
    """A ``ctx.progress`` factory that keeps every bar it made."""

    def __init__(self):
        self.bars = []

    def __call__(self, description, total=None, unit=""):
        self.bars.append(RecordingBar(description, total, unit))
        return self.bars[-1]


def run(step_cls, ctx, **inputs):
    return step_cls().run(ctx, step_cls.bind_inputs(inputs))


@pytest.fixture
def ctx(tmp_path, sftp):
    local_root = tmp_path / "local"
    local_root.mkdir()
    context = step_context(tmp_path, connectors={"sftp_test": sftp, "local_test": make_local(local_root)})
    context.progress_factory = RecordingProgress()
    return context


@pytest.fixture
def inbox(sshd, sftp_dir):
    """A remote tree: 2 csv at the top, one nested, one txt."""
    name, local = sftp_dir
    for rel, data in (("a.csv", b"a" * 10), ("b.csv", b"b" * 20), ("sub/c.csv", b"c" * 30), ("note.txt", b"n")):
        server_file(sshd, local / rel, data)
    return name, local


def test_files_list_returns_files_only_and_skips_below_min_count(ctx, inbox):
    name, _ = inbox
    result = run(FilesList, ctx, resource="sftp_test", remote_dir=name, pattern="*.csv")
    assert result.status == STEP_SUCCESS
    assert result.outputs["count"] == 2 and result.outputs["has_data"] is True
    assert [f["path"] for f in result.outputs["files"]] == [f"{name}/a.csv", f"{name}/b.csv"]
    assert set(result.outputs["files"][0]) == {"path", "name", "is_dir", "size", "mtime"}

    nested = run(FilesList, ctx, resource="sftp_test", remote_dir=name, pattern="*.csv", recursive=True)
    assert nested.outputs["count"] == 3

    few = run(FilesList, ctx, resource="sftp_test", remote_dir=name, pattern="*.csv", min_count=5)
    assert few.status == STEP_SKIPPED
    assert few.outputs["count"] == 2 and few.outputs["has_data"] is False and len(few.outputs["files"]) == 2

    none = run(FilesList, ctx, resource="sftp_test", remote_dir=name, pattern="*.xml")
    assert none.status == STEP_SKIPPED and none.outputs == {"files": [], "count": 0, "has_data": False}


def test_files_download_keeps_the_tree_below_the_common_directory(ctx, inbox):
    name, _ = inbox
    listed = run(FilesList, ctx, resource="sftp_test", remote_dir=name, pattern="*.csv", recursive=True)
    result = run(FilesDownload, ctx, resource="sftp_test", files=listed.outputs["files"], dest_dir="in")
    dest = ctx.workspace / "in"
    assert result.outputs == {
        "local_files": [str(dest / "a.csv"), str(dest / "b.csv"), str(dest / "sub" / "c.csv")],
        "count": 3,
        "bytes": 60,
    }
    assert (dest / "sub" / "c.csv").read_bytes() == b"c" * 30
    [bar] = ctx.progress_factory.bars
    assert bar.unit == "B" and bar.total == 60 and bar.advanced == 60 and bar.closed
    assert part_files(dest) == []


def test_files_download_accepts_plain_paths(ctx, inbox):
    name, _ = inbox
    result = run(FilesDownload, ctx, resource="sftp_test", files=f"{name}/sub/c.csv", dest_dir="one")
    assert result.outputs["local_files"] == [str(ctx.workspace / "one" / "c.csv")]
    with pytest.raises(ConnectorError, match="no such file"):
        run(FilesDownload, ctx, resource="sftp_test", files=[f"{name}/missing.csv"], dest_dir="one")
    with pytest.raises(StepError, match="is a directory"):
        run(FilesDownload, ctx, resource="sftp_test", files=[f"{name}/sub"], dest_dir="one")


def test_a_remote_name_with_backslashes_cannot_escape_the_download_directory(sshd, ctx, sftp_dir):
    name, local = sftp_dir
    # A legal file name on a POSIX server, a path on Windows-minded code.
    server_file(sshd, local / "..\\..\\evil.txt", b"evil")
    server_file(sshd, local / "fine.txt", b"fine")
    listed = run(FilesList, ctx, resource="sftp_test", remote_dir=name)
    assert {f["name"] for f in listed.outputs["files"]} == {"..\\..\\evil.txt", "fine.txt"}
    with pytest.raises(StepError, match="refusing remote name"):
        run(FilesDownload, ctx, resource="sftp_test", files=listed.outputs["files"], dest_dir="dl")
    assert not (ctx.workspace / "dl").exists()  # refused before anything was written
    assert not (ctx.workspace.parent / "evil.txt").exists()


def test_a_dotdot_path_cannot_escape_the_download_directory(sshd, ctx, sftp_dir):
    name, local = sftp_dir
    server_file(sshd, local / "in" / "a.txt", b"a")
    server_file(sshd, local / "x", b"outside the inbox")
    files = [f"{name}/in/a.txt", f"{name}/in/../../{name}/x"]
    with pytest.raises(StepError, match=r"refusing remote name '\.\./\.\./"):
        run(FilesDownload, ctx, resource="sftp_test", files=files, dest_dir="dl")
    assert not (ctx.workspace / "dl").exists()


class LyingServer(RemoteFilesConnector):
    """A files connector whose listing carries hostile names, as a malicious server's could."""

    kind, driver = "fs", "lying"

    def list(self, dir="", pattern="*", recursive=False):
        return [RemoteFile(f"{dir}/../../x", "../../x", False, 1, 0.0), RemoteFile("/etc/passwd", "passwd", False, 1, 0.0)]

    def stat(self, path):
        return RemoteFile(path, path.rsplit("/", 1)[-1], False, 1, 0.0)

    def download(self, path, local, *, progress=None):
        self.downloaded.append(str(local))
        with open(local, "wb") as fh:
            return fh.write(b"x")


def test_hostile_names_in_a_listing_are_refused_before_any_download(tmp_path):
    lying = LyingServer(config={}, options={})
    lying.downloaded = []
    ctx = step_context(tmp_path, connectors={"evil": lying})
    listed = run(FilesList, ctx, resource="evil", remote_dir="inbox")
    with pytest.raises(StepError, match=r"refusing remote name 'inbox/\.\./\.\./x'"):
        run(FilesDownload, ctx, resource="evil", files=listed.outputs["files"], dest_dir="dl")
    assert lying.downloaded == []
    # Alone, a file keeps only its last name: it lands inside dest_dir whatever its path.
    result = run(FilesDownload, ctx, resource="evil", files=[listed.outputs["files"][0]], dest_dir="dl")
    assert result.outputs["local_files"] == lying.downloaded == [str(ctx.workspace / "dl" / "x")]


def test_relative_names_keep_the_tree_below_the_common_directory():
    assert relative_names(["in/a", "in/sub/b"]) == ["a", "sub/b"]
    assert relative_names(["in/a"]) == ["a"]
    assert relative_names(["/data/x/a", "/data/y/b"]) == ["x/a", "y/b"]
    assert relative_names(["in/sub/a"], base="in") == ["sub/a"]
    assert relative_names(["a", "b"], base="") == ["a", "b"]


def test_files_upload_globs_relative_to_the_workspace(ctx, sftp_dir):
    name, local = sftp_dir
    out = ctx.workspace / "out"
    out.mkdir()
    for file_name, data in (("r1.csv", b"1"), ("r2.csv", b"22"), ("skip.log", b"x")):
        (out / file_name).write_bytes(data)
    result = run(FilesUpload, ctx, resource="sftp_test", local_files=["out/*.csv"], remote_dir=f"{name}/up/daily")
    assert result.status == STEP_SUCCESS
    assert result.outputs == {"uploaded": [f"{name}/up/daily/r1.csv", f"{name}/up/daily/r2.csv"], "count": 2, "bytes": 3}
    assert (local / "up" / "daily" / "r2.csv").read_bytes() == b"22"
    [bar] = ctx.progress_factory.bars
    assert bar.total == 3 and bar.advanced == 3 and bar.unit == "B"

    with pytest.raises(ConnectorError, match="exists"):
        run(FilesUpload, ctx, resource="sftp_test", local_files="out/r1.csv", remote_dir=f"{name}/up/daily", overwrite=False)
    assert part_files(local) == []


def test_files_upload_skips_when_globs_match_nothing_and_fails_on_a_missing_path(ctx, sftp_dir):
    name, _ = sftp_dir
    result = run(FilesUpload, ctx, resource="sftp_test", local_files=["nothing/*.csv"], remote_dir=name)
    assert result.status == STEP_SKIPPED and result.outputs == {"uploaded": [], "count": 0, "bytes": 0}
    with pytest.raises(StepError, match="does not exist"):
        run(FilesUpload, ctx, resource="sftp_test", local_files=["missing.csv"], remote_dir=name)
    with pytest.raises(StepError, match="escapes the job workspace"):
        run(FilesUpload, ctx, resource="sftp_test", local_files=["../*.csv"], remote_dir=name)


def test_files_delete_takes_entries_or_paths(ctx, inbox):
    name, local = inbox
    listed = run(FilesList, ctx, resource="sftp_test", remote_dir=name, pattern="*.csv")
    result = run(FilesDelete, ctx, resource="sftp_test", files=listed.outputs["files"] + [f"{name}/note.txt"])
    assert result.outputs == {"deleted": [f"{name}/a.csv", f"{name}/b.csv", f"{name}/note.txt"]}
    assert sorted(p.name for p in local.iterdir()) == ["sub"]
    with pytest.raises(ConnectorError, match="delete"):
        run(FilesDelete, ctx, resource="sftp_test", files=[f"{name}/a.csv"])
    gone = run(FilesDelete, ctx, resource="sftp_test", files=[f"{name}/a.csv"], missing_ok=True)
    assert gone.outputs == {"deleted": []}


def test_files_copy_from_sftp_to_local_keeps_the_tree_below_remote_dir(ctx, inbox, big_file, sshd):
    name, local = inbox
    source, digest = big_file
    server_file(sshd, local / "sub" / "big.bin", source.read_bytes())
    result = run(
        FilesCopy, ctx, source="sftp_test", target="local_test", remote_dir=name, recursive=True, target_dir="landing/today"
    )
    root = ctx.workspace.parent / "local" / "landing" / "today"
    assert result.outputs["count"] == 5
    assert result.outputs["copied"] == [
        "landing/today/a.csv",
        "landing/today/b.csv",
        "landing/today/note.txt",
        "landing/today/sub/big.bin",
        "landing/today/sub/c.csv",
    ]
    assert result.outputs["bytes"] == 61 + source.stat().st_size
    assert sha256_of(root / "sub" / "big.bin") == digest
    assert (root / "sub" / "c.csv").read_bytes() == b"c" * 30
    [bar] = ctx.progress_factory.bars
    assert bar.total == bar.advanced == result.outputs["bytes"] and bar.closed
    assert part_files(root) == []


def test_files_copy_with_entries_and_back_from_local_to_sftp(ctx, inbox):
    name, local = inbox
    listed = run(FilesList, ctx, resource="sftp_test", remote_dir=name, pattern="*.csv")
    copied = run(FilesCopy, ctx, source="sftp_test", target="local_test", files=listed.outputs["files"], target_dir="x")
    assert copied.outputs["copied"] == ["x/a.csv", "x/b.csv"]
    back = run(FilesCopy, ctx, source="local_test", target="sftp_test", remote_dir="x", pattern="a*", target_dir=f"{name}/back")
    assert back.outputs == {"copied": [f"{name}/back/a.csv"], "count": 1, "bytes": 10}
    assert (local / "back" / "a.csv").read_bytes() == b"a" * 10
    with pytest.raises(ConnectorError, match="exists"):
        run(FilesCopy, ctx, source="local_test", target="sftp_test", remote_dir="x", pattern="a*", target_dir=f"{name}/back", overwrite=False)


def test_files_copy_needs_files_or_remote_dir(ctx):
    with pytest.raises(StepInputError, match="remote_dir"):
        run(FilesCopy, ctx, source="sftp_test", target="local_test", target_dir="x")


def test_a_resource_that_is_not_a_files_connector_is_refused_clearly(tmp_path):
    from aetherflow.core.connectors.base import ConnectorBase

    class Other(ConnectorBase):
        kind, driver = "db", "sqlite3"

    ctx = step_context(tmp_path, connectors={"db": Other(config={}, options={})})
    with pytest.raises(StepError, match=r"resource 'db' \(db/sqlite3\) is not a files connector"):
        run(FilesList, ctx, resource="db", remote_dir="")


def test_a_step_error_from_a_wrong_password_carries_no_secret(tmp_path, sshd):
    connector = make_sftp(sshd, password="Wr0ng-Pa55-xyz")
    ctx = step_context(tmp_path, connectors={"sftp_test": connector})
    with pytest.raises(ConnectorError) as info:
        run(FilesList, ctx, resource="sftp_test", remote_dir="")
    assert "Wr0ng-Pa55-xyz" not in str(info.value) and TEST_PASSWORD not in str(info.value)
    assert "authentication" in str(info.value)


def test_files_copy_within_one_sftp_resource(sshd, ctx, sftp_dir):
    name, local = sftp_dir
    data = bytes(range(256)) * 4096 * 3
    server_file(sshd, local / "src" / "a.bin", data)
    server_file(sshd, local / "src" / "b.bin", data[::-1])
    result = run(FilesCopy, ctx, source="sftp_test", target="sftp_test", remote_dir=f"{name}/src", target_dir=f"{name}/backup")
    assert result.outputs["copied"] == [f"{name}/backup/a.bin", f"{name}/backup/b.bin"]
    assert (local / "backup" / "a.bin").read_bytes() == data and (local / "backup" / "b.bin").read_bytes() == data[::-1]


@pytest.mark.parametrize("name", ["../x", "..\\x", "a/../../b", "/etc/passwd", "\\\\server\\share\\x", "C:\\x", "C:x", "", ".", "a/\0b"])
def test_names_that_could_leave_the_destination_are_refused(tmp_path, name):
    from aetherflow.core.connectors.families.files import safe_local_path

    with pytest.raises(StepError, match="refusing remote name"):
        safe_local_path(tmp_path, name)


@pytest.mark.parametrize(("name", "parts"), [("a/b", ("a", "b")), ("a\\b", ("a", "b")), ("./sub/./c", ("sub", "c")), ("1:x", ("1:x",))])
def test_harmless_names_land_inside_the_destination(tmp_path, name, parts):
    from aetherflow.core.connectors.families.files import safe_local_path

    assert safe_local_path(tmp_path, name) == tmp_path.resolve().joinpath(*parts)


def test_files_upload_never_follows_a_link_out_of_the_workspace(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "id_rsa").write_text("PRIVATE")
    ctx = step_context(tmp_path, {"local": make_local(target)})
    (ctx.workspace / "out").mkdir()
    (ctx.workspace / "out" / "a.csv").write_text("a")
    os.symlink(outside / "id_rsa", ctx.workspace / "out" / "b.csv")
    with pytest.raises(StepError) as info:
        run(FilesUpload, ctx, resource="local", local_files=["out/*.csv"], remote_dir="")
    assert "job workspace" in str(info.value)
    assert os.listdir(target) == []
