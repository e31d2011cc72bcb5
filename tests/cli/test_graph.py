"""``aetherflow graph``: the job graph of a flow, checked against golden files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import ROOT, base_env, run_cli, write_flow

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("output_format", ["mermaid", "dot", "text"])
def test_graph_of_the_hello_flow_matches_the_golden_file(tmp_path, output_format):
    result = run_cli("graph", ROOT / "sample_flows" / "hello.yaml", "--format", output_format, env=base_env(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.stdout == (GOLDEN / f"hello.{output_format}").read_text(encoding="utf-8")


def test_graph_draws_gates_inner_step_resources_and_escapes_labels(tmp_path):
    flow = write_flow(tmp_path / "flow.yaml", """
version: 1
flow: {id: quoted}
resources:
  db: {kind: db, driver: sqlite3, config: {path: x.db}}
jobs:
  - id: probe
    steps:
      - id: count
        type: with_lock
        inputs:
          lock_key: k
          step: {type: db_fetch, inputs: {resource: db, sql: "select 1"}}
        outputs: {n: "{{ result.rows[0][0] }}"}
  - id: load
    depends_on: [probe]
    when: "jobs.probe.outputs.n > 0 and \\"x\\" != 'y'"
    steps: [{id: s, type: check_items, inputs: {items: [1]}}]
""")
    mermaid = run_cli("graph", flow, "--format", "mermaid", env=base_env(tmp_path)).stdout
    assert '    j1{{"load<br/>1 step<br/>when: jobs.probe.outputs.n #gt; 0 and #quot;x#quot; != \'y\'"}}' in mermaid
    assert "    j0 -.- r0" in mermaid and '    r0[("db<br/>db/sqlite3")]' in mermaid
    dot = run_cli("graph", flow, "--format", "dot", env=base_env(tmp_path)).stdout
    assert '[label="load\\n1 step\\nwhen: jobs.probe.outputs.n > 0 and \\"x\\" != \'y\'", shape=hexagon];' in dot
    text = run_cli("graph", flow, env=base_env(tmp_path)).stdout
    assert "  probe  1 step; uses db (db/sqlite3)\n" in text


def test_graph_refuses_an_unknown_format_and_a_bad_flow(tmp_path):
    result = run_cli("graph", ROOT / "sample_flows" / "hello.yaml", "--format", "svg", env=base_env(tmp_path))
    assert result.exit_code == 2 and "--format 'svg' is not supported" in result.stderr
    bad = write_flow(tmp_path / "bad.yaml", "version: 1\nflow: {id: b}\njobs: []\n")
    result = run_cli("graph", bad, env=base_env(tmp_path))
    assert result.exit_code == 2 and f"{bad}:3:" in result.stderr
