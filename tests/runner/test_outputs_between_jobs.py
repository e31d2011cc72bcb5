"""Outputs are data between steps and jobs: the scrubber masks them where they leave
the process (console, JSON, logs, state), never on their way to a later template; a
step whose stored outputs had to be masked runs again when its run is resumed."""

from __future__ import annotations

import json

from aetherflow.core.state import open_state_store
from tests.helpers import run_cli, write_flow

DATA = "postgres://loader:pw-in-data-42@db.example/sales password=kv-in-data-42"

FLOW = """
version: 1
flow:
  id: between
jobs:
  - id: a
    steps:
      - id: make
        type: external.process
        inputs: {command: [printf, "%s", "DATA"], capture: true}
        outputs: {url: "{{ result.stdout }}"}
  - id: b
    depends_on: [a]
    steps:
      - id: compare
        type: external.process
        inputs:
          command: [sh, -c, 'test -e "$2" && test "$0" = "$1"', "{{ jobs.a.outputs.url }}", "DATA", "{{ env.GATE }}"]
      - id: echo
        type: external.process
        inputs: {command: [printf, "%s", "{{ jobs.a.outputs.url }}"], capture: true}
      - id: again
        type: external.process
        inputs: {command: [sh, -c, 'test "$0" = "$1"', "{{ steps.echo.outputs.stdout }}", "DATA"]}
""".replace("DATA", DATA)


def test_outputs_reach_later_jobs_and_steps_unmasked_and_leave_masked(tmp_path, cli_env):
    gate = tmp_path / "gate"
    gate.touch()
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    result = run_cli("run", flow, "--json", "--log-format", "json", "--run-id", "r1", env={**cli_env, "GATE": str(gate)})
    assert result.exit_code == 0, result.output
    assert [j["status"] for j in result.json["jobs"]] == ["SUCCESS", "SUCCESS"]
    # Every exit masks the passwords inside the data.
    for secret in ("pw-in-data-42", "kv-in-data-42"):
        assert secret not in result.stdout and secret not in result.stderr
    assert result.json["jobs"][0]["outputs"]["url"] == "postgres://loader:***@db.example/sales password=***"
    store = open_state_store("sqlite", state_root=cli_env["AETHERFLOW_STATE_ROOT"])
    try:
        stored = json.dumps([row.outputs for row in store.step_runs("r1")] + [row.outputs for row in store.job_runs("r1")])
        masked = {(row.job_id, row.step_id): row.outputs_masked for row in store.step_runs("r1")}
    finally:
        store.close()
    assert "pw-in-data-42" not in stored and "kv-in-data-42" not in stored
    assert masked == {("a", "make"): True, ("b", "compare"): False, ("b", "echo"): True, ("b", "again"): False}


def test_a_resumed_run_reruns_a_step_whose_stored_outputs_were_masked(tmp_path, cli_env):
    gate = tmp_path / "gate"
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    env = {**cli_env, "GATE": str(gate)}
    first = run_cli("run", flow, "--json", "--run-id", "r2", env=env)
    assert first.exit_code == 1, first.output
    assert [j["status"] for j in first.json["jobs"]] == ["SUCCESS", "FAILED"]

    gate.touch()
    resumed = run_cli("run", flow, "--json", "--log-format", "json", "--run-id", "r2", env=env)
    assert resumed.exit_code == 0, resumed.output
    events = [json.loads(line) for line in resumed.stderr.splitlines() if line.startswith("{")]
    rerun = [e for e in events if e["event"] == "step.rerun"]
    assert [(e["job_id"], e["step_id"]) for e in rerun] == [("a", "make")]
    assert "secrets masked" in rerun[0]["reason"]
    # The masked value never reaches job b: its comparison with the data succeeds.
    assert [s["status"] for s in resumed.json["jobs"][1]["steps"]] == ["SUCCESS"] * 3


def test_a_step_whose_outputs_hold_no_secret_is_reused(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", """
version: 1
flow: {id: plain}
jobs:
  - id: a
    steps:
      - {id: one, type: test.echo, inputs: {values: {n: 1}}}
      - {id: two, type: test.fail, inputs: {message: not yet}}
""")
    assert run_cli("run", flow, "--run-id", "r3", env=cli_env).exit_code == 1
    resumed = run_cli("run", flow, "--run-id", "r3", "--log-format", "json", env=cli_env)
    events = [json.loads(line)["event"] for line in resumed.stderr.splitlines() if line.startswith("{")]
    assert "step.reused" in events and "step.rerun" not in events
