"""``archive_create`` / ``archive_extract``: called directly and through the CLI."""

from __future__ import annotations

import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from aetherflow.core.connectors.builtin.archive_tar import TarArchiveConnector
from aetherflow.core.errors import ConnectorError, StepError
from aetherflow.core.steps.base import STEP_SUCCESS
from tests.archive.builders import zip_with
from tests.helpers import base_env, run_cli, run_step, step_context, write_flow


@pytest.fixture
def ctx(tmp_path):
    context = step_context(tmp_path)
    reports = context.workspace / "reports"
    (reports / "2024").mkdir(parents=True)
    (reports / "a.csv").write_text("a\n1\n")
    (reports / "b.csv").write_text("b\n2\n")
    (reports / "notes.txt").write_text("not a csv")
    (reports / "2024" / "c.csv").write_text("c\n3\n")
    return context


def test_create_from_globs_picks_the_format_from_the_extension(ctx):
    result = run_step("archive_create", ctx, output="out/reports.tar.gz", files=["reports/**/*.csv"], base_dir="reports")
    assert result.status == STEP_SUCCESS
    path = Path(result.outputs["path"])
    assert path == ctx.workspace / "out" / "reports.tar.gz"
    assert result.outputs["count"] == 3
    assert result.outputs["bytes"] == path.stat().st_size
    with tarfile.open(path, "r:gz") as tf:
        assert sorted(tf.getnames()) == ["2024/c.csv", "a.csv", "b.csv"]


@pytest.mark.parametrize(("name", "check"), [
    ("x.zip", zipfile.is_zipfile),
    ("x.tar", lambda p: tarfile.open(p, "r:").getnames() == ["a.csv"]),
    ("x.tgz", lambda p: tarfile.open(p, "r:gz").getnames() == ["a.csv"]),
    ("x.tar.bz2", lambda p: tarfile.open(p, "r:bz2").getnames() == ["a.csv"]),
    ("x.tar.xz", lambda p: tarfile.open(p, "r:xz").getnames() == ["a.csv"]),
])
def test_every_known_extension_selects_its_format(ctx, name, check):
    result = run_step("archive_create", ctx, output=name, files="reports/a.csv")
    assert check(result.outputs["path"])


def test_create_with_a_resource_uses_its_settings(ctx):
    bundle = TarArchiveConnector(config={"compression": "bz2"}, options={})
    ctx.connectors = {"bundle": bundle}
    result = run_step("archive_create", ctx, output="data.bin", files=["reports/a.csv"], resource="bundle")
    with tarfile.open(result.outputs["path"], "r:bz2") as tf:
        assert tf.getnames() == ["a.csv"]


def test_unknown_extension_without_resource_is_a_clear_error(ctx):
    with pytest.raises(StepError, match=r"cannot tell the archive format of 'x.rar'"):
        run_step("archive_create", ctx, output="x.rar", files=["reports/a.csv"])


def test_resource_that_is_not_an_archive_connector_is_refused(ctx):
    class NotArchive:
        kind, driver = "db", "sqlite3"

    ctx.connectors = {"db": NotArchive()}
    with pytest.raises(StepError, match=r"resource 'db' \(db/sqlite3\) is not an archive connector"):
        run_step("archive_create", ctx, output="x.zip", files=["reports/a.csv"], resource="db")


def test_glob_matching_nothing_is_an_error(ctx):
    with pytest.raises(StepError, match=r"no file matches 'reports/\*.parquet'"):
        run_step("archive_create", ctx, output="x.zip", files=["reports/*.parquet"])


def test_output_escaping_the_workspace_is_refused(ctx):
    with pytest.raises(StepError, match="escapes the job workspace"):
        run_step("archive_create", ctx, output="../../x.zip", files=["reports/a.csv"])


def test_extract_returns_absolute_paths_and_count(ctx):
    run_step("archive_create", ctx, output="r.zip", files=["reports"], base_dir=".")
    result = run_step("archive_extract", ctx, archive="r.zip", dest_dir="unpacked")
    expected = sorted(str(ctx.workspace / "unpacked" / "reports" / n) for n in ("2024/c.csv", "a.csv", "b.csv", "notes.txt"))
    assert sorted(result.outputs["files"]) == expected
    assert result.outputs["count"] == 4
    assert Path(expected[0]).read_text() == "c\n3\n"


def test_extract_of_a_file_without_extension_recognises_the_format(ctx):
    run_step("archive_create", ctx, output="r.tar.xz", files=["reports/a.csv"])
    (ctx.workspace / "r.tar.xz").rename(ctx.workspace / "download.bin")
    result = run_step("archive_extract", ctx, archive="download.bin", dest_dir="u", members="a.csv")
    assert result.outputs["count"] == 1
    assert (ctx.workspace / "u" / "a.csv").read_text() == "a\n1\n"


def test_extract_refuses_a_hostile_archive_and_names_the_entry(ctx):
    zip_with(ctx.workspace / "evil.zip", [("fine.txt", b"ok"), ("../../escape.txt", b"x")])
    with pytest.raises(Exception, match=r"refusing entry '\.\./\.\./escape\.txt'"):
        run_step("archive_extract", ctx, archive="evil.zip", dest_dir="u")
    assert not (ctx.workspace / "u").exists()  # checked before anything was created
    assert not (ctx.workspace.parent / "escape.txt").exists()


# -- through the CLI --------------------------------------------------------------------


def test_flow_archives_files_and_extracts_them_again(tmp_path):
    flow = write_flow(tmp_path / "flow.yaml", """
        version: 1
        flow:
          id: archive_e2e
          workspace: {root: "{{ env.AETHERFLOW_WORK_ROOT }}", cleanup_policy: never}
        resources:
          bundle:
            kind: archive
            driver: zipfile
            config: {compression: lzma}
        jobs:
          - id: pack
            steps:
              - id: make
                type: external.process
                inputs:
                  command: ["sh", "-c", "mkdir -p in/sub && printf one > in/one.txt && printf two > 'in/sub/t w o.txt'"]
              - id: zip
                type: archive_create
                inputs: {output: out/bundle.zip, files: ["in/**/*.txt"], base_dir: in, resource: bundle}
              - id: tar
                type: archive_create
                inputs: {output: out/bundle.tar.gz, files: [in], base_dir: "."}
              - id: unzip
                type: archive_extract
                inputs: {archive: "{{ steps.zip.outputs.path }}", dest_dir: unzipped}
              - id: untar
                type: archive_extract
                inputs: {archive: "{{ steps.tar.outputs.path }}", dest_dir: untarred, members: [in/sub]}
    """)
    result = run_cli("run", flow, "--json", env=base_env(tmp_path))
    assert result.exit_code == 0, result.output
    steps = {s["id"]: s for s in result.json["jobs"][0]["steps"]}
    assert steps["zip"]["outputs"]["count"] == 2
    assert steps["tar"]["outputs"]["count"] == 2
    assert steps["unzip"]["outputs"]["count"] == 2
    unzipped = sorted(steps["unzip"]["outputs"]["files"])
    assert [Path(p).name for p in unzipped] == ["one.txt", "t w o.txt"]
    assert Path(unzipped[1]).read_text() == "two"
    assert [Path(p).name for p in steps["untar"]["outputs"]["files"]] == ["t w o.txt"]


def test_flow_with_a_hostile_archive_fails_naming_the_entry(tmp_path):
    evil = zip_with(tmp_path / "evil.zip", [("ok.txt", b"ok"), ("/etc/cron.d/evil", b"x")])
    flow = write_flow(tmp_path / "flow.yaml", f"""
        version: 1
        flow:
          id: archive_evil
          workspace: {{root: "{{{{ env.AETHERFLOW_WORK_ROOT }}}}", cleanup_policy: never}}
        jobs:
          - id: unpack
            steps:
              - id: extract
                type: archive_extract
                inputs: {{archive: "{evil}", dest_dir: out}}
    """)
    result = run_cli("run", flow, "--json", env=base_env(tmp_path))
    assert result.exit_code == 1
    step = result.json["jobs"][0]["steps"][0]
    assert step["status"] == "FAILED"
    assert "refusing entry '/etc/cron.d/evil'" in step["error"]
    assert "absolute path" in step["error"]


@pytest.fixture
def planted(ctx, tmp_path):
    """A file outside the workspace and links to it planted inside (as a hostile
    download or archive could leave them)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "shadow").write_text("root:$6$hash")
    os.symlink(outside / "shadow", ctx.workspace / "reports" / "z-link.csv")
    os.symlink(outside, ctx.workspace / "reports" / "2024" / "elsewhere")
    return outside


@pytest.mark.parametrize("files", [["reports/*.csv"], ["reports/**/*"], ["reports"], "reports/z-link.csv", ["reports/2024"]])
def test_archive_create_never_follows_a_link_out_of_the_workspace(ctx, planted, files):
    with pytest.raises((StepError, ConnectorError)) as info:
        run_step("archive_create", ctx, output="out/leak.zip", files=files)
    assert "job workspace" in str(info.value)
    assert not (ctx.workspace / "out" / "leak.zip").exists()


def test_archive_create_follows_links_that_stay_inside_and_takes_absolute_paths_as_given(ctx, planted):
    os.symlink(ctx.workspace / "reports" / "a.csv", ctx.workspace / "reports" / "2024" / "a-again.csv")
    result = run_step("archive_create", ctx, output="out/ok.zip", files=["reports/2024/*.csv"])
    with zipfile.ZipFile(result.outputs["path"]) as zf:
        assert sorted(zf.namelist()) == ["a-again.csv", "c.csv"]
    result = run_step("archive_create", ctx, output="out/abs.zip", files=[str(planted / "shadow")])
    assert result.outputs["count"] == 1
