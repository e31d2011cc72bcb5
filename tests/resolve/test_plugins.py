"""Plugins from AETHERFLOW_PLUGIN_PATHS and the aetherflow.plugins entry-point group."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.helpers import base_env, run_cli, write_flow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "plugins"


def test_template_plugin_loads_lists_and_serves_a_step(tmp_path, cli_env):
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir()
    shutil.copy(FIXTURES / "echo_connector.py", plugin_dir / "echo_connector.py")
    env = {**cli_env, "AETHERFLOW_PLUGIN_PATHS": f"{plugin_dir / 'echo_connector.py'},{FIXTURES / 'runner_steps.py'}"}

    listed = run_cli("connectors", "list", "--json", env=env)
    assert listed.exit_code == 0, listed.output
    row = next(r for r in listed.json if (r["kind"], r["driver"]) == ("demo", "echo"))
    assert row["origin"] == f"plugin:{plugin_dir / 'echo_connector.py'}"
    assert row["class"].endswith("EchoConnector") and row["available"] is True
    assert row["summary"] == "Talks to nothing; shows the shape of a connector."

    flow = write_flow(tmp_path / "flow.yaml", """
version: 1
flow: {id: plugin}
resources:
  greeter:
    kind: demo
    driver: echo
    config: {greeting: bonjour}
jobs:
  - id: a
    steps:
      - {id: use, type: test.use_resource, inputs: {resource: greeter}}
""")
    result = run_cli("run", flow, "--json", env=env)
    assert result.exit_code == 0, result.output
    assert result.json["jobs"][0]["steps"][0]["outputs"] == {"described": "bonjour from greeter"}


def test_broken_plugin_fails_the_command_naming_it_unless_not_strict(tmp_path, cli_env):
    broken = tmp_path / "broken_plugin.py"
    broken.write_text("import not_a_module_anywhere\n")
    env = {**cli_env, "AETHERFLOW_PLUGIN_PATHS": str(broken)}
    strict = run_cli("connectors", "list", env=env)
    assert strict.exit_code == 2
    assert f"plugin {broken} failed to import: ModuleNotFoundError" in strict.stderr
    lenient = run_cli("connectors", "list", env={**env, "AETHERFLOW_PLUGIN_STRICT": "false"})
    assert lenient.exit_code == 0
    assert "plugin.skipped" in lenient.stderr and "db" in lenient.stdout


def test_registering_an_existing_key_is_an_error_unless_replace(tmp_path, cli_env):
    dup = tmp_path / "dup.py"
    dup.write_text(
        "from aetherflow.core.api import ConnectorBase, register_connector\n"
        "@register_connector(kind='db', driver='sqlite3')\n"
        "class Mine(ConnectorBase):\n    pass\n"
    )
    result = run_cli("connectors", "list", env={**cli_env, "AETHERFLOW_PLUGIN_PATHS": str(dup)})
    assert result.exit_code == 2
    assert "connector db/sqlite3 is already registered by builtin" in result.stderr
    assert "replace=True" in result.stderr
    dup.write_text(dup.read_text().replace("driver='sqlite3')", "driver='sqlite3', replace=True)"))
    replaced = run_cli("connectors", "list", "--kind", "db", "--json", env={**cli_env, "AETHERFLOW_PLUGIN_PATHS": str(dup)})
    assert replaced.exit_code == 0, replaced.output
    row = next(r for r in replaced.json if r["driver"] == "sqlite3")
    assert row["origin"] == f"plugin:{dup}"


def test_entry_point_plugins_are_loaded(tmp_path, cli_env):
    site = tmp_path / "site"
    (site / "ep_plugin-1.0.dist-info").mkdir(parents=True)
    (site / "ep_plugin.py").write_text(
        "from aetherflow.core.api import ConnectorBase, register_connector\n"
        "@register_connector(kind='demo', driver='entrypoint', summary='from an entry point')\n"
        "class EP(ConnectorBase):\n    pass\n"
    )
    (site / "ep_plugin-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-plugin\nVersion: 1.0\n")
    (site / "ep_plugin-1.0.dist-info" / "entry_points.txt").write_text("[aetherflow.plugins]\nep = ep_plugin\n")
    result = run_cli("connectors", "list", "--json", env={**cli_env, "PYTHONPATH": str(site)})
    assert result.exit_code == 0, result.output
    row = next(r for r in result.json if r["driver"] == "entrypoint")
    assert row["summary"] == "from an entry point" and row["origin"] == "plugin:ep (ep_plugin)"


def test_unknown_kind_and_driver_in_a_flow_suggest_and_list(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", """
version: 1
flow: {id: reg}
resources:
  r:
    kind: demo
    driver: ecco
jobs:
  - id: a
    steps: [{id: s, type: check_items, inputs: {items: [1]}}]
""")
    result = run_cli("validate", flow, env=cli_env)
    assert result.exit_code == 2
    assert "unknown driver 'ecco' for kind 'demo' (did you mean 'echo'?)" in result.stderr
    assert "drivers of demo: echo, leaky, typed" in result.stderr


def test_connectors_show_prints_the_schema(cli_env):
    result = run_cli("connectors", "show", "demo/typed", "--json", env=cli_env)
    assert result.exit_code == 0, result.output
    schema = result.json["config_schema"]
    assert schema["port"] == {"type": "integer", "required": False, "default": 5432, "secret": False, "help": "TCP port", "choices": None}
    assert schema["api_secret"]["secret"] is True
    table = run_cli("connectors", "show", "demo/typed", env=cli_env)
    assert table.exit_code == 0 and "TCP port" in table.stdout
    missing = run_cli("connectors", "show", "demo/typd", env=cli_env)
    assert missing.exit_code == 2 and "did you mean 'typed'" in missing.stderr


def test_missing_driver_dependency_says_what_to_install(tmp_path, cli_env):
    plugin = tmp_path / "needs.py"
    plugin.write_text(
        "from aetherflow.core.api import ConnectorBase, register_connector\n"
        "@register_connector(kind='demo', driver='needs', requires=['surely_missing_driver_lib'])\n"
        "class Needs(ConnectorBase):\n    pass\n"
    )
    env = {**cli_env, "AETHERFLOW_PLUGIN_PATHS": f"{plugin},{FIXTURES / 'runner_steps.py'}"}
    listed = run_cli("connectors", "list", "--kind", "demo", env=env)
    assert "no (missing surely_missing_driver_lib)" in listed.stdout
    flow = write_flow(tmp_path / "flow.yaml", """
version: 1
flow: {id: dep}
resources:
  r: {kind: demo, driver: needs}
jobs:
  - id: a
    steps: [{id: s, type: check_items, inputs: {items: [1]}}]
""")
    result = run_cli("run", flow, env=env)
    assert result.exit_code == 2
    assert "needs surely_missing_driver_lib, which is not installed" in result.stderr
    assert "pip install surely_missing_driver_lib" in result.stderr


def test_the_plugin_fixture_is_the_documented_template():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "connectors.md").read_text()
    template = docs.split("```python\n", 1)[1].split("```", 1)[0]
    assert template == (FIXTURES / "echo_connector.py").read_text()


def test_a_flow_loads_the_plugins_it_declares_relative_to_its_file(tmp_path):
    project = tmp_path / "project"
    (project / "plugins").mkdir(parents=True)
    shutil.copy(FIXTURES / "runner_steps.py", project / "plugins" / "runner_steps.py")
    flow = write_flow(project / "flow.yaml", """
version: 1
flow: {id: own_plugins, plugins: [plugins]}
jobs:
  - id: a
    steps: [{id: s, type: test.echo, inputs: {values: {said: hi}}}]
""")
    env = base_env(tmp_path)  # no AETHERFLOW_PLUGIN_PATHS
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    validated = run_cli("validate", flow, env=env, cwd=elsewhere)
    assert validated.exit_code == 0, validated.output
    ran = run_cli("run", flow, "--json", env=env, cwd=elsewhere)
    assert ran.exit_code == 0, ran.output
    assert ran.json["jobs"][0]["steps"][0]["outputs"] == {"said": "hi"}


def test_a_declared_plugin_that_fails_is_a_located_flow_error_even_when_not_strict(tmp_path):
    (tmp_path / "broken.py").write_text("import not_a_module_anywhere\n")
    flow = write_flow(tmp_path / "flow.yaml", """
version: 1
flow:
  id: broken
  plugins:
    - broken.py
jobs:
  - id: a
    steps: [{id: s, type: check_items, inputs: {items: [1]}}]
""")
    env = base_env(tmp_path, AETHERFLOW_PLUGIN_STRICT="false")
    for command in (("validate", flow), ("run", flow)):
        result = run_cli(*command, env=env)
        assert result.exit_code == 2, result.output
        assert f"{flow}:5:7 at flow.plugins[0]: plugin {tmp_path / 'broken.py'} failed to import: ModuleNotFoundError" in result.stderr
        assert "Traceback" not in result.stderr
