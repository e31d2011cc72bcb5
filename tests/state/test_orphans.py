"""No orphans: after ``kill -9`` of the runner in the middle of an ``external.process``
step, no process of the step survives (the command, its shell's children), and the run
resumed right away executes the step again, never beside a leftover of the first try."""

from __future__ import annotations

import os
import signal
import time

from aetherflow.core.procfs import group_members

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


def guards_of(pid: int) -> list[int]:
    """The group guards the runner ``pid`` started (its children running the guard script)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat", "rb").read().rsplit(b") ", 1)[1].split()
            cmdline = open(f"/proc/{entry}/cmdline", "rb").read()
        except (OSError, IndexError):
            continue
        if int(stat[1]) == pid and b"read -r done" in cmdline:
            found.append(int(entry))
    return found


def crash_with_guard(host, flow: str, run_id: str, ledger) -> int:
    """Start the flow, then kill -9 the runner and its group guard together (what no
    clean-up survives): the command's backgrounded child is left running. Its group id."""
    proc = host.spawn("run", flow, "--run-id", run_id)
    wait_for(lambda: any(line.startswith("child ") for line in lines(ledger)), what="the step's command to start its child")
    child = int(next(line for line in lines(ledger) if line.startswith("child ")).split()[1])
    pgid = os.getpgid(child)
    guards = wait_for(lambda: guards_of(proc.pid), what="the group guard")
    for guard in guards:
        os.kill(guard, signal.SIGKILL)
    assert kill9(proc) == -signal.SIGKILL
    time.sleep(0.5)
    assert group_members(pgid), "the command's child outlived the runner and its guard"
    return pgid


def test_a_resume_stops_the_process_group_a_dead_runner_left_running(backend, hosts):
    host, _ = hosts
    ledger, lock = backend.root / "ledger.txt", backend.root / "step.lock"
    host.env.update(LEDGER=str(ledger), LOCK=str(lock), HOLD="60")
    flow = write_flow_for((host,), "orphans.yaml", orphan_flow())
    pgid = crash_with_guard(host, flow, "left", ledger)
    try:
        host.env["HOLD"] = "0"
        resumed = host.run("run", flow, "--run-id", "left", "--json")
        assert resumed.exit_code == 0, resumed.output
        assert f"process group {pgid} of step work.hold of run left was still running and was terminated" in resumed.stderr
        assert not group_members(pgid)
        assert [line.split()[0] for line in lines(ledger)] == ["start", "child", "start", "child", "end"], lines(ledger)
    finally:
        if group_members(pgid):
            os.killpg(pgid, signal.SIGKILL)


def test_locks_list_names_the_children_of_a_dead_holder_and_a_takeover_stops_them(tmp_path):
    from .conftest import Backend, make_host

    backend = Backend("sqlite", tmp_path)
    host = make_host(backend, "host-a")
    ledger, lock = tmp_path / "ledger.txt", tmp_path / "step.lock"
    host.env.update(LEDGER=str(ledger), LOCK=str(lock), HOLD="60")
    text = orphan_flow().replace("  id: orphans\n", "  id: orphans\n  lock: {key: orphans-flow, ttl_seconds: 2}\n")
    flow = write_flow_for((host,), "orphans.yaml", text)
    pgid = crash_with_guard(host, flow, "first", ledger)
    try:
        listed = host.run("locks", "list", "--flow", flow, "--json")
        [held] = listed.json
        assert held["key"] == "orphans-flow" and held["holder_alive"] is False
        assert held["holder_children_alive"] == [pgid]
        assert f"its children still run (process group {pgid})" in host.run("locks", "list", "--flow", flow).stdout

        wait_for(lambda: host.run("locks", "list", "--flow", flow, "--json").json[0]["expired"], what="the lock to expire")
        host.env["HOLD"] = "0"
        second = host.run("run", flow, "--run-id", "second", "--json")
        assert second.exit_code == 0, second.output
        assert "lock.leftover_stopped" in second.stderr and not group_members(pgid)
        assert [line.split()[0] for line in lines(ledger)] == ["start", "child", "start", "child", "end"], lines(ledger)
    finally:
        if group_members(pgid):
            os.killpg(pgid, signal.SIGKILL)
