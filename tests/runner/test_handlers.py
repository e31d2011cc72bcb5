"""Handlers without a server: what their templates see, when they run and when not."""

from __future__ import annotations

import signal
import subprocess
import sys

from tests.helpers import run_cli, write_flow

FLOW = """
version: 1
flow: {id: handled}
vars:
  region: {default: eu}
jobs:
  - id: a
    steps:
      - id: s
        type: test.echo
        inputs: {values: {n: 3}}
        outputs: {n: "{{ result.n }}"}
        persist: {seen: "{{ result.n }}"}
  - id: b
    steps:
      - {id: wait, type: external.process, inputs: {command: [sleep, "{{ env.SLEEP_FOR | default('0') }}"]}}
      - {id: maybe, type: test.fail, inputs: {message: "b broke", succeed_on_attempt: "{{ 0 if env.BREAK is defined else 1 }}"}}
handlers:
  on_failure:
    - {id: mark, type: test.write, inputs: {path: "{{ env.MARKS }}/failure", text: "failed: {{ run.failed_jobs | join(',') }}"}}
  on_success:
    - id: report
      type: test.echo
      inputs:
        values: {status: "{{ run.status }}", n: "{{ jobs.a.outputs.n }}", region: "{{ vars.region }}", seen: "{{ store.seen | default('none') }}"}
      outputs: {status: "{{ result.status }}"}
  always:
    - {id: mark, type: test.write, inputs: {path: "{{ env.MARKS }}/always", text: "{{ run.status }} {{ run.errors | length }}"}}
"""


def test_handler_templates_see_run_jobs_vars_and_store(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    env = {**cli_env, "MARKS": str(tmp_path)}
    result = run_cli("run", flow, "--json", env=env)
    assert result.exit_code == 0, result.output
    on_success, always = result.json["handlers"]
    assert on_success["id"] == "on_success"
    assert on_success["steps"][0]["outputs"] == {"status": "SUCCESS", "n": 3, "region": "eu", "seen": "none"}
    assert on_success["outputs"] == {"status": "SUCCESS"}
    assert always["id"] == "always" and (tmp_path / "always").read_text() == "SUCCESS 0"
    assert not (tmp_path / "failure").exists()

    failed = run_cli("run", flow, "--json", env={**env, "BREAK": "1"})
    assert failed.exit_code == 1
    assert [h["id"] for h in failed.json["handlers"]] == ["on_failure", "always"]
    assert (tmp_path / "failure").read_text() == "failed: b"
    assert (tmp_path / "always").read_text() == "FAILED 1"


def test_no_handler_runs_after_an_interrupted_run(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    env = {**cli_env, "MARKS": str(tmp_path), "SLEEP_FOR": "30"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "aetherflow.cli", "run", str(flow), "--log-format", "json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stderr:
        if '"process.started"' in line:
            break
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert not (tmp_path / "failure").exists() and not (tmp_path / "always").exists()


def test_validate_checks_handler_steps(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", """
        version: 1
        flow: {id: v}
        jobs:
          - {id: a, steps: [{id: s, type: test.echo, persist: {"bad-name": "{{ result }}", twice: 1}}, {id: t, type: test.echo, persist: {twice: 2}}]}
        handlers:
          on_failure:
            - {id: x, type: test.echo, inputs: {values: {s: "{{ run.status }}"}}, persist: {n: 1}}
            - {id: x, type: test.ecko}
        """)
    result = run_cli("validate", flow, "--json", env=cli_env)
    assert result.exit_code == 2
    messages = {(e["path"], e["message"]) for e in result.json["errors"]}
    assert ("handlers.on_failure[0].persist", "a handler step cannot persist values") in messages
    assert ("handlers.on_failure[1].id", "duplicate step id 'x' in handlers.on_failure") in messages
    assert ("handlers.on_failure[1].type", "unknown step type 'test.ecko'") in messages
    assert ("jobs[0].steps[0].persist.bad-name", "invalid persisted name 'bad-name'") in messages
    assert ("jobs[0].steps[1].persist.twice", "'twice' is persisted by two steps") in messages
