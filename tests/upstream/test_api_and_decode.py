"""The names old plugins import, and the list form of ``decode``."""

from __future__ import annotations

from pathlib import Path

import pytest

from aetherflow.core.connectors.manager import ConnectorManager
from aetherflow.core.prepare import Invocation, prepare_flow
from tests.helpers import base_env, run_cli, write_flow

SECRETS = Path(__file__).resolve().parents[1] / "fixtures" / "secrets_provider.py"
PLUGINS = Path(__file__).resolve().parents[1] / "fixtures" / "plugins"


def test_old_api_names_with_an_equivalent_are_the_same_objects():
    from aetherflow.core import api
    from aetherflow.core.api import RunContext, get_connector
    from aetherflow.core.connectors.registry import get_connector_class
    from aetherflow.core.context import StepContext
    from aetherflow.core.settings import Settings
    from aetherflow.core.steps.registry import get_step

    assert RunContext is StepContext and get_connector is get_connector_class
    assert api.Settings is Settings and api.get_step is get_step
    assert api.get_connector("db", "sqlite3").__name__ == "SQLiteConnector"
    assert {"RunContext", "RemoteFileMeta", "FlowSpec"} <= set(dir(api))


@pytest.mark.parametrize(
    ("name", "instead"),
    [
        ("ConnectorInit", "Cls(*, config, options)"),
        ("require", "requires=[\"module\"]"),
        ("require_attr", "requires=[\"module\"]"),
        ("LocksSpec", "flow.lock"),
    ],
)
def test_old_api_names_without_an_equivalent_say_what_to_use(name, instead):
    with pytest.raises(ImportError) as caught:
        exec(f"from aetherflow.core.api import {name}", {})
    assert f"aetherflow.core.api has no {name}" in str(caught.value)
    assert instead in str(caught.value) and "docs/migrating.md" in str(caught.value)


def test_an_unknown_name_is_still_an_attribute_error():
    import aetherflow.core.api as api

    with pytest.raises(AttributeError):
        api.NoSuchName  # noqa: B018


FLOW = """
version: 1
flow: {id: decode_paths}
resources:
  vault:
    kind: demo
    driver: leaky
    config:
      password: "enc:terces-gnol"
      headers: {Authorization: "enc:nekot-reraeb", Accept: json}
    options: {api_key: "enc:yek-ipa"}
    decode:
      config_paths: [password, headers.Authorization]
      options_paths: [api_key]
jobs:
  - id: a
    steps: [{id: s, type: check_items, inputs: {items: [1]}}]
"""


DECODE_SECTION = "    decode:\n      config_paths: [password, headers.Authorization]\n      options_paths: [api_key]\n"


def _env(tmp_path, **extra):
    return base_env(tmp_path, AETHERFLOW_PLUGIN_PATHS=str(PLUGINS), AETHERFLOW_SECRETS_PATH=str(SECRETS), **extra)


def test_decode_config_paths_decodes_what_the_connector_receives(tmp_path):
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    prepared = prepare_flow(Invocation(flow_path=str(flow), base_env=_env(tmp_path)))
    (resource,) = prepared.resources
    assert resource.ok, resource.error
    manager = ConnectorManager({resource.name: resource}, scope="none")
    try:
        connector = manager["vault"]
        assert connector.config["password"] == "long-secret"
        assert connector.config["headers"] == {"Authorization": "bearer-token", "Accept": "json"}
        assert connector.options["api_key"] == "api-key"
    finally:
        manager.close()
    result = run_cli("resolve", flow, "--json", env=_env(tmp_path))
    assert result.exit_code == 0, result.output
    row = result.json["resources"][0]
    assert row["sources"]["config.password"] == "decoded"
    assert row["sources"]["config.headers.Authorization"] == "decoded"
    assert row["config"]["headers"]["Authorization"] == "***"
    assert "long-secret" not in result.output and "bearer-token" not in result.output


def test_a_profile_may_mark_paths_with_the_list_form_too(tmp_path):
    flow = write_flow(tmp_path / "flow.yaml", FLOW.replace(DECODE_SECTION, "    profile: p\n"))
    (tmp_path / "profiles.yaml").write_text("p:\n  decode:\n    config_paths: [password]\n    config: {headers: {Authorization: true}}\n")
    prepared = prepare_flow(Invocation(flow_path=str(flow), base_env=_env(tmp_path)))
    (resource,) = prepared.resources
    assert resource.ok, resource.error
    assert resource.config["password"] == "long-secret" and resource.config["headers"]["Authorization"] == "bearer-token"
    assert resource.options["api_key"] == "enc:yek-ipa"


def test_an_unknown_key_under_decode_is_a_located_error(tmp_path):
    flow = write_flow(tmp_path / "flow.yaml", FLOW.replace("options_paths: [api_key]", "option_paths: [api_key]"))
    result = run_cli("validate", flow, env=_env(tmp_path))
    assert result.exit_code == 2
    assert f"{flow}:13:7 at resources.vault.decode.option_paths: unknown key 'option_paths' under decode (did you mean 'options_paths'?)" in result.stderr
    bad_leaf = write_flow(tmp_path / "leaf.yaml", FLOW.replace("config_paths: [password, headers.Authorization]", "config: {password: yes please}"))
    result = run_cli("validate", bad_leaf, env=_env(tmp_path))
    assert result.exit_code == 2
    assert "decode.config.password must be true or false, got 'yes please'" in result.stderr
    plain = write_flow(tmp_path / "plain.yaml", FLOW.replace(DECODE_SECTION, ""))
    (tmp_path / "profiles.yaml").write_text("p:\n  decode:\n    config_path: [password]\n")
    result = run_cli("resolve", plain, "--profile", "p", env=_env(tmp_path))
    assert result.exit_code == 2
    assert f"{tmp_path / 'profiles.yaml'}:3:5" in result.stderr and "unknown key 'config_path' under decode" in result.stderr
