"""Run variables (`--var`, `--vars-file`, `vars:`): typed, checked, stored with the run,
reused on resume, shown with their source by `resolve`, and masked when secret."""

from __future__ import annotations

import json

from tests.helpers import run_cli, write_flow

FLOW = """
version: 1
flow:
  id: vars_flow
  workspace: {root: "{{ env.AETHERFLOW_WORK_ROOT }}/{{ vars.area }}"}
vars:
  limit: {type: integer, default: 10, description: rows per batch}
  day: {type: string, required: true}
  area: {type: string, default: eu}
  full: {type: boolean, default: false}
  tags: {type: list, default: []}
resources:
  db:
    kind: db
    driver: sqlite3
    config: {path: "{{ env.DB_DIR }}/{{ vars.area }}.sqlite"}
jobs:
  - id: first
    steps:
      - id: echo
        type: test.echo
        inputs: {values: {limit: "{{ vars.limit }}", next: "{{ vars.limit + 1 }}", day: "{{ vars.day }}", tags: "{{ vars.tags }}"}}
        outputs: {limit: "{{ result.limit }}"}
  - id: gated
    when: "vars.full"
    steps:
      - {id: s, type: test.echo}
  - id: flaky
    depends_on: [first]
    steps:
      - id: maybe
        type: test.fail
        inputs: {message: "{{ env.FAIL_WITH | default('') }}", succeed_on_attempt: "{{ 1 if env.FAIL_WITH is not defined else 0 }}"}
"""


def run(tmp_path, env, *args):
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    result = run_cli("run", flow, "--json", *args, env={**env, "DB_DIR": str(tmp_path)})
    assert "Traceback" not in result.output, result.output
    return result


def test_a_declared_integer_variable_is_coerced_and_read_in_every_phase(tmp_path, cli_env):
    result = run(tmp_path, cli_env, "--var", "limit=7", "--var", "day=2024-05-01", "--var", "tags=a,b", "--var", "area=us")
    assert result.exit_code == 0, result.output
    doc = result.json
    echo = doc["jobs"][0]["steps"][0]["outputs"]
    assert echo == {"limit": 7, "next": 8, "day": "2024-05-01", "tags": ["a", "b"]}
    assert doc["jobs"][0]["outputs"] == {"limit": 7}
    assert doc["vars"] == {"limit": 7, "day": "2024-05-01", "area": "us", "full": False, "tags": ["a", "b"]}
    assert [job["status"] for job in doc["jobs"]] == ["SUCCESS", "SKIPPED", "SUCCESS"], "when: vars.full is false"
    assert (tmp_path / "work" / "us" / "vars_flow" / "first").is_dir(), "flow.workspace.root reads vars"

    gated = run(tmp_path, cli_env, "--var", "day=x", "--var", "full=yes")
    assert gated.json["jobs"][1]["status"] == "SUCCESS"


def test_an_undeclared_variable_is_exit_2_naming_it_with_a_hint(tmp_path, cli_env):
    result = run(tmp_path, cli_env, "--var", "day=x", "--var", "limt=5")
    assert result.exit_code == 2
    assert "undeclared variable 'limt' (var:cli)" in result.stderr
    assert "did you mean 'limit'?" in result.stderr
    assert result.stdout == ""


def test_a_mistyped_or_missing_variable_is_exit_2(tmp_path, cli_env):
    mistyped = run(tmp_path, cli_env, "--var", "day=x", "--var", "limit=ten")
    assert mistyped.exit_code == 2
    assert "variable 'limit' (var:cli, declared as integer): expected integer, got string 'ten'" in mistyped.stderr
    missing = run(tmp_path, cli_env)
    assert missing.exit_code == 2
    assert "variable 'day' is required" in missing.stderr and "--var day=VALUE" in missing.stderr
    malformed = run(tmp_path, cli_env, "--var", "day")
    assert malformed.exit_code == 2 and "--var 'day' is not NAME=VALUE" in malformed.stderr


def test_a_vars_file_gives_typed_values_and_cli_wins_over_it(tmp_path, cli_env):
    (tmp_path / "vars.yaml").write_text("day: 2024-06-30\nlimit: 3\ntags: [x]\n")
    (tmp_path / "more.json").write_text(json.dumps({"limit": 4}))
    result = run(tmp_path, cli_env, "--vars-file", tmp_path / "vars.yaml", "--vars-file", tmp_path / "more.json", "--var", "tags=[\"y\"]")
    assert result.exit_code == 0, result.output
    assert result.json["vars"]["day"] == "2024-06-30", "a YAML date is ISO text"
    assert result.json["vars"]["limit"] == 4, "a later file wins"
    assert result.json["vars"]["tags"] == ["y"], "--var wins over files"

    (tmp_path / "bad.yaml").write_text("day: x\nlimit: many\n")
    bad = run(tmp_path, cli_env, "--vars-file", tmp_path / "bad.yaml")
    assert bad.exit_code == 2
    assert f"{tmp_path / 'bad.yaml'}:2:1" in bad.stderr and "variable 'limit'" in bad.stderr


def test_variables_are_stored_with_the_run_and_reused_on_resume(tmp_path, cli_env):
    env = {**cli_env, "FAIL_WITH": "not yet"}
    first = run(tmp_path, env, "--var", "limit=7", "--var", "day=2024-05-01", "--var", "area=us")
    assert first.exit_code == 1
    run_id = first.json["run_id"]

    shown = run_cli("runs", "show", run_id, "--json", env=cli_env)
    assert shown.json["vars"]["limit"] == {"value": 7, "source": "var:cli"}

    other = run(tmp_path, cli_env, "--run-id", run_id, "--var", "limit=8")
    assert other.exit_code == 2
    assert f"variable 'limit' is 8 (var:cli), but run {run_id} started with 7" in other.stderr
    assert "leave limit out to reuse the stored value" in other.stderr
    same = run(tmp_path, env, "--run-id", run_id, "--var", "limit=7")
    assert same.exit_code == 1 and same.json["run_id"] == run_id, "the same value given again is accepted"

    resumed = run(tmp_path, cli_env, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert resumed.json["run_id"] == run_id
    assert resumed.json["vars"]["limit"] == 7 and resumed.json["vars"]["area"] == "us", "stored values, not the defaults"
    assert resumed.json["vars"]["day"] == "2024-05-01", "a required variable is not required again"
    assert resumed.json["jobs"][0]["steps"][0]["outputs"]["next"] == 8


def test_resolve_shows_each_variable_with_its_source(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    (tmp_path / "vars.yaml").write_text("area: apac\n")
    env = {**cli_env, "DB_DIR": str(tmp_path)}
    shown = run_cli("resolve", flow, "--var", "day=2024-05-01", "--vars-file", tmp_path / "vars.yaml", "--show", env=env)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert any(line.split() == ["day", '"2024-05-01"', "var:cli"] for line in lines), shown.stdout
    assert any(line.split() == ["area", '"apac"', f"var:file:{tmp_path / 'vars.yaml'}"] for line in lines), shown.stdout
    assert any(line.split() == ["limit", "10", "var:default"] for line in lines), shown.stdout

    doc = run_cli("resolve", flow, "--var", "day=2024-05-01", "--json", env=env).json
    assert {var["name"]: var["source"] for var in doc["vars"]}["day"] == "var:cli"
    (db,) = doc["resources"]
    assert db["config"]["path"] == f"{tmp_path}/eu.sqlite"
    assert db["sources"]["config.path"] == "env:DB_DIR", "the first name a template read"

    missing = run_cli("resolve", flow, env=env)
    assert missing.exit_code == 2 and "variable 'day' is required" in missing.stderr


SECRET_FLOW = """
version: 1
flow: {id: secret_vars}
vars:
  api_token: {type: string, required: true}
  label: {type: string, secret: true, default: "quiet-label-value"}
  note: {type: string, default: plain}
jobs:
  - id: a
    steps:
      - id: echo
        type: test.echo
        inputs: {values: {header: "Bearer {{ vars.api_token }}", label: "{{ vars.label }}", note: "{{ vars.note }}"}}
      - {id: fail, type: test.fail, inputs: {message: "token {{ vars.api_token }} refused"}}
"""

TOKEN = "tok-9f8e7d6c5b4a"


def test_secret_variables_are_masked_in_resolve_output_and_state(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", SECRET_FLOW)
    shown = run_cli("resolve", flow, "--var", f"api_token={TOKEN}", "--show", env=cli_env)
    assert shown.exit_code == 0, shown.output
    assert TOKEN not in shown.output and "quiet-label-value" not in shown.output
    assert any(line.split() == ["note", '"plain"', "var:default"] for line in shown.stdout.splitlines())
    doc = run_cli("resolve", flow, "--var", f"api_token={TOKEN}", "--json", env=cli_env).json
    assert {var["name"]: var["value"] for var in doc["vars"]} == {"api_token": "***", "label": "***", "note": "plain"}

    result = run_cli("run", flow, "--var", f"api_token={TOKEN}", "--json", "--log-format", "json", env=cli_env)
    assert result.exit_code == 1
    assert TOKEN not in result.output and "quiet-label-value" not in result.output
    assert result.json["jobs"][0]["steps"][0]["outputs"]["header"] == "Bearer ***"
    assert "token *** refused" in result.json["jobs"][0]["steps"][1]["error"]
    state = (tmp_path / "state" / "state.db").read_bytes()
    assert TOKEN.encode() not in state and b"quiet-label-value" not in state

    run_id = result.json["run_id"]
    again = run_cli("run", flow, "--run-id", run_id, env=cli_env)
    assert again.exit_code == 2
    assert "secret variable 'api_token' differs from the value run" in again.stderr and "not given again" in again.stderr
    wrong = run_cli("run", flow, "--run-id", run_id, "--var", "api_token=other-token-1", env=cli_env)
    assert wrong.exit_code == 2 and "other-token-1" not in wrong.output
    right = run_cli("run", flow, "--run-id", run_id, "--var", f"api_token={TOKEN}", "--json", env=cli_env)
    assert right.exit_code == 1 and right.json["jobs"][0]["steps"][0]["status"] == "SUCCESS", right.output


def test_validate_reports_undeclared_variables_and_bad_declarations(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", """
        version: 1
        flow: {id: v, lock: {key: "lock-{{ vars.aera }}"}}
        vars:
          area: {type: string, default: eu}
          count: {type: integer, default: many}
          must: {type: string, required: true, default: x}
        jobs:
          - id: a
            when: "vars.ful"
            steps:
              - {id: s, type: test.echo, inputs: {values: {x: "{{ vars['cuont'] }}"}}}
        """)
    result = run_cli("validate", flow, "--json", env=cli_env)
    assert result.exit_code == 2
    messages = {(e["path"], e["message"]) for e in result.json["errors"]}
    assert ("flow.lock.key", "template reads undeclared variable 'aera'") in messages
    assert ("jobs[0].when", "template reads undeclared variable 'ful'") in messages
    assert ("jobs[0].steps[0].inputs.values.x", "template reads undeclared variable 'cuont'") in messages
    assert ("vars.count.default", "default of variable 'count' (integer): expected integer, got string 'many'") in messages
    assert ("vars.must.default", "variable 'must' is required and has a default") in messages
    hints = {e["path"]: e["hint"] for e in result.json["errors"]}
    assert hints["flow.lock.key"] == "did you mean 'area'?"


def test_the_state_location_cannot_read_variables(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", """
        version: 1
        flow: {id: v, state: {backend: sqlite, path: "{{ vars.area }}.db"}}
        vars: {area: {default: eu}}
        jobs:
          - {id: a, steps: [{id: s, type: test.echo}]}
        """)
    result = run_cli("validate", flow, "--json", env=cli_env)
    assert result.exit_code == 2
    assert [(e["path"], e["message"]) for e in result.json["errors"]] == [("flow.state.path", "the state location cannot read run variables")]
