"""A run that is still running cannot be resumed from another process."""

from __future__ import annotations

import signal
import subprocess
import sys

from tests.helpers import run_cli, write_flow

FLOW = """
version: 1
flow: {id: guarded}
jobs:
  - id: a
    steps:
      - {id: wait, type: external.process, inputs: {command: [sleep, "{{ env.SLEEP_FOR }}"]}}
"""


def test_resuming_a_live_run_is_refused_and_a_dead_one_is_resumed(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    first = subprocess.Popen(
        [sys.executable, "-m", "aetherflow.cli", "run", str(flow), "--run-id", "r-1", "--log-format", "json"],
        env={**cli_env, "SLEEP_FOR": "30"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in first.stderr:
            if '"process.started"' in line:
                break
        second = run_cli("run", flow, "--run-id", "r-1", env={**cli_env, "SLEEP_FOR": "0"})
        assert second.exit_code == 2
        assert f"run 'r-1' is still running (pid {first.pid}" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)
    assert first.returncode == 130
    resumed = run_cli("run", flow, "--run-id", "r-1", "--json", env={**cli_env, "SLEEP_FOR": "0"})
    assert resumed.exit_code == 0, resumed.output
    assert resumed.json["status"] == "SUCCESS"


def test_a_run_whose_process_died_is_resumable(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    first = subprocess.Popen(
        [sys.executable, "-m", "aetherflow.cli", "run", str(flow), "--run-id", "r-2", "--log-format", "json"],
        env={**cli_env, "SLEEP_FOR": "3"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in first.stderr:
        if '"process.started"' in line:
            break
    first.kill()  # its `sleep` child, in its own session, outlives it by a few seconds
    first.wait(timeout=30)
    resumed = run_cli("run", flow, "--run-id", "r-2", "--json", env={**cli_env, "SLEEP_FOR": "0"})
    assert resumed.exit_code == 0, resumed.output
