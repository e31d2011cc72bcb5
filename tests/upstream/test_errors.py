"""Forms written for aetherflow-core 0.0.14 that are not accepted here fail with a
located error (exit 2) whose hint is the rewrite."""

from __future__ import annotations

import pytest

from aetherflow.core.errors import SpecError
from aetherflow.core.spec import parse_flow
from tests.helpers import base_env, run_cli, write_flow


def _validate(tmp_path, text):
    flow = write_flow(tmp_path / "flow.yaml", text)
    result = run_cli("validate", flow, env=base_env(tmp_path))
    assert result.exit_code == 2, result.output
    return flow, result.stderr


def test_default_syntax_and_bare_names_in_templates_name_the_rewrite(tmp_path):
    flow, err = _validate(tmp_path, """
version: 1
flow: {id: t}
resources:
  api:
    kind: rest
    driver: httpx
    config:
      base_url: "{{env.API_URL:https://api.example.test}}"
      token: "{{API_TOKEN}}"
jobs:
  - id: a
    steps:
      - id: s
        type: external.process
        inputs: {command: "echo {{TARGET:prod}} {{ run_id }}"}
""")
    assert (
        f"{flow}:8:17 at resources.api.config.base_url: a default is written with the default filter: "
        "{{env.API_URL:https://api.example.test}}\n  hint: write {{ env.API_URL | default('https://api.example.test') }}"
    ) in err
    assert (
        f"{flow}:9:14 at resources.api.config.token: 'API_TOKEN' is not a template root here; environment variables "
        "are read from env: {{API_TOKEN}}\n  hint: write {{ env.API_TOKEN }}"
    ) in err
    assert "jobs[0].steps[0].inputs.command: a default is written with the default filter: {{TARGET:prod}}" in err
    assert "hint: write {{ env.TARGET | default('prod') }}" in err
    assert "run_id" not in err


def test_short_step_references_are_found_by_validate(tmp_path):
    flow, err = _validate(tmp_path, """
version: 1
flow: {id: t}
jobs:
  - id: a
    steps:
      - {id: list, type: check_items, inputs: {items: [1, 2]}}
      - id: use
        type: check_items
        inputs: {items: "{{ steps.list.count }}"}
        outputs: {n: "{{ steps.list.outputs.count }}"}
""")
    assert f"{flow}:9:25 at jobs[0].steps[1].inputs.items: step outputs are read as steps.<id>.outputs.<key>: steps.list.count" in err
    assert "hint: write steps.list.outputs.count" in err
    assert "outputs.n" not in err


def test_flow_keys_of_that_version_name_their_replacement(tmp_path):
    flow, err = _validate(tmp_path, """
version: 1
flow:
  id: t
  workspace:
    root: /tmp/w
    layout: {artifacts: artifacts}
  state: {backend: file, path: /tmp/s}
  locks: {scope: flow, ttl_seconds: 60}
jobs:
  - id: a
    steps: [{id: s, type: check_items, inputs: {items: [1]}}]
""")
    assert f"{flow}:6:5 at flow.workspace.layout: unknown key 'layout'\n  hint: there is no workspace layout here" in err
    assert f"{flow}:7:20 at flow.state.backend: invalid value 'file'\n  hint: the state here is `backend: sqlite`" in err
    assert f"{flow}:8:3 at flow.locks: unknown key 'locks'\n  hint: `locks:` there is `lock:` here: `lock: {{key: <name>, ttl_seconds: N}}`" in err


def test_external_process_inputs_of_that_version_point_at_their_replacement(tmp_path):
    flow, err = _validate(tmp_path, """
version: 1
flow: {id: t}
jobs:
  - id: a
    steps:
      - id: s
        type: external.process
        inputs:
          command: [echo, hi]
          log: {stdout: capture, stderr: capture}
          success: {exit_codes: [0, 3]}
          retry: {max_attempts: 3, retry_on_exit_codes: [75]}
          outputs: {line: x}
""")
    assert "inputs.log" not in err and "inputs.success" not in err  # the same forms exist here
    assert f"{flow}:12:11 at jobs[0].steps[0].inputs.retry: unknown input 'retry' for step type 'external.process'" in err
    assert "retries belong to the step here: `retry: {max_attempts: N, delay_seconds: S}`" in err
    assert "step outputs are chosen with the step's own `outputs:`" in err


def test_the_old_keys_of_the_contract_inputs_say_what_replaces_them(tmp_path):
    from aetherflow.core.errors import StepInputError
    from aetherflow.core.steps.builtin.process import ExternalProcess
    from tests.helpers import step_context

    ctx = step_context(tmp_path)
    for inputs, hint in (
        ({"idempotency": {"strategy": "marker", "marker_path": "done.flag"}}, "idempotency is {marker: PATH} here"),
        ({"success": {"marker_file": "done.flag"}}, "a marker is idempotency: {marker: PATH}"),
        ({"log": {"stdout": "capture", "file_path": "x.log"}}, "log: {stdout: file:PATH, stderr: file:PATH}"),
    ):
        with pytest.raises(StepInputError) as caught:
            ExternalProcess().run(ctx, ExternalProcess.bind_inputs({"command": ["true"], **inputs}))
        assert hint in caught.value.hint


def test_an_input_the_step_declares_is_never_reported_as_an_old_form():
    """The hints are looked up only for undeclared inputs: when external.process gains
    an input of that version (as it gained `log`), the same flow validates."""
    from aetherflow.core.api import Input
    from aetherflow.core.steps import registry

    base = registry.get_step("external.process")
    extended = type("ProcessWithOutputs", (base,), {"inputs": {**base.inputs, "outputs": Input(dict)}})
    text = """
version: 1
flow: {id: t}
jobs:
  - id: a
    steps:
      - {id: s, type: external.process, inputs: {command: [echo], outputs: {line: x}}}
"""
    with pytest.raises(SpecError, match="unknown input 'outputs'"):
        parse_flow(text)
    registry._registered["external.process"] = extended
    try:
        parse_flow(text)
    finally:
        registry._registered["external.process"] = base


def test_step_types_and_drivers_of_that_version_name_theirs(tmp_path):
    flow, err = _validate(tmp_path, """
version: 1
flow: {id: t}
resources:
  share: {kind: smb, driver: pysmb, config: {server: files, share: data}}
  dw: {kind: db, driver: oracledb, config: {url: "oracle://u@h/db"}}
jobs:
  - id: a
    steps:
      - {id: l, type: sftp_list_files, inputs: {resource: share, remote_dir: in}}
      - {id: z, type: zip, inputs: {dest_path: out.zip, items: ["*.csv"]}}
""")
    assert f"{flow}:4:30 at resources.share.driver: unknown driver 'pysmb' for kind 'smb'\n  hint: `driver: pysmb` there is `driver: smbprotocol` here" in err
    assert "resources.dw.driver: unknown driver 'oracledb' for kind 'db'\n  hint: Oracle is reached through `driver: sqlalchemy` here" in err
    assert "unknown step type 'sftp_list_files'\n  hint: the step type sftp_list_files there is files_list here" in err
    assert "the step type zip there is archive_create here; inputs dest_path -> output, items -> files, src_dir -> base_dir" in err


@pytest.mark.parametrize(
    ("kind_driver", "config", "options", "message", "hint"),
    [
        ("rest/httpx", "{base_url: 'http://x', bearer_token: abcd1234}", "{}", "unknown config key 'bearer_token'", "`bearer_token` there is `token` here"),
        ("sftp/paramiko", "{host: h, user: u}", "{}", "unknown config key 'user'", "`user` there is `username` here"),
        ("mail/smtp", "{host: h}", "{timeout: 5}", "unknown options key 'timeout'", "`timeout` there is `timeout_seconds` here"),
        ("rest/httpx", "{base_url: 'http://x'}", "{verify_ssl: false}", "unknown options key 'verify_ssl'", "`verify_ssl` there is `verify` under config here"),
        ("rest/httpx", "{base_url: 'http://x'}", "{retries: 3}", "unknown options key 'retries'", "connectors never retry here"),
        ("smb/smbprotocol", "{server: files}", "{}", "missing required config key 'share'", "a SHARE:/path prefix in a step does not choose the share here"),
    ],
)
def test_connector_keys_of_that_version_name_theirs_in_resolve(tmp_path, kind_driver, config, options, message, hint):
    kind, driver = kind_driver.split("/")
    flow = write_flow(tmp_path / "flow.yaml", f"""
version: 1
flow: {{id: t}}
resources:
  r: {{kind: {kind}, driver: {driver}, config: {config}, options: {options}}}
jobs:
  - id: a
    steps: [{{id: s, type: check_items, inputs: {{items: [1]}}}}]
""")
    result = run_cli("resolve", flow, env=base_env(tmp_path))
    assert result.exit_code == 2, result.output
    assert message in result.output and hint in result.output.split("hint: ", 1)[1]


def test_postgres_keeps_its_own_user_key(tmp_path):
    flow = write_flow(tmp_path / "flow.yaml", """
version: 1
flow: {id: t}
resources:
  pg: {kind: db, driver: postgres, config: {host: h, user: u}}
jobs:
  - id: a
    steps: [{id: s, type: check_items, inputs: {items: [1]}}]
""")
    result = run_cli("resolve", flow, "--json", env=base_env(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.json["resources"][0]["config"]["user"] == "u"


def test_old_template_forms_in_a_profiles_file_name_the_rewrite_in_resolve(tmp_path):
    flow = write_flow(tmp_path / "flow.yaml", """
version: 1
flow: {id: t}
resources:
  api: {kind: rest, driver: httpx, profile: p}
jobs:
  - id: a
    steps: [{id: s, type: check_items, inputs: {items: [1]}}]
""")
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text('p:\n  config:\n    base_url: "http://{{API_HOST:localhost}}:{{API_PORT}}"\n')
    result = run_cli("resolve", flow, env=base_env(tmp_path, AETHERFLOW_PROFILES_FILE=str(profiles)))
    assert result.exit_code == 2, result.output
    assert f"{profiles}:3:15 at p.config.base_url: a default is written with the default filter: {{{{API_HOST:localhost}}}}" in result.stderr
    assert "hint: write http://{{ env.API_HOST | default('localhost') }}:{{ env.API_PORT }}" in result.stderr
