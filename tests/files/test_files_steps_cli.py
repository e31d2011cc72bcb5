"""The files steps end to end through ``aetherflow run``: a flow with an SFTP resource
(the real sshd, host key pinned, password from the environment) and an fs/local one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.files.conftest import server_file
from tests.helpers import ROOT, base_env, run_cli, write_flow
from tests.services.sshd import TEST_PASSWORD

FLOW = """
version: 1
flow:
  id: files_e2e
resources:
  remote:
    kind: sftp
    driver: paramiko
    config:
      host: "{{ env.SFTP_HOST }}"
      port: "{{ env.SFTP_PORT }}"
      username: "{{ env.SFTP_USER }}"
      password: "{{ env.SFTP_PASSWORD }}"
      host_key_fingerprint: "{{ env.SFTP_HOST_KEY }}"
  landing:
    kind: fs
    driver: local
    config: {root: "{{ env.LANDING }}"}
jobs:
  - id: collect
    steps:
      - id: waiting
        type: files_list
        inputs: {resource: remote, remote_dir: "{{ env.INBOX }}", pattern: "*.csv", recursive: true}
        on_no_data: skip_job
      - id: fetch
        type: files_download
        inputs: {resource: remote, files: "{{ steps.waiting.outputs.files }}", dest_dir: in}
      - id: mirror
        type: files_copy
        inputs: {source: remote, target: landing, files: "{{ steps.waiting.outputs.files }}", target_dir: mirror}
      - id: summarize
        type: external.process
        inputs:
          command: ["sh", "-c", "mkdir -p out && cat in/*.csv in/*/*.csv > out/summary.txt"]
      - id: publish
        type: files_upload
        inputs: {resource: remote, local_files: ["out/*.txt"], remote_dir: "{{ env.INBOX }}/processed"}
      - id: clear
        type: files_delete
        inputs: {resource: remote, files: "{{ steps.waiting.outputs.files }}"}
        outputs: {deleted: "{{ result.deleted | length }}"}
"""


@pytest.fixture
def flow_env(sshd, sftp_dir, tmp_path):
    name, local = sftp_dir
    landing = tmp_path / "landing"
    landing.mkdir()
    env = base_env(
        tmp_path,
        SFTP_HOST=sshd.host,
        SFTP_PORT=str(sshd.port),
        SFTP_USER=sshd.username,
        SFTP_PASSWORD=sshd.password,
        SFTP_HOST_KEY=sshd.host_key_fingerprint,
        LANDING=str(landing),
        INBOX=f"{name}/inbox",
    )
    (local / "inbox").mkdir()
    sshd.chown_to_user(local)
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    return flow, env, local / "inbox", landing


def test_a_flow_lists_downloads_copies_uploads_and_deletes(sshd, flow_env):
    flow, env, inbox, landing = flow_env
    server_file(sshd, inbox / "orders 1.csv", b"id\n1\n")
    server_file(sshd, inbox / "region ü" / "orders 2.csv", b"id\n2\n")
    server_file(sshd, inbox / "readme.txt", b"not a csv")

    result = run_cli("run", flow, "--json", env=env)
    assert result.exit_code == 0, result.output
    assert TEST_PASSWORD not in result.output
    [job] = result.json["jobs"]
    steps = {s["id"]: s for s in job["steps"]}
    assert [s["status"] for s in job["steps"]] == ["SUCCESS"] * 6
    assert steps["waiting"]["outputs"]["count"] == 2
    assert steps["fetch"]["outputs"]["count"] == 2 and steps["fetch"]["outputs"]["bytes"] == 10
    assert steps["mirror"]["outputs"]["copied"] == ["mirror/orders 1.csv", "mirror/region ü/orders 2.csv"]
    assert (landing / "mirror" / "region ü" / "orders 2.csv").read_bytes() == b"id\n2\n"
    assert steps["publish"]["outputs"]["count"] == 1
    assert (inbox / "processed" / "summary.txt").read_bytes() == b"id\n1\nid\n2\n"
    assert job["outputs"]["deleted"] == 2
    assert sorted(p.name for p in inbox.rglob("*") if p.is_file()) == ["readme.txt", "summary.txt"]
    workspace = Path(steps["fetch"]["outputs"]["local_files"][0]).parent
    assert (workspace / "region ü" / "orders 2.csv").read_bytes() == b"id\n2\n"


def test_an_empty_inbox_skips_the_rest_of_the_job(flow_env):
    flow, env, _, _ = flow_env
    result = run_cli("run", flow, "--json", env=env)
    assert result.exit_code == 0, result.output
    [job] = result.json["jobs"]
    assert job["status"] == "SKIPPED"
    assert job["steps"][0]["status"] == "SKIPPED" and job["steps"][0]["outputs"]["count"] == 0
    assert [s["id"] for s in job["steps"] if s["status"] == "SUCCESS"] == []


def test_a_wrong_password_fails_the_run_naming_the_resource_without_the_secret(flow_env):
    flow, env, _, _ = flow_env
    env["SFTP_PASSWORD"] = "Wr0ng-Pa55-xyz"
    result = run_cli("run", flow, "--json", env=env)
    assert result.exit_code == 1
    [job] = result.json["jobs"]
    error = job["steps"][0]["error"]
    assert "remote" in error and "sftp/paramiko" in error and "authentication" in error
    assert "Wr0ng-Pa55-xyz" not in result.output and TEST_PASSWORD not in result.output


def test_an_unpinned_host_is_refused_through_the_cli_with_the_fix_in_the_message(flow_env):
    flow, env, _, _ = flow_env
    pinned = env.pop("SFTP_HOST_KEY")
    flow.write_text(flow.read_text().replace('      host_key_fingerprint: "{{ env.SFTP_HOST_KEY }}"\n', ""))
    result = run_cli("run", flow, "--json", env=env)
    assert result.exit_code == 1
    error = result.json["jobs"][0]["steps"][0]["error"]
    assert "not known" in error and pinned in error
    assert TEST_PASSWORD not in result.output


def test_the_sample_flow_validates():
    flow = ROOT / "sample_flows" / "sftp_inbox_to_smb.yaml"
    result = run_cli("validate", flow, "--json")
    assert result.exit_code == 0, result.output
    assert result.json == {"ok": True, "errors": [], "warnings": [], "files": [{"file": str(flow), "ok": True}]}
