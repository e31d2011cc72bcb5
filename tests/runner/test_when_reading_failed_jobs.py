"""A ``when`` that reads the outputs of a job that did not succeed blocks its job: the
run failed (exit 1), its input was not invalid (exit 2)."""

from __future__ import annotations

from tests.helpers import run_cli, write_flow

FLOW = """
version: 1
flow: {id: gates}
jobs:
  - id: probe
    steps:
      - {id: half, type: test.echo, inputs: {values: {seen: 3}}, outputs: {seen: "{{ result.seen }}"}}
      - {id: boom, type: test.fail, inputs: {message: probe broke}, outputs: {rows: "{{ result.rows }}"}}
  - id: load
    when: "jobs.probe.outputs.rows > 0"
    steps:
      - {id: s, type: test.echo}
  - id: partial
    when: "jobs.probe.outputs.seen == 3"
    steps:
      - {id: s, type: test.echo}
  - id: alert
    when: "jobs.probe.status == 'FAILED'"
    steps:
      - {id: s, type: test.echo}
"""


def test_when_reading_a_failed_jobs_missing_outputs_blocks_the_job(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    result = run_cli("run", flow, "--json", env=cli_env)
    assert result.exit_code == 1, result.output
    jobs = {job["id"]: job for job in result.json["jobs"]}
    assert jobs["probe"]["status"] == "FAILED"
    assert jobs["load"]["status"] == "BLOCKED"
    assert [s["status"] for s in jobs["load"]["steps"]] == ["BLOCKED"]
    # What a failed job did promote is still readable, and its status always is.
    assert jobs["partial"]["status"] == "SUCCESS"
    assert jobs["alert"]["status"] == "SUCCESS"
    assert "job 'probe', which did not succeed" in result.stderr


def test_when_reading_an_output_a_successful_job_never_had_is_still_invalid_input(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", """
version: 1
flow: {id: gates}
jobs:
  - id: probe
    steps: [{id: s, type: test.echo, inputs: {values: {seen: 1}}}]
  - id: load
    depends_on: [probe]
    when: "jobs.probe.outputs['ro' ~ 'ws'] > 0"
    steps: [{id: s, type: test.echo}]
""")
    result = run_cli("run", flow, "--json", env=cli_env)
    assert result.exit_code == 2, result.output
    assert {job["id"]: job["status"] for job in result.json["jobs"]} == {"probe": "SUCCESS", "load": "FAILED"}
    # Written literally, the output nobody declares is refused before the run starts.
    flow.write_text(flow.read_text().replace("outputs['ro' ~ 'ws']", "outputs.rows"))
    refused = run_cli("run", flow, "--json", env=cli_env)
    assert refused.exit_code == 2 and refused.stdout == ""
    assert "reads jobs.probe.outputs.rows, which job 'probe' does not declare" in refused.stderr
