"""``aetherflow steps show TYPE``: a step type's inputs as a table, and its outputs."""

from __future__ import annotations

from tests.helpers import run_cli


def test_steps_show_lists_inputs_with_types_defaults_help_and_outputs():
    result = run_cli("steps", "show", "check_items")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("check_items: Count items")
    assert any(line.split()[:3] == ["items", "list", "or"] and "yes" in line for line in lines)
    assert any(line.split()[:3] == ["min_count", "integer", "1"] for line in lines)
    assert lines[-1].startswith("outputs: ") and "count" in lines[-1]


def test_steps_show_json_is_the_row_of_steps_list():
    shown = run_cli("steps", "show", "with_lock", "--json").json
    listed = {row["type"]: row for row in run_cli("steps", "list", "--json").json}
    assert shown == listed["with_lock"]
    assert shown["inputs"]["ttl_seconds"]["default"] == 600


def test_steps_show_of_an_unknown_type_suggests_the_closest():
    result = run_cli("steps", "show", "db_extrat")
    assert result.exit_code == 2
    assert "unknown step type 'db_extrat' (did you mean 'db_extract'?)" in result.stderr and "Traceback" not in result.output
