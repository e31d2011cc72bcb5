"""SIGTERM / SIGINT to a running ``aetherflow run``: the running step stops and is
recorded FAILED ("interrupted"), every lock is released, the exit code is 130, and the
run can be resumed by its id afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aetherflow.core.state import open_state_store
from tests.helpers import base_env

from .conftest import flow_yaml, lines, wait_for, write_flow_for


def guarded_flow(state: str | None) -> str:
    jobs = """
    - id: work
      steps:
        - id: first
          type: check_items
          inputs: {items: [1]}
        - id: guarded
          type: with_lock
          inputs:
            lock_key: inner-key
            ttl_seconds: 60
            step: {type: statetest.hold, inputs: {started: "{{ env.STARTED }}", seconds: "{{ env.HOLD_SECONDS | float }}"}}
    """
    return flow_yaml("signalled", jobs, state=state, lock="{key: signalled-flow, ttl_seconds: 60}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_step_records_it_interrupted_releases_locks_and_exits_130(signum, backend, hosts):
    host, other = hosts
    started = backend.root / "started"
    for h in hosts:
        h.env.update(STARTED=str(started), HOLD_SECONDS="60")
    flow = write_flow_for(hosts, "signalled.yaml", guarded_flow(backend.state_yaml))
    proc = host.spawn("run", flow, "--run-id", "sig-1")
    wait_for(lambda: lines(started), what="the step to start")
    store = backend.open()
    try:
        assert sorted(lock.key for lock in store.list_locks()) == ["inner-key", "signalled-flow"]
        os.kill(proc.pid, signum)
        assert proc.wait(timeout=30) == 130
        stderr = proc.err_path.read_text()
        assert "step.interrupted" in stderr and "Traceback" not in stderr

        assert store.list_locks() == []
        assert store.get_run("sig-1").status == "FAILED"
        steps = {row.step_id: row for row in store.step_runs("sig-1")}
        assert steps["first"].status == "SUCCESS"
        assert (steps["guarded"].status, steps["guarded"].error) == ("FAILED", "interrupted")

        other.env["HOLD_SECONDS"] = "0"
        resumed = other.run("run", flow, "--run-id", "sig-1", "--json")
        assert resumed.exit_code == 0, resumed.stderr
        assert resumed.json["status"] == "SUCCESS"
        assert len(lines(started)) == 2, "the interrupted step runs again on resume"
        assert "step.reused" in resumed.stderr
    finally:
        store.close()



def catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler for ``signum`` (Linux: SigCgt in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught, 16) >> (signum - 1) & 1)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_start_up_exits_130_and_leaves_no_run_running(signum, tmp_path):
    """The program handles SIGTERM before it does anything slow (before a run exists), and
    a signal at any moment after that -- before the run is recorded, while it is, before
    the run's own handlers are in place -- ends it with 130 and no run left RUNNING."""
    env = base_env(tmp_path)
    flow = tmp_path / "flow.yaml"
    flow.write_text(flow_yaml("early", """
    - id: a
      steps:
        - {id: wait, type: external.process, inputs: {command: [sleep, "30"]}}
    """), encoding="utf-8")
    state = tmp_path / "state" / "state.db"
    for trial, delay in enumerate([0.0, 0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0]):
        proc = subprocess.Popen(
            [sys.executable, "-m", "aetherflow.cli", "run", str(flow), "--run-id", f"early-{trial}"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        )
        wait_for(lambda: catches(proc.pid, signal.SIGTERM) or proc.poll() is not None, what="SIGTERM to be handled")
        assert not state.exists() or f"early-{trial}" not in run_statuses(tmp_path), "signals are handled only after the run started"
        time.sleep(delay)
        os.kill(proc.pid, signum)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, (delay, stderr.decode())
        assert b"Traceback" not in stderr and b"internal error" not in stderr, stderr.decode()
    if state.exists():
        assert "RUNNING" not in run_statuses(tmp_path).values()


def run_statuses(tmp_path: Path) -> dict[str, str]:
    store = open_state_store("sqlite", state_root=str(tmp_path / "state"))
    try:
        return {run.run_id: run.status for run in store.list_runs()}
    finally:
        store.close()
