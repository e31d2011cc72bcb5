"""No orphans: after ``kill -9`` of the runner in the middle of an ``external.process``
step, no process of the step survives (the command, its shell's children), and the run
resumed right away executes the step again, never beside a leftover of the first try."""

from __future__ import annotations

import os
import signal
import time

from aetherflow_core.procfs import group_members

from .conftest import flow_yaml, kill9, lines, wait_for, write_flow_for

# The step holds a lock only one instance can hold: a second instance beside a leftover
# of the first finds it taken and says "overlap". Its own child is a backgrounded sleep.
COMMAND = (
    'flock -n "$LOCK" sh -c \'echo "start $$" >> "$LEDGER"; sleep "$HOLD" & echo "child $!" >> "$LEDGER"; wait; '
    'echo end >> "$LEDGER"\' || echo overlap >> "$LEDGER"'
)


def orphan_flow() -> str:
    command = COMMAND.replace("'", "''")
    return flow_yaml("orphans", f"""
    - id: work
      steps:
        - {{id: before, type: check_items, inputs: {{items: [1]}}}}
        - {{id: hold, type: external.process, inputs: {{command: '{command}', shell: true}}}}
    """)


def test_kill_9_of_the_runner_leaves_no_process_of_the_step_and_resume_runs_it_once(backend, hosts):
    host, _ = hosts
    ledger, lock = backend.root / "ledger.txt", backend.root / "step.lock"
    host.env.update(LEDGER=str(ledger), LOCK=str(lock), HOLD="60")
    flow = write_flow_for((host,), "orphans.yaml", orphan_flow())

    proc = host.spawn("run", flow, "--run-id", "k9")
    wait_for(lambda: any(line.startswith("child ") for line in lines(ledger)), what="the step's command to start its child")
    started = {int(line.split()[1]) for line in lines(ledger) if line.startswith(("start ", "child "))}
    pgid = os.getpgid(next(iter(started)))
    assert pgid != os.getpgid(proc.pid), "the command runs in a process group of its own"
    assert kill9(proc) == -signal.SIGKILL

    killed_at = time.monotonic()
    wait_for(lambda: not group_members(pgid), timeout=5, what=f"process group {pgid} to be gone")
    assert time.monotonic() - killed_at < 1.0, "a process of the step outlived the runner by a second or more"
    assert all(group_members(pgid) == [] for _ in range(3))

    host.env["HOLD"] = "0"
    resumed = host.run("run", flow, "--run-id", "k9", "--json")
    assert resumed.exit_code == 0, resumed.output
    assert [s["status"] for s in resumed.json["jobs"][0]["steps"]] == ["SUCCESS", "SUCCESS"]
    events = [line.split()[0] for line in lines(ledger)]
    assert events == ["start", "child", "start", "child", "end"], lines(ledger)
