"""Plugins written for aetherflow-core 0.0.14 load and run here.

The fixtures under ``fixtures/plugins`` are written in that project's style: steps with
``run(self)``, ``required_inputs`` and ``StepResult(status=..., output=...)``, steps
without an inputs table, files in nested folders; and an entry point naming a
``module:register`` callable.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from aetherflow.core.errors import PluginError, StepInputError
from tests.helpers import base_env, run_cli, step_context, write_flow

PLUGINS = Path(__file__).parent / "fixtures" / "plugins"

FLOW = """
version: 1
flow: {id: upstream_plugins}
resources:
  store: {kind: kv, driver: memory, config: {values: {colour: teal}}}
jobs:
  - id: collect
    steps:
      - id: write
        type: inbox_write
        inputs:
          files: {a.csv: "1,2\\n", b.csv: "3,4\\n", notes.txt: "x"}
      - id: count
        type: inbox_count
        inputs: {folder: "{{ steps.write.outputs.folder }}", pattern: "*.csv"}
        outputs: {count: "{{ result.count }}"}
      - id: none
        type: inbox_count
        inputs: {folder: "{{ steps.write.outputs.folder }}", pattern: "*.xml"}
  - id: report
    depends_on: [collect]
    steps:
      - id: summary
        type: report_summary
        inputs:
          title: monthly
          anything: [1, 2]
          resource: store
          key: colour
          files: "{{ jobs.collect.outputs.count }}"
"""


@pytest.fixture
def env(tmp_path):
    return base_env(tmp_path, AETHERFLOW_PLUGIN_PATHS=str(PLUGINS))


def test_a_folder_of_old_style_plugins_runs_a_flow(tmp_path, env):
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    assert run_cli("validate", flow, env=env).exit_code == 0
    result = run_cli("run", flow, "--json", env=env)
    assert result.exit_code == 0, result.output
    collect, report = result.json["jobs"]
    write, count, none = collect["steps"]
    assert write["outputs"]["count"] == 3
    # artifacts_dir(job_id) is the job workspace, where relative paths land here too.
    assert write["outputs"]["folder"] == str(tmp_path / "work" / "upstream_plugins" / "collect" / result.json["run_id"] / "inbox")
    assert count["status"] == "SUCCESS"
    assert count["outputs"] == {"count": 2, "names": ["a.csv", "b.csv"], "step": "count"}
    assert none["status"] == "SKIPPED"
    assert none["outputs"] == {"count": 0, "reason": "no files in the inbox"}
    assert collect["outputs"] == {"count": 2}
    summary = report["steps"][0]["outputs"]
    assert summary == {"keys": ["anything", "files", "key", "resource", "title"], "title": "monthly", "looked_up": "teal"}
    assert 'reason="no files in the inbox"' in result.stderr


def test_required_inputs_of_old_style_steps_are_checked_by_validate(tmp_path, env):
    flow = write_flow(tmp_path / "flow.yaml", """
version: 1
flow: {id: missing}
jobs:
  - id: a
    steps:
      - {id: count, type: inbox_count, inputs: {pattern: "*"}}
""")
    result = run_cli("validate", flow, env=env)
    assert result.exit_code == 2
    assert "missing required input 'folder' for step type 'inbox_count'" in result.stderr


def test_steps_list_shows_undeclared_inputs(env):
    table = run_cli("steps", "list", env=env)
    assert table.exit_code == 0, table.output
    lines = {line.split()[0]: line for line in table.stdout.splitlines() if line.strip()}
    assert "(not declared)" in lines["report_summary"]
    assert "(not declared; folder*)" in lines["inbox_count"]
    rows = {row["type"]: row for row in run_cli("steps", "list", "--json", env=env).json}
    assert rows["report_summary"]["inputs"] is None and rows["report_summary"]["required_inputs"] == []
    assert rows["inbox_count"]["inputs"] is None and rows["inbox_count"]["required_inputs"] == ["folder"]
    assert rows["inbox_count"]["summary"] == "Count the files of a folder; SKIPPED when there are none."
    assert rows["report_nothing"]["inputs"] == {}
    assert rows["db_fetch"]["required_inputs"] == ["resource", "sql"]


def test_a_step_declaring_an_empty_inputs_table_takes_none(tmp_path, env):
    flow = write_flow(tmp_path / "flow.yaml", """
version: 1
flow: {id: nothing}
jobs:
  - id: a
    steps:
      - {id: n, type: report_nothing, inputs: {surprise: 1}}
""")
    result = run_cli("validate", flow, env=env)
    assert result.exit_code == 2
    assert "unknown input 'surprise' for step type 'report_nothing'" in result.stderr
    assert "step type report_nothing takes no inputs" in result.stderr


def test_private_files_and_folders_are_not_plugins(env):
    # __init__.py and _helpers.py raise when imported; listing must not import them.
    result = run_cli("connectors", "list", "--kind", "kv", env=env)
    assert result.exit_code == 0, result.output
    assert "memory" in result.stdout


def test_plugin_module_names_are_the_same_in_every_process(tmp_path, env):
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    first = run_cli("resolve", flow, "--json", env=env)
    second = run_cli("resolve", flow, "--json", env=env)
    assert first.exit_code == 0, first.output
    class_path = first.json["resources"][0]["connector"]
    assert class_path == second.json["resources"][0]["connector"]
    assert class_path.startswith("aetherflow_plugin_kv_") and class_path.endswith(".MemoryKV")


def test_an_entry_point_naming_a_register_callable_is_called(tmp_path, env):
    site = tmp_path / "site"
    dist = site / "acme_aetherflow-1.0.dist-info"
    dist.mkdir(parents=True)
    (site / "acme_plugin.py").write_text(
        "from aetherflow.core.api import Step, register_step\n"
        "\n"
        "class Shout(Step):\n"
        "    required_inputs = {'text'}\n"
        "\n"
        "    def run(self):\n"
        "        return {'shouted': self.inputs['text'].upper()}\n"
        "\n"
        "def register():\n"
        "    register_step('acme_shout')(Shout)\n"
    )
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-aetherflow\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[aetherflow.plugins]\nacme = acme_plugin:register\n")
    flow = write_flow(tmp_path / "flow.yaml", """
version: 1
flow: {id: ep}
jobs:
  - id: a
    steps:
      - {id: s, type: acme_shout, inputs: {text: hello}}
""")
    result = run_cli("run", flow, "--json", env={**env, "PYTHONPATH": str(site)})
    assert result.exit_code == 0, result.output
    assert result.json["jobs"][0]["steps"][0]["outputs"] == {"shouted": "HELLO"}
    listed = {row["type"]: row for row in run_cli("steps", "list", "--json", env={**env, "PYTHONPATH": str(site)}).json}
    assert listed["acme_shout"]["origin"] == "plugin:acme (acme_plugin:register)"


# -- the adapter, in process ------------------------------------------------------------


def _register(cls, name):
    from aetherflow.core.steps import registry

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        registry.register_step(name, replace=True)(cls)
    try:
        return registry.get_step(name)
    finally:
        registry._registered.pop(name, None)
        registry._origins.pop(name, None)


def test_the_adapter_checks_required_inputs_and_maps_the_result(tmp_path):
    from aetherflow.core.api import STEP_SKIPPED, Step, StepResult

    class Probe(Step):
        required_inputs = {"a"}

        def run(self):
            return StepResult(STEP_SKIPPED, {"seen": self.inputs["a"], "job": self.job_id, "id": self.id}, "empty")

    adapted = _register(Probe, "test.probe_adapter")
    with pytest.raises(StepInputError, match="missing required input 'a'"):
        adapted.bind_inputs({"b": 1})
    bound = adapted.bind_inputs({"a": 1, "extra": True})
    result = adapted().run(step_context(tmp_path), bound)
    assert result.status == "SKIPPED" and result.reason == "empty"
    assert result.outputs == {"seen": 1, "job": "test_job", "id": "test_step", "reason": "empty"}


def test_old_context_attributes_without_a_counterpart_say_what_to_use(tmp_path):
    from aetherflow.core.api import Step

    class Reader(Step):
        def run(self):
            return {"settings": self.ctx.settings}

    adapted = _register(Reader, "test.reader_adapter")
    with pytest.raises(AttributeError, match="ctx.settings does not exist here: settings are not visible to steps"):
        adapted().run(step_context(tmp_path), {})


def test_a_run_method_with_another_signature_is_refused_with_the_new_one():
    from aetherflow.core.api import Input, Step

    class OneArg(Step):
        def run(self, ctx):
            return None

    with pytest.raises(PluginError) as caught:
        _register(OneArg, "test.one_arg")
    assert "run() takes 1 argument(s)" in caught.value.message
    assert "def run(self, ctx, inputs) -> StepResult" in caught.value.hint

    class Declared(Step):
        inputs = {"a": Input(str)}

        def run(self):
            return None

    with pytest.raises(PluginError, match="declares `inputs` but has the run"):
        _register(Declared, "test.declared_old")


def test_the_old_shape_is_flagged_as_deprecated():
    from aetherflow.core.api import Step
    from aetherflow.core.steps import registry

    class Old(Step):
        def run(self):
            return {}

    with pytest.warns(DeprecationWarning, match="uses the run\\(self\\) form"):
        registry.register_step("test.old_warns", replace=True)(Old)
    registry._registered.pop("test.old_warns", None)
    registry._origins.pop("test.old_warns", None)


def test_step_result_takes_output_as_another_spelling_of_outputs():
    from aetherflow.core.api import StepResult

    assert StepResult(status="SUCCESS", output={"a": 1}).outputs == {"a": 1}
    assert StepResult("SKIPPED", None).outputs == {}
    with pytest.raises(ValueError, match="outputs= or output="):
        StepResult(outputs={"a": 1}, output={"b": 2})


def test_a_connector_built_from_an_init_object_is_refused_at_registration():
    from aetherflow.core.api import ConnectorBase, register_connector
    from aetherflow.core.connectors import registry

    class OldShape(ConnectorBase):
        def __init__(self, init):
            self.init = init

    with pytest.raises(PluginError) as caught:
        register_connector("test", "old_shape")(OldShape)
    assert "cannot be built as OldShape(config=..., options=...)" in caught.value.message
    assert "def __init__(self, *, config, options)" in caught.value.hint
    assert ("test", "old_shape") not in {e.key for e in registry.entries()}

    class NewShape(ConnectorBase):
        pass

    register_connector("test", "positional_key", replace=True)(NewShape)
    assert registry.get_connector_class("test", "positional_key") is NewShape
    registry._entries.pop(("test", "positional_key"))
