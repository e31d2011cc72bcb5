"""``validate`` reports what can be known without connecting, each with file:line:col
and a hint: mistyped connector keys (read from the connector's schema, no driver
imported), job outputs nobody declares, a job read without depending on it, the inner
step of ``with_lock``, and a YAML boolean where a command word was meant."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import base_env, run_cli, write_flow

GREET = """
  - id: greet
    steps:
      - id: hello
        type: check_items
        inputs: {items: [1]}
        outputs:
          greeting: "{{ result.count }}"
          count: "{{ result.count }}"
"""

CASES = [
    (
        "connector-config-key",
        """
version: 1
flow: {id: t}
resources:
  api:
    kind: rest
    driver: httpx
    config:
      base_url: http://127.0.0.1:1
      time_out: 5
jobs:
  - id: a
    steps: [{id: s, type: check_items, inputs: {items: [1]}}]
""",
        (9, 7, "resources.api.config.time_out"),
        "resource 'api': unknown config key 'time_out' for rest/httpx",
        "known config keys:",
    ),
    (
        "connector-options-key",
        """
version: 1
flow: {id: t}
resources:
  db:
    kind: db
    driver: postgres
    config: {host: 127.0.0.1, dbname: x}
    options:
      statement_timout_seconds: 5
jobs:
  - id: a
    steps: [{id: s, type: check_items, inputs: {items: [1]}}]
""",
        (9, 7, "resources.db.options.statement_timout_seconds"),
        "resource 'db': unknown options key 'statement_timout_seconds' for db/postgres (did you mean 'statement_timeout'?)",
        "known options keys: application_name, connect_timeout, statement_timeout (see `aetherflow connectors show db/postgres`)",
    ),
    (
        "undeclared-job-output",
        """
version: 1
flow: {id: t}
jobs:""" + GREET + """
  - id: report
    depends_on: [greet]
    steps:
      - id: show
        type: check_items
        inputs:
          items: ["{{ jobs.greet.outputs.greting }}"]
""",
        (19, 19, "jobs[1].steps[0].inputs.items[0]"),
        "template reads jobs.greet.outputs.greting, which job 'greet' does not declare (did you mean 'greeting'?)",
        "job 'greet' declares: greeting, count",
    ),
    (
        "when-reads-a-job-not-depended-on",
        """
version: 1
flow: {id: t}
jobs:
  - id: report
    when: "jobs.greet.outputs.count > 0"
    steps:
      - {id: s, type: check_items, inputs: {items: [1]}}""" + GREET,
        (5, 11, "jobs[0].when"),
        "`when` reads job 'greet', which job 'report' does not depend on and which runs after it",
        "add 'greet' to depends_on of job 'report'",
    ),
    (
        "with-lock-inner-inputs",
        """
version: 1
flow: {id: t}
jobs:
  - id: a
    steps:
      - id: locked
        type: with_lock
        inputs:
          lock_key: nightly
          step:
            type: check_items
            inputs:
              items: [1]
              min_cont: 2
""",
        (14, 15, "jobs[0].steps[0].inputs.step.inputs.min_cont"),
        "unknown input 'min_cont' for step type 'check_items'",
        "did you mean 'min_count'?",
    ),
    (
        "yaml-boolean-as-command-word",
        """
version: 1
flow: {id: t}
jobs:
  - id: a
    steps:
      - id: noop
        type: external.process
        inputs:
          command: [true]
""",
        (9, 21, "jobs[0].steps[0].inputs.command[0]"),
        "input 'command', item 0: expected string or integer or number, got boolean True",
        'YAML reads an unquoted true as a boolean; quote it if a word was meant: "true"',
    ),
]


@pytest.mark.parametrize(("name", "text", "where", "message", "hint"), CASES, ids=[c[0] for c in CASES])
def test_validate_reports_the_mistake_with_position_and_hint(tmp_path, name, text, where, message, hint):
    flow = write_flow(tmp_path / "flow.yaml", text)
    result = run_cli("validate", flow, env=base_env(tmp_path))
    assert result.exit_code == 2, result.output
    line, column, path = where
    assert f"{flow}:{line}:{column} at {path}: {message}" in result.stderr, result.stderr
    assert f"hint: {hint}" in result.stderr
    assert "Traceback" not in result.output
    document = run_cli("validate", flow, "--json", env=base_env(tmp_path)).json
    assert [(e["line"], e["column"], e["path"]) for e in document["errors"]] == [where]


def test_validate_reads_connector_schemas_without_importing_drivers(tmp_path):
    flow = write_flow(tmp_path / "flow.yaml", CASES[1][1])
    probe = (
        "import sys\n"
        "from aetherflow.cli.main import app\n"
        "try:\n"
        f"    app(['validate', {str(flow)!r}])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 2, exc.code\n"
        "print(sorted(m for m in ('psycopg', 'httpx', 'paramiko', 'duckdb') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=base_env(tmp_path), timeout=120)
    assert "unknown options key 'statement_timout_seconds'" in proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_a_flow_reading_what_it_may_still_validates(tmp_path):
    flow = write_flow(tmp_path / "flow.yaml", """
version: 1
flow: {id: t}
jobs:""" + GREET + """
  - id: middle
    depends_on: [greet]
    steps: [{id: s, type: check_items, inputs: {items: [1]}}]
  - id: report
    depends_on: [middle]
    when: "jobs.greet.outputs.count > 0 and jobs.greet.outputs['greeting']"
    steps:
      - id: locked
        type: with_lock
        inputs:
          lock_key: k
          step: {type: external.process, inputs: {command: ["true", 5, "{{ jobs.greet.outputs.count }}"]}}
  - id: alert
    when: "jobs.greet.status == 'FAILED'"
    steps: [{id: s, type: check_items, inputs: {items: [1]}}]
""")
    result = run_cli("validate", flow, env=base_env(tmp_path))
    assert result.exit_code == 0, result.output
    assert json.dumps(result.stdout)
