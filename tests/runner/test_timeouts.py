"""Step timeouts (``timeout_seconds`` beside ``retry``): the step fails naming the
limit, what it was doing is stopped (a process tree, a query on the server), and the
retry policy applies."""

from __future__ import annotations

import json

from tests.helpers import run_cli, write_flow
from tests.services import process_gone

SLEEP = """
version: 1
flow:
  id: timeouts
jobs:
  - id: slow
    steps:
      - id: nap
        type: external.process
        timeout_seconds: 1
        inputs:
          command: "sleep 30 & echo $! > $PIDS/$AETHERFLOW_STEP_ID; wait"
          shell: true
      - {id: after, type: test.echo}
"""


def test_a_process_step_over_its_timeout_fails_naming_the_limit_and_leaves_no_process(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", SLEEP)
    result = run_cli("run", flow, "--json", env={**cli_env, "PIDS": str(tmp_path)})
    assert result.exit_code == 1, result.output
    [job] = result.json["jobs"]
    nap, after = job["steps"]
    assert nap["status"] == "FAILED" and after["status"] == "BLOCKED"
    assert nap["error"].startswith("step 'nap' timed out after 1s (timeout_seconds: 1); it stopped with: ")
    assert nap["duration_ms"] < 3000
    assert process_gone(int((tmp_path / "nap").read_text()))


RETRIED = """
version: 1
flow:
  id: retried
jobs:
  - id: slow
    steps:
      - id: nap
        type: external.process
        timeout_seconds: 0.5
        retry: {max_attempts: 3}
        inputs:
          # The first attempt hangs; the second is quick.
          command: "if [ -e $MARK ]; then exit 0; fi; touch $MARK; sleep 30"
          shell: true
"""


def test_the_retry_policy_applies_after_a_timeout(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", RETRIED)
    result = run_cli("run", flow, "--json", "--log-format", "json", env={**cli_env, "MARK": str(tmp_path / "mark")})
    assert result.exit_code == 0, result.output
    [step] = result.json["jobs"][0]["steps"]
    assert (step["status"], step["attempts"]) == ("SUCCESS", 2)
    failed = [json.loads(line) for line in result.stderr.splitlines() if '"step.attempt_failed"' in line]
    assert [event["error"].split(";")[0] for event in failed] == ["step 'nap' timed out after 0.5s (timeout_seconds: 0.5)"]


def test_timeout_seconds_is_bounded_in_the_flow(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", SLEEP.replace("timeout_seconds: 1", "timeout_seconds: 1e308"))
    result = run_cli("validate", flow, env=cli_env)
    assert result.exit_code == 2 and "timeout_seconds" in result.stderr and "Traceback" not in result.output
    negative = write_flow(tmp_path / "negative.yaml", SLEEP.replace("timeout_seconds: 1", "timeout_seconds: 0"))
    assert run_cli("validate", negative, env=cli_env).exit_code == 2


DUCK_SLOW = """
version: 1
flow:
  id: duck_timeout
resources:
  lake:
    kind: db
    driver: duckdb
    config: {path: "{{ env.AETHERFLOW_WORK_ROOT }}/lake.duckdb"}
jobs:
  - id: query
    steps:
      - id: spin
        type: db_fetch
        timeout_seconds: 1
        inputs: {resource: lake, sql: "SELECT count(*) FROM range(1000000) a, range(1000000) b WHERE a.range + b.range = -1"}
"""


def test_a_duckdb_query_over_its_timeout_is_interrupted(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", DUCK_SLOW)
    result = run_cli("run", flow, "--json", env=cli_env)
    assert result.exit_code == 1, result.output
    [step] = result.json["jobs"][0]["steps"]
    assert step["status"] == "FAILED" and "timeout_seconds: 1" in step["error"]
    assert step["duration_ms"] < 10000
