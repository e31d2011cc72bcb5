"""Every status transition and gate of SPEC section 6, through `aetherflow run --json`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import run_cli, write_flow

HEAD = """
version: 1
flow:
  id: statuses
"""


def run_flow(tmp_path: Path, env: dict, body: str, *args: str):
    flow = write_flow(tmp_path / "flow.yaml", HEAD + body)
    result = run_cli("run", flow, "--json", *args, env=env)
    assert "Traceback" not in result.output, result.output
    return result


def jobs_of(result) -> dict:
    return {job["id"]: job for job in result.json["jobs"]}


def statuses(result) -> dict:
    return {job["id"]: job["status"] for job in result.json["jobs"]}


def test_all_steps_succeed_makes_the_run_succeed(tmp_path, cli_env):
    result = run_flow(tmp_path, cli_env, """
jobs:
  - id: a
    steps:
      - {id: one, type: test.echo, inputs: {values: {x: 1}}}
      - {id: two, type: check_items, inputs: {items: [1, 2]}}
""")
    assert result.exit_code == 0
    doc = result.json
    assert doc["status"] == "SUCCESS" and doc["flow_id"] == "statuses" and doc["run_id"]
    assert set(doc) == {"flow_id", "run_id", "status", "duration_ms", "error", "vars", "jobs", "persisted", "handlers"}
    assert (doc["error"], doc["vars"], doc["persisted"], doc["handlers"]) == (None, {}, {}, [])
    [job] = doc["jobs"]
    assert set(job) == {"id", "status", "outputs", "steps"}
    assert [s["status"] for s in job["steps"]] == ["SUCCESS", "SUCCESS"]
    assert set(job["steps"][0]) == {"id", "type", "status", "attempts", "duration_ms", "outputs", "error"}
    assert job["steps"][1]["outputs"] == {"has_data": True, "count": 2}


def test_failed_step_fails_its_job_blocks_later_steps_and_dependents(tmp_path, cli_env):
    result = run_flow(tmp_path, cli_env, """
jobs:
  - id: a
    steps:
      - {id: ok, type: test.echo}
      - {id: bad, type: test.fail, inputs: {message: disk on fire}}
      - {id: after, type: test.echo}
  - id: b
    depends_on: [a]
    steps:
      - {id: s, type: test.echo}
  - id: c
    depends_on: [b]
    steps:
      - {id: s, type: test.echo}
""")
    assert result.exit_code == 1
    assert result.json["status"] == "FAILED"
    assert statuses(result) == {"a": "FAILED", "b": "BLOCKED", "c": "BLOCKED"}
    steps = jobs_of(result)["a"]["steps"]
    assert [s["status"] for s in steps] == ["SUCCESS", "FAILED", "BLOCKED"]
    assert "disk on fire" in steps[1]["error"]
    assert jobs_of(result)["b"]["steps"][0]["attempts"] == 0


def test_a_failed_job_does_not_stop_independent_jobs(tmp_path, cli_env):
    result = run_flow(tmp_path, cli_env, """
jobs:
  - id: broken
    steps:
      - {id: s, type: test.fail}
  - id: independent
    steps:
      - {id: s, type: test.echo, inputs: {values: {ran: true}}}
""")
    assert result.exit_code == 1
    assert statuses(result) == {"broken": "FAILED", "independent": "SUCCESS"}
    assert jobs_of(result)["independent"]["steps"][0]["outputs"] == {"ran": True}


def test_when_false_skips_and_when_true_runs_using_finished_job_outputs(tmp_path, cli_env):
    result = run_flow(tmp_path, cli_env, """
jobs:
  - id: probe
    steps:
      - id: count
        type: check_items
        inputs: {items: "a,b"}
        outputs: {count: "{{ result.count }}", has_data: "{{ result.has_data }}"}
  - id: big
    depends_on: [probe]
    when: "jobs.probe.outputs.count > 5"
    steps:
      - {id: s, type: test.echo}
  - id: small
    depends_on: [probe]
    when: "{{ jobs.probe.outputs.has_data and jobs.probe.status == 'SUCCESS' }}"
    steps:
      - {id: s, type: test.echo}
""")
    assert result.exit_code == 0
    assert result.json["status"] == "SUCCESS"
    assert statuses(result) == {"probe": "SUCCESS", "big": "SKIPPED", "small": "SUCCESS"}
    assert [s["status"] for s in jobs_of(result)["big"]["steps"]] == ["SKIPPED"]


def test_skipped_dependency_skips_downstream_and_all_skipped_run_exits_zero(tmp_path, cli_env):
    result = run_flow(tmp_path, cli_env, """
jobs:
  - id: gate
    when: "false"
    steps:
      - {id: s, type: test.echo}
  - id: after
    depends_on: [gate]
    steps:
      - {id: s, type: test.echo}
""")
    assert result.exit_code == 0
    assert result.json["status"] == "SKIPPED"
    assert statuses(result) == {"gate": "SKIPPED", "after": "SKIPPED"}


def test_on_no_data_skip_job_skips_the_rest_of_the_job(tmp_path, cli_env):
    result = run_flow(tmp_path, cli_env, """
jobs:
  - id: a
    steps:
      - {id: first, type: test.echo}
      - {id: empty, type: check_items, inputs: {items: []}, on_no_data: skip_job}
      - {id: never, type: test.fail}
  - id: b
    depends_on: [a]
    steps:
      - {id: s, type: test.fail}
""")
    assert result.exit_code == 0
    steps = jobs_of(result)["a"]["steps"]
    assert [s["status"] for s in steps] == ["SUCCESS", "SKIPPED", "SKIPPED"]
    assert steps[2]["attempts"] == 0
    assert statuses(result) == {"a": "SKIPPED", "b": "SKIPPED"}


def test_skipped_step_without_on_no_data_lets_the_job_continue(tmp_path, cli_env):
    result = run_flow(tmp_path, cli_env, """
jobs:
  - id: a
    steps:
      - {id: empty, type: check_items, inputs: {items: "", min_count: 1}}
      - {id: next, type: test.echo, inputs: {values: {saw: "{{ steps.empty.status }}"}}}
""")
    assert result.exit_code == 0
    job = jobs_of(result)["a"]
    assert job["status"] == "SUCCESS"
    assert [s["status"] for s in job["steps"]] == ["SKIPPED", "SUCCESS"]
    assert job["steps"][1]["outputs"] == {"saw": "SKIPPED"}


def test_retry_reruns_a_failing_step_visibly_until_it_succeeds(tmp_path, cli_env):
    result = run_flow(tmp_path, cli_env, """
jobs:
  - id: a
    steps:
      - id: flaky
        type: test.fail
        inputs: {succeed_on_attempt: 3}
        retry: {max_attempts: 4, delay_seconds: 0.01, backoff: 2}
""")
    assert result.exit_code == 0
    step = jobs_of(result)["a"]["steps"][0]
    assert step["status"] == "SUCCESS" and step["attempts"] == 3 and step["outputs"] == {"attempt": 3}
    assert result.stderr.count("step.attempt_failed") == 2


def test_retry_exhausted_fails_with_the_attempt_count(tmp_path, cli_env):
    result = run_flow(tmp_path, cli_env, """
jobs:
  - id: a
    steps:
      - id: flaky
        type: test.fail
        retry: {max_attempts: 2}
""")
    assert result.exit_code == 1
    step = jobs_of(result)["a"]["steps"][0]
    assert step["status"] == "FAILED" and step["attempts"] == 2


def test_without_retry_a_step_runs_once(tmp_path, cli_env):
    result = run_flow(tmp_path, cli_env, """
jobs:
  - id: a
    steps:
      - {id: flaky, type: test.fail, inputs: {succeed_on_attempt: 2}}
""")
    assert result.exit_code == 1
    assert jobs_of(result)["a"]["steps"][0]["attempts"] == 1
    assert "step.attempt_failed" not in result.stderr


def test_outputs_flow_to_later_steps_and_jobs_with_native_types(tmp_path, cli_env):
    result = run_flow(tmp_path, cli_env, """
jobs:
  - id: produce
    steps:
      - id: make
        type: test.echo
        inputs: {values: {rows: 42, names: [x, y], meta: {ok: true}}}
        outputs:
          rows: "{{ result.rows }}"
          label: "rows={{ result.rows }}"
      - id: reuse
        type: test.echo
        inputs:
          values:
            doubled: "{{ steps.make.outputs.rows * 2 }}"
            first: "{{ steps.make.outputs.names[0] }}"
            job_rows: "{{ job.outputs.rows }}"
            meta: "{{ steps.make.outputs.meta }}"
  - id: consume
    depends_on: [produce]
    steps:
      - id: use
        type: test.echo
        inputs:
          values:
            rows: "{{ jobs.produce.outputs.rows }}"
            label: "{{ jobs.produce.outputs.label }}"
            ids: "{{ flow_id }}/{{ job.id }}"
""")
    assert result.exit_code == 0, result.stderr
    jobs = jobs_of(result)
    assert jobs["produce"]["outputs"] == {"rows": 42, "label": "rows=42"}
    assert jobs["produce"]["steps"][1]["outputs"] == {"doubled": 84, "first": "x", "job_rows": 42, "meta": {"ok": True}}
    assert jobs["consume"]["steps"][0]["outputs"] == {"rows": 42, "label": "rows=42", "ids": "statuses/consume"}


def test_jobs_run_in_topological_order_with_yaml_order_breaking_ties(tmp_path, cli_env):
    result = run_flow(tmp_path, cli_env, """
jobs:
  - id: report
    depends_on: [load, audit]
    steps: [{id: s, type: test.echo}]
  - id: load
    depends_on: [extract]
    steps: [{id: s, type: test.echo}]
  - id: audit
    steps: [{id: s, type: test.echo}]
  - id: extract
    steps: [{id: s, type: test.echo}]
""")
    assert result.exit_code == 0
    assert [job["id"] for job in result.json["jobs"]] == ["audit", "extract", "load", "report"]
    started = [json.loads(line)["job_id"] for line in result.stderr.splitlines() if '"job.started"' in line] or [
        line.split("job=")[1].split()[0] for line in result.stderr.splitlines() if "job.started" in line
    ]
    assert started == ["audit", "extract", "load", "report"]


def test_job_selection_runs_the_job_and_its_upstream_jobs_only(tmp_path, cli_env):
    result = run_flow(tmp_path, cli_env, """
jobs:
  - id: extract
    steps: [{id: s, type: test.echo}]
  - id: load
    depends_on: [extract]
    steps: [{id: s, type: test.echo}]
  - id: other
    steps: [{id: s, type: test.echo}]
""", "--job", "load")
    assert result.exit_code == 0
    assert [job["id"] for job in result.json["jobs"]] == ["extract", "load"]


def test_unknown_selected_job_is_a_usage_error(tmp_path, cli_env):
    result = run_flow(tmp_path, cli_env, """
jobs:
  - id: extract
    steps: [{id: s, type: test.echo}]
""", "--job", "extrct")
    assert result.exit_code == 2
    assert "unknown job 'extrct'" in result.stderr and "did you mean 'extract'" in result.stderr


def test_runtime_template_error_fails_with_exit_2_naming_the_missing_name(tmp_path, cli_env):
    result = run_flow(tmp_path, cli_env, """
jobs:
  - id: a
    steps:
      - {id: one, type: test.echo, inputs: {values: {x: 1}}}
      - {id: two, type: test.echo, inputs: {values: {y: "{{ steps.one.outputs.nope }}"}}}
""")
    assert result.exit_code == 2
    step = jobs_of(result)["a"]["steps"][1]
    assert step["status"] == "FAILED"
    assert "'steps.one.outputs.nope' is undefined" in step["error"]
    assert "jobs[0].steps[1].inputs.values.y" in step["error"]
    assert ":9:" in step["error"]


def test_rendered_input_of_the_wrong_type_fails_before_the_step_runs(tmp_path, cli_env):
    result = run_flow(tmp_path, cli_env, """
jobs:
  - id: a
    steps:
      - {id: count, type: check_items, inputs: {items: "{{ 'a,b' }}", min_count: "{{ 'many' }}"}}
""")
    assert result.exit_code == 2
    error = jobs_of(result)["a"]["steps"][0]["error"]
    assert "input 'min_count': expected integer, got string 'many'" in error


def test_workspace_is_per_job_and_run_and_cleanup_policy_is_applied(tmp_path, cli_env):
    body = """
  workspace: {{root: "{root}", cleanup_policy: {policy}}}
jobs:
  - id: a
    steps:
      - {{id: w, type: test.write, inputs: {{path: out/file.txt, text: hi}}}}
      - {{id: last, type: test.fail, inputs: {{succeed_on_attempt: {attempt}}}}}
"""
    roots = {}
    for policy, attempt, expect_kept in [("never", 1, True), ("always", 1, False), ("on_success", 1, False), ("on_success", 2, True)]:
        root = tmp_path / f"ws-{policy}-{attempt}"
        result = run_flow(tmp_path, cli_env, body.format(root=root, policy=policy, attempt=attempt))
        run_id = result.json["run_id"]
        workspace = root / "statuses" / "a" / run_id
        written = jobs_of(result)["a"]["steps"][0]["outputs"]
        assert written["workspace"] == str(workspace)
        assert written["path"] == str(workspace / "out" / "file.txt")
        assert workspace.exists() is expect_kept, (policy, attempt)
        roots[policy] = root


def test_relative_paths_may_not_escape_the_workspace(tmp_path, cli_env):
    result = run_flow(tmp_path, cli_env, """
jobs:
  - id: a
    steps:
      - {id: w, type: test.write, inputs: {path: ../../escape.txt, text: x}}
""")
    assert result.exit_code == 1
    assert "escapes the job workspace" in jobs_of(result)["a"]["steps"][0]["error"]


def test_human_output_shows_a_summary_and_plain_lines_when_not_a_terminal(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", HEAD + """
jobs:
  - id: a
    steps:
      - {id: one, type: test.echo}
      - {id: two, type: test.fail, inputs: {message: cannot continue}}
""")
    result = run_cli("run", flow, env=cli_env)
    assert result.exit_code == 1
    assert "of flow statuses: FAILED" in result.stdout
    assert "cannot continue" in result.stdout
    assert "\x1b[" not in result.stdout


def test_json_logs_carry_the_documented_fields(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", HEAD + """
jobs:
  - id: a
    steps:
      - {id: one, type: check_items, inputs: {items: [1]}}
""")
    result = run_cli("run", flow, "--json", "--log-format", "json", env=cli_env)
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stderr.splitlines()]
    finished = next(r for r in records if r["event"] == "step.finished")
    for key in ("ts", "level", "event", "flow_id", "run_id", "job_id", "step_id", "step_type", "status", "duration_ms"):
        assert key in finished
    assert finished["flow_id"] == "statuses" and finished["step_type"] == "check_items" and finished["status"] == "SUCCESS"
    assert finished["run_id"] == result.json["run_id"]
    env_format = run_cli("run", flow, env={**cli_env, "AETHERFLOW_LOG_FORMAT": "json"})
    assert all(line.startswith("{") for line in env_format.stderr.splitlines())


def test_quiet_hides_info_logs_and_verbose_shows_debug_tracebacks(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", HEAD + """
jobs:
  - id: a
    steps:
      - {id: boom, type: test.crash, inputs: {message: kaput}}
""")
    quiet = run_cli("run", flow, "-q", env=cli_env)
    assert "step.started" not in quiet.stderr and "step.failed" in quiet.stderr
    verbose = run_cli("run", flow, "-v", env=cli_env)
    assert "Traceback" in verbose.stderr and "RuntimeError: kaput" in verbose.stderr
    normal = run_cli("run", flow, env=cli_env)
    assert "Traceback" not in normal.output
