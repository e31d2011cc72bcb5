"""Run ids name workspace directories: they must be names, like flow, job and step ids."""

from __future__ import annotations

import pytest

from tests.helpers import run_cli, write_flow

FLOW = """
version: 1
flow: {id: ids}
jobs:
  - id: a
    steps:
      - {id: s, type: check_items, inputs: {items: [1]}}
"""


@pytest.mark.parametrize("run_id", ["..", "../../escaped", "a/b", "."])
def test_a_run_id_that_is_not_a_name_is_refused(tmp_path, cli_env, run_id):
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    result = run_cli("run", flow, "--run-id", run_id, env=cli_env)
    assert result.exit_code == 2, result.output
    assert f"invalid run id {run_id!r}" in result.stderr
    assert "not dots alone" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "escaped").exists()
    assert not (tmp_path / "work").exists()
