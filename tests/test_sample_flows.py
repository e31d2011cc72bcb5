"""The sample flows: the server-free ones run, every one validates."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import ROOT, base_env, run_cli

SAMPLES = sorted((ROOT / "sample_flows").glob("*.yaml"))


@pytest.mark.parametrize("flow", SAMPLES, ids=lambda p: p.name)
def test_every_sample_flow_validates(flow: Path):
    result = run_cli("validate", flow)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", ["hello.yaml", "duckdb_to_sqlite.yaml"])
def test_server_free_samples_run_to_success(tmp_path, name):
    result = run_cli("run", ROOT / "sample_flows" / name, "--json", env=base_env(tmp_path))
    assert result.exit_code == 0, result.output
    doc = result.json
    assert doc["status"] == "SUCCESS"
    assert all(job["status"] == "SUCCESS" for job in doc["jobs"])


def test_hello_stores_the_greeting_written_by_the_process(tmp_path):
    result = run_cli("run", ROOT / "sample_flows" / "hello.yaml", "--json", env=base_env(tmp_path))
    jobs = {job["id"]: job for job in result.json["jobs"]}
    assert jobs["greet"]["outputs"] == {"greeting": "hello from hello"}
    assert jobs["store"]["outputs"] == {"message": "hello from hello"}
    workspace = tmp_path / "work" / "hello" / "greet" / result.json["run_id"]
    assert (workspace / "greeting.txt").read_text() == "hello from hello\n"
