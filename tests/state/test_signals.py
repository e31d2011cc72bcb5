"""SIGTERM / SIGINT to a running ``aetherflow run``: the running step stops and is
recorded FAILED ("interrupted"), every lock is released, the exit code is 130, and the
run can be resumed by its id afterwards.
"""

from __future__ import annotations

import os
import signal

import pytest

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
