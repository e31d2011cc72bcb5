"""Malformed flows: each error names the exact line and YAML path, exits 2, no traceback.

In each case the line the error must point at is marked with ``#!`` in the YAML text;
the test asserts the reported ``file:line:`` and the YAML path literally.
"""

from __future__ import annotations

import textwrap

import pytest

from tests.helpers import run_cli

HEADER = """\
version: 1
flow:
  id: demo
"""

ONE_JOB = HEADER + """\
jobs:
  - id: a
    steps:
      - id: s
        type: check_items
        inputs: {items: [1]}
"""

def _alias_bomb() -> str:
    """Each level repeats the one before ten times: 10**8 nodes once expanded."""
    levels = ["            - &l0 [x, x, x, x, x, x, x, x, x, x]\n"]
    for level in range(1, 8):
        refs = ", ".join([f"*l{level - 1}"] * 10)
        levels.append(f"            - &l{level} [{refs}]" + ("  #!" if level == 4 else "") + "\n")
    return HEADER + "jobs:\n  - id: a\n    steps:\n      - id: s\n        type: check_items\n        inputs:\n          items:\n" + "".join(levels)


ALIAS_BOMB = _alias_bomb()

CASES = [
    # (id, yaml, path, message fragment, hint fragment or None)
    ("bad-indentation", HEADER + "jobs:\n  - id: a\n    steps:\n      - id: s\n     type: check_items  #!\n", "", "invalid YAML", "indentation"),
    ("unclosed-quote", HEADER + 'jobs:\n  - id: "a  #!\n    steps: []\n', "", "invalid YAML", None),
    ("duplicate-key", "version: 1\nflow:\n  id: demo\n  id: other  #!\njobs: []\n", "", "duplicate key", "once"),
    ("not-a-mapping", "- just\n- a list  \n", "", "must be a mapping", "version: 1"),
    ("unknown-top-key", ONE_JOB + "jobz: []  #!\n", "jobz", "unknown key 'jobz'", "did you mean 'jobs'"),
    ("unknown-flow-key", "version: 1\nflow:\n  id: demo\n  descripton: x  #!\n" + ONE_JOB.split(HEADER)[1], "flow.descripton", "unknown key 'descripton'", "did you mean 'description'"),
    ("missing-flow-id", "version: 1\nflow:  #!\n  description: x\n" + ONE_JOB.split(HEADER)[1], "flow.id", "missing required key 'id'", None),
    ("unsupported-version", "version: 2  #!\nflow:\n  id: demo\n" + ONE_JOB.split(HEADER)[1], "version", "unsupported flow version 2", "version: 1"),
    ("bad-flow-id", "version: 1\nflow:\n  id: bad id!  #!\n" + ONE_JOB.split(HEADER)[1], "flow.id", "invalid id 'bad id!'", "letters, digits"),
    ("bad-cleanup-policy", HEADER + "  workspace:\n    cleanup_policy: on_sucess  #!\n" + ONE_JOB.split(HEADER)[1], "flow.workspace.cleanup_policy", "invalid value 'on_sucess'", "did you mean 'on_success'"),
    ("unknown-resource-key", ONE_JOB + "resources:\n  db:\n    kind: db\n    driver: sqlite3\n    confg: {}  #!\n", "resources.db.confg", "unknown key 'confg'", "did you mean 'config'"),
    ("resource-missing-driver", ONE_JOB + "resources:\n  db:  #!\n    kind: db\n", "resources.db.driver", "missing required key 'driver'", None),
    ("unknown-kind", ONE_JOB + "resources:\n  db:\n    kind: dbb  #!\n    driver: sqlite3\n", "resources.db.kind", "unknown connector kind 'dbb'", "registered kinds"),
    ("unknown-driver", ONE_JOB + "resources:\n  db:\n    kind: db\n    driver: postgress  #!\n", "resources.db.driver", "unknown driver 'postgress'", "drivers of db"),
    ("job-without-steps", HEADER + "jobs:\n  - id: a  #!\n    depends_on: []\n", "jobs[0].steps", "missing required key 'steps'", None),
    ("empty-steps", HEADER + "jobs:\n  - id: a\n    steps: []  #!\n", "jobs[0].steps", "needs at least one item", None),
    ("duplicate-job-id", ONE_JOB + "  - id: a  #!\n    steps:\n      - {id: t, type: check_items, inputs: {items: [1]}}\n", "jobs[1].id", "duplicate job id 'a'", "first used at jobs[0]"),
    ("duplicate-step-id", ONE_JOB + "      - id: s  #!\n        type: check_items\n        inputs: {items: [2]}\n", "jobs[0].steps[1].id", "duplicate step id 's'", "first used"),
    ("unknown-dependency", ONE_JOB + "  - id: load\n    depends_on: [ab]  #!\n    steps:\n      - {id: t, type: check_items, inputs: {items: [1]}}\n", "jobs[1].depends_on[0]", "unknown job 'ab'", None),
    ("misspelt-dependency", HEADER + "jobs:\n  - id: extract\n    steps:\n      - {id: s, type: check_items, inputs: {items: [1]}}\n  - id: load\n    depends_on: [extrct]  #!\n    steps:\n      - {id: t, type: check_items, inputs: {items: [1]}}\n", "jobs[1].depends_on[0]", "unknown job 'extrct'", "did you mean 'extract'"),
    ("self-dependency", HEADER + "jobs:\n  - id: a\n    depends_on: [a]  #!\n    steps:\n      - {id: s, type: check_items, inputs: {items: [1]}}\n", "jobs[0].depends_on[0]", "depends on itself", None),
    ("cycle", HEADER + "jobs:\n  - id: a\n    depends_on: [b]  #!\n    steps:\n      - {id: s, type: check_items, inputs: {items: [1]}}\n  - id: b\n    depends_on: [a]\n    steps:\n      - {id: s, type: check_items, inputs: {items: [1]}}\n", "jobs[0].depends_on", "dependency cycle: a -> b -> a", None),
    ("unknown-step-type", HEADER + "jobs:\n  - id: a\n    steps:\n      - id: s\n        type: check_item  #!\n", "jobs[0].steps[0].type", "unknown step type 'check_item'", "did you mean 'check_items'"),
    ("missing-required-input", HEADER + "jobs:\n  - id: a\n    steps:\n      - id: s\n        type: check_items\n        inputs:  #!\n          min_count: 2\n", "jobs[0].steps[0].inputs", "missing required input 'items'", "add `items:`"),
    ("missing-inputs-block", HEADER + "jobs:\n  - id: a\n    steps:\n      - id: s  #!\n        type: check_items\n", "jobs[0].steps[0]", "missing required input 'items'", None),
    ("unknown-input", ONE_JOB.replace("inputs: {items: [1]}", "inputs:\n          items: [1]\n          itmes: [2]  #!"), "jobs[0].steps[0].inputs.itmes", "unknown input 'itmes'", "did you mean 'items'"),
    ("input-wrong-type", ONE_JOB.replace("inputs: {items: [1]}", "inputs:\n          items: [1]\n          min_count: three  #!"), "jobs[0].steps[0].inputs.min_count", "expected integer, got string 'three'", None),
    ("retry-wrong-type", ONE_JOB + "        retry:\n          max_attempts: '3'  #!\n", "jobs[0].steps[0].retry.max_attempts", "expected an integer, got string '3'", None),
    ("retry-backoff-too-small", ONE_JOB + "        retry:\n          backoff: 0.5  #!\n", "jobs[0].steps[0].retry.backoff", "greater than or equal to 1", None),
    ("bad-on-no-data", ONE_JOB + "        on_no_data: skip-job  #!\n", "jobs[0].steps[0].on_no_data", "invalid value 'skip-job'", "did you mean 'skip_job'"),
    ("depends-on-not-list", HEADER + "jobs:\n  - id: a\n    steps:\n      - {id: s, type: check_items, inputs: {items: [1]}}\n  - id: b\n    depends_on: a  #!\n    steps:\n      - {id: s, type: check_items, inputs: {items: [1]}}\n", "jobs[1].depends_on", "expected a list, got string 'a'", None),
    ("jobs-not-list", HEADER + "jobs:  #!\n  a:\n    steps: []\n", "jobs", "expected a list", None),
    ("inputs-not-mapping", HEADER + "jobs:\n  - id: a\n    steps:\n      - id: s\n        type: check_items\n        inputs: [1, 2]  #!\n", "jobs[0].steps[0].inputs", "expected a mapping", None),
    ("unknown-step-key", HEADER + "jobs:\n  - id: a\n    steps:\n      - id: s\n        type: check_items\n        inptus: {items: [1]}  #!\n", "jobs[0].steps[0].inptus", "unknown key 'inptus'", "did you mean 'inputs'"),
    ("template-syntax", ONE_JOB.replace("inputs: {items: [1]}", "inputs:\n          items: \"{{ steps.a.outputs }\"  #!"), "jobs[0].steps[0].inputs.items", "template syntax error", None),
    ("when-syntax", HEADER + "jobs:\n  - id: a\n    when: \"jobs.b.status ==\"  #!\n    steps:\n      - {id: s, type: check_items, inputs: {items: [1]}}\n", "jobs[0].when", "expression syntax error", "a `when` is a bare expression"),
    ("when-unknown-job", HEADER + "jobs:\n  - id: a\n    when: \"jobs.prbe.outputs.has_data\"  #!\n    steps:\n      - {id: s, type: check_items, inputs: {items: [1]}}\n  - id: probe\n    steps:\n      - {id: s, type: check_items, inputs: {items: [1]}}\n", "jobs[0].when", "unknown job 'prbe'", "did you mean 'probe'"),
    ("template-later-step", HEADER + "jobs:\n  - id: a\n    steps:\n      - id: first\n        type: check_items\n        inputs:\n          items: \"{{ steps.second.outputs.count }}\"  #!\n      - {id: second, type: check_items, inputs: {items: [1]}}\n", "jobs[0].steps[0].inputs.items", "step 'second', which does not run earlier", None),
    ("postgres-state-without-dsn", HEADER + "  state:\n    backend: postgres  #!\n" + ONE_JOB.split(HEADER)[1], "flow.state.backend", "state backend postgres needs a dsn", "dsn:"),
    ("wrong-scalar-for-steps", HEADER + "jobs:\n  - id: a\n    steps: nope  #!\n", "jobs[0].steps", "expected a list, got string 'nope'", None),
    ("alias-bomb", ALIAS_BOMB, "jobs[0].steps[0].inputs.items[4][7]", "aliases expand to more than 100,000 nodes", "anchor"),
    ("nesting-too-deep", ONE_JOB.replace("inputs: {items: [1]}", "inputs: {items: " + "[" * 150 + "]" * 150 + "}  #!"), "", "nested more than 100 levels deep", None),
    ("recursive-alias", ONE_JOB.replace("inputs: {items: [1]}", "inputs: {items: &loop [1, *loop]}  #!"), "jobs[0].steps[0].inputs.items[1]", "alias *loop refers to the node that contains it", None),
    ("integer-too-long", ONE_JOB.replace("inputs: {items: [1]}", "inputs: {items: [1], min_count: " + "7" * 5000 + "}  #!"), "jobs[0].steps[0].inputs.min_count", "integer with 5000 digits", "at most 4300"),
    ("dot-dot-job-id", HEADER + "jobs:\n  - id: '..'  #!\n    steps:\n      - {id: s, type: check_items, inputs: {items: [1]}}\n", "jobs[0].id", "invalid id '..'", "not dots alone"),
    ("dot-step-id", HEADER + "jobs:\n  - id: a\n    steps:\n      - {id: ., type: check_items, inputs: {items: [1]}}  #!\n", "jobs[0].steps[0].id", "invalid id '.'", "not dots alone"),
    ("dot-dot-flow-id", "version: 1\nflow:\n  id: '..'  #!\n" + ONE_JOB.split(HEADER)[1], "flow.id", "invalid id '..'", "not dots alone"),
    ("retry-delay-too-long", ONE_JOB + "        retry:\n          delay_seconds: 1e308  #!\n", "jobs[0].steps[0].retry.delay_seconds", "less than or equal to 86400", None),
    ("retry-delay-infinite", ONE_JOB + "        retry:\n          delay_seconds: .inf  #!\n", "jobs[0].steps[0].retry.delay_seconds", "finite number", None),
    ("retry-backoff-too-big", ONE_JOB + "        retry:\n          backoff: 1e308  #!\n", "jobs[0].steps[0].retry.backoff", "less than or equal to 10", None),
    ("retry-waits-too-long", ONE_JOB + "        retry:  #!\n          max_attempts: 30\n          delay_seconds: 60\n          backoff: 2\n", "jobs[0].steps[0].retry", "would wait", "86400"),
    ("lock-ttl-too-long", "version: 1\nflow:\n  id: demo\n  lock:\n    key: k\n    ttl_seconds: 100000000000000000000000  #!\n" + ONE_JOB.split(HEADER)[1], "flow.lock.ttl_seconds", "less than or equal to 604800", None),
    ("process-timeout-too-long", HEADER + "jobs:\n  - id: a\n    steps:\n      - id: s\n        type: external.process\n        inputs:\n          command: [sleep, '1']\n          timeout_seconds: 1e308  #!\n", "jobs[0].steps[0].inputs.timeout_seconds", "at most 604800", None),
    ("lock-wait-infinite", HEADER + "jobs:\n  - id: a\n    steps:\n      - id: s\n        type: with_lock\n        inputs:\n          lock_key: k\n          wait_seconds: .inf  #!\n          step: {id: i, type: check_items, inputs: {items: [1]}}\n", "jobs[0].steps[0].inputs.wait_seconds", "finite number", None),
]


def _expected_line(text: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if "#!" in line:
            return number
    return 1


@pytest.mark.parametrize("name, text, path, message, hint", CASES, ids=[c[0] for c in CASES])
def test_malformed_flow_is_reported_with_line_and_path(tmp_path, name, text, path, message, hint):
    flow = tmp_path / "flow.yaml"
    flow.write_text(textwrap.dedent(text), encoding="utf-8")
    result = run_cli("validate", flow)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    line = _expected_line(text)
    location = f"{flow}:{line}:"
    assert location in result.stderr, result.stderr
    if path:
        assert f"at {path}:" in result.stderr, result.stderr
    assert message in result.stderr
    if hint:
        assert "hint:" in result.stderr and hint in result.stderr, result.stderr


def test_validate_json_lists_errors_with_positions(tmp_path):
    flow = tmp_path / "flow.yaml"
    flow.write_text(HEADER + "jobs:\n  - id: a\n    steps:\n      - id: s\n        type: check_item\n", encoding="utf-8")
    result = run_cli("validate", flow, "--json")
    assert result.exit_code == 2
    document = result.json
    assert document["ok"] is False
    [error] = document["errors"]
    assert error == {
        "file": str(flow),
        "line": 8,
        "column": 15,
        "path": "jobs[0].steps[0].type",
        "message": "unknown step type 'check_item'",
        "hint": "did you mean 'check_items'?",
    }


def test_run_rejects_a_malformed_flow_before_doing_anything(tmp_path, cli_env):
    flow = tmp_path / "flow.yaml"
    flow.write_text(ONE_JOB + "  - id: b\n    depends_on: [zz]\n    steps:\n      - {id: s, type: check_items, inputs: {items: [1]}}\n")
    result = run_cli("run", flow, "--json", env=cli_env)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"{flow}:11:" in result.stderr and "jobs[1].depends_on[0]" in result.stderr
    assert not (tmp_path / "state").exists()


def test_several_problems_are_all_reported_in_file_order(tmp_path):
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        HEADER
        + "jobs:\n  - id: a\n    depends_on: [x]\n    steps:\n      - {id: s, type: nope, inputs: {}}\n"
    )
    result = run_cli("validate", flow)
    assert result.exit_code == 2
    first = result.stderr.index("unknown job 'x'")
    second = result.stderr.index("unknown step type 'nope'")
    assert first < second
    assert "2 problems found" in result.stderr


def test_valid_flow_validates(tmp_path):
    flow = tmp_path / "flow.yaml"
    flow.write_text(ONE_JOB)
    result = run_cli("validate", flow)
    assert result.exit_code == 0, result.output
    assert "OK (1 job, 1 step, 0 resources)" in result.stdout


def test_missing_flow_file_is_a_usage_error(tmp_path):
    result = run_cli("validate", tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert "flow file not found" in result.stderr and "Traceback" not in result.output
