"""Every failure inside a run ends its step, job and run with a final status: template
errors (inside structures, lazy filters, runaway recursion, memory) exit 2, a bug exits
1, and none of them leaves the run RUNNING in the state."""

from __future__ import annotations

import pytest

from aetherflow.core.errors import TemplateError
from aetherflow.core.prepare import Invocation, prepare_flow
from aetherflow.core.runner import Runner
from aetherflow.core.state import open_state_store
from aetherflow.core.status import Status
from aetherflow.core.templating import ENGINE
from tests.helpers import base_env, run_cli, write_flow

HEAD = """
version: 1
flow:
  id: final
"""

RECURSIVE = "{% macro down(n) %}{{ down(n) }}{% endmacro %}{{ down(1) }}"


def run_states(cli_env, run_id: str) -> tuple[str, list[str], list[str]]:
    store = open_state_store("sqlite", state_root=cli_env["AETHERFLOW_STATE_ROOT"])
    try:
        run = store.get_run(run_id)
        return run.status, [j.status for j in store.job_runs(run_id)], [s.status for s in store.step_runs(run_id)]
    finally:
        store.close()


@pytest.mark.parametrize(
    ("where", "template", "message"),
    [
        ("outputs", "{{ {'code': result.exit_cod} }}", "'result.exit_cod' is undefined"),
        ("outputs", "{{ [result, result] | map(attribute='exit_cod') }}", "'result.exit_cod' is undefined"),
        ("inputs", "{{ [steps.first.outputs.nope] | select('odd') }}", "'steps.first.outputs.nope' is undefined"),
        ("inputs", RECURSIVE, "recursion too deep"),
    ],
    ids=["structure", "map-attribute", "select", "recursion"],
)
def test_a_template_error_ends_the_run_failed_with_exit_2(tmp_path, cli_env, where, template, message):
    quoted = template.replace("'", "''")
    step = f"outputs: {{y: '{quoted}'}}" if where == "outputs" else f"inputs: {{values: {{y: '{quoted}'}}}}"
    flow = write_flow(tmp_path / "flow.yaml", HEAD + f"""
jobs:
  - id: a
    steps:
      - {{id: first, type: test.echo, inputs: {{values: {{x: 1}}}}}}
      - {{id: second, type: test.echo, {step}}}
  - id: b
    depends_on: [a]
    steps:
      - {{id: s, type: test.echo}}
""")
    result = run_cli("run", flow, "--json", env=cli_env)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    doc = result.json
    assert doc["status"] == "FAILED"
    [a, b] = doc["jobs"]
    assert (a["status"], b["status"]) == ("FAILED", "BLOCKED")
    assert message in a["steps"][1]["error"]
    run, jobs, steps = run_states(cli_env, doc["run_id"])
    assert run == "FAILED" and "RUNNING" not in jobs and "RUNNING" not in steps


def test_lazy_filters_give_lists_not_their_repr():
    context = {"rows": [{"n": 1}, {"n": 2}]}
    assert ENGINE.render("{{ rows | map(attribute='n') }}", context) == [1, 2]
    assert ENGINE.render("{{ {'odd': [1, 2, 3] | select('odd')} }}", {}) == {"odd": [1, 3]}
    assert ENGINE.render("n: {{ rows | map(attribute='n') }}", context) == "n: [1, 2]"


def test_an_undefined_name_inside_a_structure_fails_also_in_text():
    with pytest.raises(TemplateError, match="'nope' is undefined"):
        ENGINE.render("code: {{ {'code': nope} }}", {})


class _Exhausting:
    """A value whose text cannot be built: what a template that exhausts memory meets."""

    def __str__(self) -> str:
        raise MemoryError


def test_running_out_of_memory_in_a_template_is_a_template_error():
    with pytest.raises(TemplateError, match="out of memory"):
        ENGINE.render("{{ big }} and more", {"big": _Exhausting()})


def test_a_template_error_in_the_flow_lock_key_ends_the_run_failed(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", HEAD + """
  lock: {key: "{{ env.NO_SUCH_VARIABLE }}"}
jobs:
  - id: a
    steps: [{id: s, type: test.echo}]
""")
    result = run_cli("run", flow, "--run-id", "lock-key", env=cli_env)
    assert result.exit_code == 2, result.output
    assert "'env.NO_SUCH_VARIABLE' is undefined" in result.stderr
    assert run_states(cli_env, "lock-key")[0] == "FAILED"


class _BrokenStore:
    """A state store whose job records fail the first time a job finishes: a bug in the
    runner's own writing, which must still close the run."""

    def __init__(self, store):
        self._store = store
        self.broken = True

    def record_job(self, row):
        if self.broken and row.status != Status.RUNNING:
            self.broken = False
            raise RuntimeError("bug while recording a job")
        return self._store.record_job(row)

    def __getattr__(self, name):
        return getattr(self._store, name)


def test_a_bug_inside_the_run_still_closes_its_state(tmp_path):
    flow = write_flow(tmp_path / "flow.yaml", HEAD + """
jobs:
  - id: a
    steps: [{id: s, type: check_items, inputs: {items: [1]}}]
""")
    prepared = prepare_flow(Invocation(flow_path=str(flow), base_env=base_env(tmp_path)))
    store = open_state_store("sqlite", path=str(tmp_path / "state.db"))
    try:
        with pytest.raises(RuntimeError, match="bug while recording"):
            Runner(prepared, run_id="buggy", store=_BrokenStore(store)).run()
        assert store.get_run("buggy").status == Status.FAILED
        [job] = store.job_runs("buggy")
        assert job.status == Status.FAILED and "internal error: RuntimeError" in job.error
        assert [s.status for s in store.step_runs("buggy")] == [Status.SUCCESS]
    finally:
        store.close()
