"""A closed stdout (``aetherflow ... | head -1``) ends a command quietly: no "internal
error", exit 0 for listings, and a run still completes, records its status and exits
with its own code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import base_env, run_cli, write_flow

FLOW = """
version: 1
flow:
  id: piped
jobs:
  - id: first
    steps:
      - id: one
        type: check_items
        inputs:
          items: [1, 2]
  - id: second
    depends_on: [first]
    steps:
      - id: two
        type: external.process
        inputs:
          command: ["{command}"]
"""


def piped(args: list[str], env: dict[str, str], *, read_first_line: bool) -> tuple[int, str, str]:
    """Run the CLI with its stdout read by a reader that goes away: after one line, or
    before anything was written (which makes the broken pipe certain)."""
    command = [sys.executable, "-m", "aetherflow.cli", *args]
    if read_first_line:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        first = proc.stdout.readline().decode()
        proc.stdout.close()
        stderr = proc.stderr.read().decode()
        return proc.wait(timeout=120), first, stderr
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.Popen(command, stdout=write_end, stderr=subprocess.PIPE, env=env)
    finally:
        os.close(write_end)
    stderr = proc.communicate(timeout=120)[1].decode()
    return proc.returncode, "", stderr


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return base_env(tmp_path)


def assert_quiet(stderr: str) -> None:
    assert "internal error" not in stderr and "BrokenPipeError" not in stderr and "Traceback" not in stderr, stderr


@pytest.mark.parametrize("read_first_line", [True, False], ids=["reader-closes-after-one-line", "reader-gone-before-output"])
@pytest.mark.parametrize("args", [("runs", "list"), ("steps", "list"), ("connectors", "list")], ids=" ".join)
def test_listings_piped_into_a_closed_reader_exit_0_quietly(tmp_path, env, args, read_first_line):
    flow = write_flow(tmp_path / "flow.yaml", FLOW.format(command="true"))
    for _ in range(3):
        assert run_cli("run", str(flow), env=env).exit_code == 0
    code, first, stderr = piped(list(args), env, read_first_line=read_first_line)
    assert code == 0
    assert_quiet(stderr)
    if read_first_line:
        assert first.strip()


@pytest.mark.parametrize("read_first_line", [True, False], ids=["reader-closes-after-one-line", "reader-gone-before-output"])
@pytest.mark.parametrize(("command", "expected"), [("true", 0), ("false", 1)], ids=["succeeds", "fails"])
def test_run_json_piped_into_a_closed_reader_exits_with_the_runs_code(tmp_path, env, command, expected, read_first_line):
    flow = write_flow(tmp_path / "flow.yaml", FLOW.format(command=command))
    code, first, stderr = piped(["run", str(flow), "--json"], env, read_first_line=read_first_line)
    assert code == expected
    assert_quiet(stderr)
    if read_first_line:
        assert first.strip() == "{"
    # The run itself completed and recorded its final status.
    runs = run_cli("runs", "list", str(flow), "--json", env=env).json
    assert [r["status"] for r in runs] == ["SUCCESS" if expected == 0 else "FAILED"]
    shown = run_cli("runs", "show", runs[0]["run_id"], "--flow", str(flow), "--json", env=env).json
    assert {job["status"] for job in shown["jobs"]} <= {"SUCCESS", "FAILED"}
    assert json.dumps(shown)  # a complete document
