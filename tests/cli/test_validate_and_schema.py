"""`validate` with several files (as pre-commit calls it) and `schema`."""

from __future__ import annotations

import json

from tests.helpers import ROOT, base_env, run_cli, write_flow

GOOD = "version: 1\nflow: {id: good}\njobs:\n  - id: a\n    steps: [{id: s, type: check_items, inputs: {items: [1]}}]\n"
BAD = "version: 1\nflow: {id: bad}\njobs:\n  - id: a\n    steps: [{id: s, type: check_itms, inputs: {items: [1]}}]\n"


def test_validate_reports_every_file_and_exits_with_the_worst(tmp_path):
    good = write_flow(tmp_path / "good.flow.yaml", GOOD)
    bad = write_flow(tmp_path / "bad.flow.yaml", BAD)
    both = run_cli("validate", good, bad, good)
    assert both.exit_code == 2
    assert both.stdout.count(f"{good}: OK (1 job, 1 step, 0 resources)") == 2
    assert f"{bad}:5:27 at jobs[0].steps[0].type: unknown step type 'check_itms'" in both.stderr
    assert "did you mean 'check_items'?" in both.stderr and f"1 problem found in {bad}" in both.stderr
    assert "3 files checked: 2 OK, 1 with problems" in both.stdout
    alone = run_cli("validate", good)
    assert alone.exit_code == 0 and "files checked" not in alone.stdout

    document = run_cli("validate", good, bad, "--json")
    assert document.exit_code == 2
    assert document.json["ok"] is False
    assert document.json["files"] == [{"file": str(good), "ok": True}, {"file": str(bad), "ok": False}]
    assert [(e["file"], e["line"], e["path"]) for e in document.json["errors"]] == [(str(bad), 5, "jobs[0].steps[0].type")]


def test_schema_prints_or_writes_the_generated_schema_with_loaded_plugins(tmp_path):
    printed = run_cli("schema", "flow")
    assert printed.exit_code == 0, printed.stderr
    assert printed.stdout == (ROOT / "schemas" / "flow.schema.json").read_text()
    plugins = ROOT / "tests" / "fixtures" / "plugins" / "runner_steps.py"
    target = tmp_path / "out" / "flow.schema.json"
    written = run_cli("schema", "flow", "--output", target, env=base_env(AETHERFLOW_PLUGIN_PATHS=str(plugins)))
    assert written.exit_code == 0 and written.stdout == "" and f"wrote the flow schema to {target}" in written.stderr
    schema = json.loads(target.read_text())
    assert "test.echo" in schema["$defs"]["StepSpec"]["properties"]["type"]["examples"]
    assert not [p for p in target.parent.iterdir() if p.name != "flow.schema.json"], "no temporary file is left"
    unknown = run_cli("schema", "flw")
    assert unknown.exit_code == 2 and "did you mean 'flow'" in unknown.stderr
