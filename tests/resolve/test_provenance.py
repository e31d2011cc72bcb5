"""Merge order and provenance shown by `resolve --show --json` (SPEC 4.3, 4.7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import run_cli, write_flow

SECRETS = Path(__file__).resolve().parents[1] / "fixtures" / "secrets_provider.py"

FLOW = """
version: 1
flow:
  id: provenance
resources:
  db_main:
    kind: demo
    driver: echo
    config:
      host: flow-host
      port: 1111
      dbname: "{{ env.DB_NAME }}"
      user: "{{ env.DB_USER }}"
      password: "enc:drowssap-terces"
      nested: {a: 1, b: 2}
      items: [1, 2]
    options: {retries_hint: 1}
    decode: {config: {password: true}}
  other:
    kind: demo
    driver: echo
    profile: staging
    config: {host: other-flow-host}
jobs:
  - id: a
    steps: [{id: s, type: check_items, inputs: {items: [1]}}]
"""

PROFILES = """
prod:
  config: {host: generic-host, timeout: 5, nested: {b: 3}, items: [9]}
  options: {retries_hint: 2}
  resources:
    db_main:
      config: {host: specific-host}
staging:
  config: {host: staging-host}
"""


@pytest.fixture
def setup(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    (tmp_path / "profiles.yaml").write_text(PROFILES)
    env_file = tmp_path / "db.env"
    env_file.write_text("DB_USER=file_user\n")
    env = {**cli_env, "DB_NAME": "sales", "AETHERFLOW_SECRETS_PATH": str(SECRETS)}
    return flow, env_file, env


def resources_of(result) -> dict:
    return {r["name"]: r for r in result.json["resources"]}


def test_merge_order_and_sources_of_every_leaf(setup):
    flow, env_file, env = setup
    result = run_cli("resolve", flow, "--profile", "prod", "--env-file", env_file, "--show", "--json", env=env)
    assert result.exit_code == 0, result.output
    db = resources_of(result)["db_main"]
    assert db["profile"] == "prod" and db["ok"] is True
    assert db["config"] == {
        "host": "specific-host",
        "port": 1111,
        "dbname": "sales",
        "user": "file_user",
        "password": "***",
        "nested": {"a": 1, "b": 3},
        "items": [9],
        "timeout": 5,
    }
    assert db["options"] == {"retries_hint": 2}
    assert db["sources"] == {
        "config.host": "profile:prod.resources.db_main",
        "config.port": "flow",
        "config.dbname": "env:DB_NAME",
        "config.user": "env:DB_USER",
        "config.password": "decoded",
        "config.nested.a": "flow",
        "config.nested.b": "profile:prod",
        "config.items": "profile:prod",
        "config.timeout": "profile:prod",
        "options.retries_hint": "profile:prod",
    }
    assert db["env_origins"] == {"DB_NAME": "process", "DB_USER": f"file:{env_file}"}
    assert result.json["profile"] == "prod"
    assert result.json["fingerprint"].startswith("sha256:")


def test_a_resource_pin_beats_the_run_profile(setup):
    flow, env_file, env = setup
    result = run_cli("resolve", flow, "--profile", "prod", "--env-file", env_file, "--json", "--resource", "other", env=env)
    assert result.exit_code == 0, result.output
    [other] = result.json["resources"]
    assert other["profile"] == "staging"
    assert other["config"] == {"host": "staging-host"}
    assert other["sources"] == {"config.host": "profile:staging"}


def test_profile_from_environment_and_profiles_json(setup):
    flow, env_file, env = setup
    env = {**env, "AETHERFLOW_PROFILE": "prod", "AETHERFLOW_PROFILES_JSON": '{"prod": {"config": {"host": "json-host"}}, "staging": {}}'}
    result = run_cli("resolve", flow, "--env-file", env_file, "--json", "--resource", "db_main", env=env)
    assert result.exit_code == 0, result.output
    [db] = result.json["resources"]
    assert db["config"]["host"] == "json-host"
    assert db["sources"]["config.host"] == "profile:prod"


def test_later_env_files_override_earlier_ones_and_the_process(setup, tmp_path):
    flow, env_file, env = setup
    second = tmp_path / "second.env"
    second.write_text("DB_USER=second_user\nDB_NAME=from_file\n")
    result = run_cli("resolve", flow, "--profile", "prod", "--env-file", env_file, "--env-file", second, "--json", "--resource", "db_main", env=env)
    [db] = result.json["resources"]
    assert db["config"]["user"] == "second_user" and db["config"]["dbname"] == "from_file"
    assert db["env_origins"] == {"DB_NAME": f"file:{second}", "DB_USER": f"file:{second}"}


def test_show_prints_values_and_sources_as_a_table(setup):
    flow, env_file, env = setup
    result = run_cli("resolve", flow, "--profile", "prod", "--env-file", env_file, "--show", env=env)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    host = next(line for line in lines if line.startswith("config.host "))
    assert '"specific-host"' in host and "profile:prod.resources.db_main" in host
    user = next(line for line in lines if line.startswith("config.user "))
    assert f"env:DB_USER (file:{env_file})" in user
    assert any(line.startswith("config.password ") and '"***"' in line and "decoded" in line for line in lines)
    assert "fingerprint: sha256:" in result.stdout


def test_unknown_profile_lists_the_known_ones(setup):
    flow, env_file, env = setup
    result = run_cli("resolve", flow, "--profile", "prd", "--env-file", env_file, env=env)
    assert result.exit_code == 2
    assert "unknown profile 'prd'" in result.stderr and "did you mean 'prod'" in result.stderr
    assert "known profiles: prod, staging" in result.stderr


def test_fingerprint_changes_with_configuration_and_secrets_but_is_stable(setup, tmp_path):
    flow, env_file, env = setup

    def fingerprint(**extra):
        result = run_cli("resolve", flow, "--profile", "prod", "--env-file", env_file, "--json", env={**env, **extra})
        assert result.exit_code == 0, result.output
        return result.json["fingerprint"]

    base = fingerprint()
    assert fingerprint() == base
    assert fingerprint(DB_NAME="other") != base
    flow.write_text(flow.read_text().replace("enc:drowssap-terces", "enc:drowssap-rehto"))
    changed_secret = fingerprint()
    assert changed_secret != base
    assert "rehto" not in changed_secret and "other-password" not in changed_secret


def test_schema_coerces_env_strings_and_fills_defaults(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", """
version: 1
flow: {id: typed}
resources:
  api:
    kind: demo
    driver: typed
    config:
      host: "{{ env.API_HOST }}"
      port: "{{ env.API_PORT }}"
      use_tls: "{{ env.API_TLS }}"
      ratio: "0.5"
      tags: "a, b"
jobs:
  - id: a
    steps: [{id: s, type: check_items, inputs: {items: [1]}}]
""")
    env = {**cli_env, "API_HOST": "api.internal", "API_PORT": "8443", "API_TLS": "no"}
    result = run_cli("resolve", flow, "--json", env=env)
    assert result.exit_code == 0, result.output
    [api] = result.json["resources"]
    assert api["config"] == {"host": "api.internal", "port": 8443, "use_tls": False, "ratio": 0.5, "tags": ["a", "b"]}
    assert api["options"] == {"timeout_seconds": 30.0}
    assert api["sources"]["config.port"] == "env:API_PORT"
    assert api["sources"]["options.timeout_seconds"] == "default"


def test_schema_rejects_unknown_keys_and_bad_values_with_location(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", """
version: 1
flow: {id: typed}
resources:
  api:
    kind: demo
    driver: typed
    config:
      host: h
      prot: 1
  bad_port:
    kind: demo
    driver: typed
    config:
      host: h
      port: "{{ env.API_PORT }}"
jobs:
  - id: a
    steps: [{id: s, type: check_items, inputs: {items: [1]}}]
""")
    result = run_cli("resolve", flow, env={**cli_env, "API_PORT": "eighty"})
    assert result.exit_code == 2
    assert f"{flow}:9:7 at resources.api.config.prot" in result.stderr
    assert "unknown config key 'prot' for demo/typed (did you mean 'port'?)" in result.stderr
    assert "config.port (env:API_PORT): expected integer, got string 'eighty'" in result.stderr
    assert f"{flow}:15:" in result.stderr
    run = run_cli("run", flow, env={**cli_env, "API_PORT": "eighty"})
    assert run.exit_code == 2 and "unknown config key 'prot'" in run.stderr


def typed_api_flow(path, resource: str) -> Path:
    """A flow whose only resource, ``api`` (demo/typed), is written as ``resource``."""
    return write_flow(path, "version: 1\nflow: {id: typed}\nresources:\n  api:\n" + resource + """
jobs:
  - id: a
    steps: [{id: s, type: check_items, inputs: {items: [1]}}]
""")


def test_an_empty_value_counts_as_not_given_and_gets_the_default(tmp_path, cli_env):
    flow = typed_api_flow(tmp_path / "flow.yaml", """\
    kind: demo
    driver: typed
    config:
      host: "{{ env.API_HOST }}"
      port: "{{ env.API_PORT | default('') }}"
      api_secret: "{{ env.API_SECRET | default('') }}"
      tags: null
    options: {timeout_seconds: ""}
""")
    result = run_cli("resolve", flow, "--show", "--json", env={**cli_env, "API_HOST": "api.internal"})
    assert result.exit_code == 0, result.output
    [api] = result.json["resources"]
    assert api["config"] == {"host": "api.internal", "port": 5432, "use_tls": True}
    assert api["options"] == {"timeout_seconds": 30.0}
    assert api["sources"] == {
        "config.host": "env:API_HOST",
        "config.port": "default",
        "config.use_tls": "default",
        "options.timeout_seconds": "default",
    }


def test_a_required_key_left_empty_is_reported_missing(tmp_path, cli_env):
    flow = typed_api_flow(tmp_path / "flow.yaml", """\
    kind: demo
    driver: typed
    config: {host: "{{ env.API_HOST | default('') }}"}
""")
    result = run_cli("resolve", flow, env=cli_env)
    assert result.exit_code == 2
    assert "missing required config key 'host' for demo/typed" in result.stderr


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"prod": ' * 2000 + "{}" + "}" * 2000, "nested more than 100 levels deep"),
        ('{"prod": {"config": {"port": ' + "7" * 5000 + "}}}", "integer with more than 4300 digits"),
    ],
    ids=["deep", "long-integer"],
)
def test_profiles_json_beyond_the_limits_is_a_clear_error(setup, text, message):
    flow, _env_file, env = setup
    result = run_cli("resolve", flow, env={**env, "AETHERFLOW_PROFILES_JSON": text})
    assert result.exit_code == 2, result.output
    assert "AETHERFLOW_PROFILES_JSON" in result.stderr and message in result.stderr
    assert "internal error" not in result.stderr
