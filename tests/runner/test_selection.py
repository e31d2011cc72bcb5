"""Job selection: --job (with upstream jobs), --only (exactly these, upstream outputs from
the last successful run) and --exclude."""

from __future__ import annotations

from tests.helpers import run_cli, write_flow

FLOW = """
version: 1
flow: {id: selection}
jobs:
  - id: extract
    steps:
      - id: pull
        type: test.echo
        inputs: {values: {rows: "{{ env.ROWS | default('1') | int }}"}}
        outputs: {rows: "{{ result.rows }}"}
  - id: transform
    depends_on: [extract]
    steps:
      - id: double
        type: test.echo
        inputs: {values: {rows: "{{ jobs.extract.outputs.rows * 2 }}"}}
        outputs: {rows: "{{ result.rows }}"}
  - id: load
    depends_on: [transform]
    steps:
      - {id: put, type: test.echo, inputs: {values: {rows: "{{ jobs.transform.outputs.rows }}"}}}
      - {id: check, type: test.fail, inputs: {succeed_on_attempt: "{{ 0 if env.BREAK is defined else 1 }}"}}
  - id: audit
    steps:
      - {id: note, type: test.echo}
"""


def run(tmp_path, env, *args):
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    result = run_cli("run", flow, "--json", *args, env=env)
    assert "Traceback" not in result.output, result.output
    return result


def ran(result) -> dict:
    return {job["id"]: job["status"] for job in result.json["jobs"]}


def test_job_keeps_upstream_jobs_and_exclude_drops_jobs(tmp_path, cli_env):
    assert ran(run(tmp_path, cli_env, "--job", "transform")) == {"extract": "SUCCESS", "transform": "SUCCESS"}
    assert ran(run(tmp_path, cli_env, "--exclude", "audit")) == {"extract": "SUCCESS", "transform": "SUCCESS", "load": "SUCCESS"}


def test_only_takes_upstream_outputs_from_the_last_successful_run(tmp_path, cli_env):
    missing = run(tmp_path, cli_env, "--only", "load")
    assert missing.exit_code == 2
    assert "need the outputs of jobs 'extract', 'transform', which no successful run of flow 'selection' has" in missing.stderr

    full = run(tmp_path, {**cli_env, "ROWS": "5"})
    assert full.exit_code == 0 and full.json["jobs"][1]["outputs"] == {"rows": 10}
    failed = run(tmp_path, {**cli_env, "ROWS": "3", "BREAK": "1"})
    assert failed.exit_code == 1 and failed.json["jobs"][1]["outputs"] == {"rows": 6}, "a failed run is not a source of outputs"

    only = run(tmp_path, cli_env, "--only", "load", "--log-format", "json")
    assert only.exit_code == 0, only.output
    assert ran(only) == {"load": "SUCCESS"}
    assert only.json["jobs"][0]["steps"][0]["outputs"] == {"rows": 10}, "transform's outputs of the successful run"
    assert f"outputs from run {full.json['run_id']}" in only.stderr

    excluded = run(tmp_path, {**cli_env, "ROWS": "7"}, "--exclude", "transform", "--exclude", "audit")
    assert ran(excluded) == {"extract": "SUCCESS", "load": "SUCCESS"}
    assert excluded.json["jobs"][1]["steps"][0]["outputs"] == {"rows": 10}


def test_selection_errors_name_the_job(tmp_path, cli_env):
    unknown = run(tmp_path, cli_env, "--only", "lod")
    assert unknown.exit_code == 2 and "--only: unknown job 'lod' (did you mean 'load'?)" in unknown.stderr
    both = run(tmp_path, cli_env, "--job", "load", "--only", "audit")
    assert both.exit_code == 2 and "--job and --only cannot be used together" in both.stderr
    nothing = run(tmp_path, cli_env, "--only", "audit", "--exclude", "audit")
    assert nothing.exit_code == 2 and "leaves no job to run" in nothing.stderr
