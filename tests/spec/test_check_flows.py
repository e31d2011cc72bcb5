"""Checking several flow files in one process: each on its own, every problem reported."""

from __future__ import annotations

from aetherflow.core.spec import check_flows
from aetherflow.core.steps.registry import step_types
from tests.helpers import write_flow

PLUGIN = """
from aetherflow.core.api import STEP_SUCCESS, Input, Step, StepResult, register_step


@register_step()
class Shout(Step):
    type = "team.shout"
    inputs = {{"{name}": Input(str, required=True, help="what to shout")}}

    def run(self, ctx, inputs):
        return StepResult(STEP_SUCCESS, {{}})
"""

FLOW = """
version: 1
flow: {{id: {team}, plugins: [plugin.py]}}
jobs:
  - id: a
    steps: [{{id: s, type: team.shout, inputs: {{{name}: hi}}}}]
"""


def test_flows_bringing_plugins_with_the_same_names_are_each_checked_with_their_own(tmp_path):
    paths = []
    for team, name in (("red", "text"), ("blue", "words")):
        (tmp_path / team).mkdir()
        (tmp_path / team / "plugin.py").write_text(PLUGIN.format(name=name))
        paths.append(str(write_flow(tmp_path / team / "x.flow.yaml", FLOW.format(team=team, name=name))))
    bad = write_flow(tmp_path / "bad.flow.yaml", "version: 1\nflow: {id: bad}\njobs:\n  - id: a\n    stepz: []\n")
    missing = tmp_path / "missing.flow.yaml"
    before = step_types()

    checks = check_flows([*paths, str(bad), str(missing)])

    assert [c.ok for c in checks] == [True, True, False, False]
    assert checks[0].document.spec.flow.id == "red" and checks[1].document.spec.flow.id == "blue"
    assert sorted(p.message for p in checks[2].problems) == ["missing required key 'steps'", "unknown key 'stepz'"]
    assert checks[3].problems[0].message == "flow file not found"
    assert step_types() == before
