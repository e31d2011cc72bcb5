"""Locks on both backends: exclusion between processes, expiry of a dead holder's lock,
renewal of a long holder's lock, ``with_lock`` and ``flow.lock`` (``on_locked``).

With PostgreSQL the contending runners are split over two "hosts" (different working
directories and work roots) that share only the state database.
"""

from __future__ import annotations

import itertools
import signal
import threading

from aetherflow.core.errors import LockHeldError
from aetherflow.core.locks import LockManager
from aetherflow.core.state.base import LockOwner

from .conftest import flow_yaml, kill9, lines, wait_for, write_flow_for

OTHER = LockOwner("other-run", "other-host", 4242)


def with_lock_flow(flow_id: str, state: str | None, key: str, ttl: float, wait: float, inner: str, first_step: str = "") -> str:
    first = f"\n        - {first_step}" if first_step else ""
    jobs = f"""
    - id: guarded
      steps:{first}
        - id: guarded
          type: with_lock
          inputs:
            lock_key: {key}
            ttl_seconds: {ttl}
            wait_seconds: {wait}
            step: {inner}
    """
    return flow_yaml(flow_id, jobs, state=state)


HOLD = '{type: statetest.hold, id: hold, inputs: {started: "{{ env.STARTED }}", finished: "{{ env.FINISHED }}", seconds: "{{ env.HOLD_SECONDS | float }}"}}'


# -- between processes --------------------------------------------------------------------


def test_eight_processes_contending_for_one_key_never_overlap(backend, hosts):
    log, marker, barrier = backend.root / "critical.log", backend.root / "inside.marker", backend.root / "barrier"
    inner = '{type: statetest.critical, id: critical, inputs: {log: "{{ env.CRIT_LOG }}", marker: "{{ env.CRIT_MARKER }}", hold_ms: 50}}'
    # Every process first waits for all eight to be running, so they really contend.
    ready = '{id: ready, type: statetest.barrier, inputs: {path: "{{ env.BARRIER }}", count: 8}}'
    flow = write_flow_for(hosts, "contend.yaml", with_lock_flow("contend", backend.state_yaml, "shared-key", 10, 120, inner, ready))
    for host in hosts:
        host.env.update(CRIT_LOG=str(log), CRIT_MARKER=str(marker), BARRIER=str(barrier))
    procs = [hosts[i % 2].spawn("run", flow) for i in range(8)]
    codes = [proc.wait(timeout=180) for proc in procs]
    assert codes == [0] * 8, [p.err_path.read_text()[-2000:] for p, c in zip(procs, codes) if c]
    assert any("lock.waiting" in p.err_path.read_text() for p in procs), "no process ever had to wait: no contention"

    entries = [line.split() for line in lines(log)]
    assert not [e for e in entries if e[0] == "OVERLAP"], "two processes were inside the critical section at once"
    sections: dict[str, dict[str, float]] = {}
    for kind, stamp, pid in entries:
        sections.setdefault(pid, {})[kind] = float(stamp)
    assert len(sections) == 8 and all(set(s) == {"start", "end"} for s in sections.values())
    ordered = sorted(sections.values(), key=lambda s: s["start"])
    for earlier, later in itertools.pairwise(ordered):
        assert later["start"] >= earlier["end"], "critical sections overlap in time"
    store = backend.open()
    try:
        assert store.list_locks() == []
    finally:
        store.close()


def test_a_holder_killed_with_9_loses_the_lock_after_its_ttl_and_not_before(backend, hosts):
    host_a, host_b = hosts
    flow = write_flow_for(hosts, "holder.yaml", with_lock_flow("holder", backend.state_yaml, "dead-key", 4, 30, HOLD))
    a_started, b_started = backend.root / "a.started", backend.root / "b.started"
    host_a.env.update(STARTED=str(a_started), FINISHED="", HOLD_SECONDS="60")
    host_b.env.update(STARTED=str(b_started), FINISHED="", HOLD_SECONDS="0")

    holder = host_a.spawn("run", flow)
    wait_for(lambda: lines(a_started), what="the holder to enter its step")
    assert kill9(holder) == -signal.SIGKILL

    store = backend.open()
    try:
        (lock,) = store.list_locks()
        assert LockOwner.decode(lock.owner).pid == holder.pid
        checked_at = store.now()
        assert checked_at < lock.expires_at  # renewed a third of the TTL ago at most
        assert not store.acquire_lock("dead-key", OTHER, 4), "a live (unexpired) lock was taken over"

        result = host_b.run("run", flow, "--json")
        assert result.exit_code == 0, result.stderr
        (b_line,) = lines(b_started)
        acquired_at, b_pid = float(b_line.split()[0]), int(b_line.split()[1])
        assert acquired_at >= lock.expires_at, "the dead holder's lock was taken before it expired"
        assert b_pid != holder.pid
        assert store.list_locks() == []
    finally:
        store.close()


def test_a_step_running_three_times_its_ttl_keeps_the_lock_through_renewal(backend, hosts):
    host_a, _ = hosts
    ttl = 1.0
    flow = write_flow_for(hosts, "long.yaml", with_lock_flow("long", backend.state_yaml, "long-key", ttl, 0, HOLD))
    started, finished = backend.root / "long.started", backend.root / "long.finished"
    host_a.env.update(STARTED=str(started), FINISHED=str(finished), HOLD_SECONDS=str(3 * ttl))

    holder = host_a.spawn("run", flow)
    store = backend.open()
    try:
        wait_for(lambda: lines(started), what="the holder to enter its step")
        owner = LockOwner.decode(store.list_locks()[0].owner)
        assert owner.pid == holder.pid
        probes = []
        while True:
            at = store.now()
            taken = store.acquire_lock("long-key", OTHER, ttl)
            owners = [lock.owner for lock in store.list_locks()]
            if finished.exists():  # the step ended: this probe may have raced the release
                break
            probes.append((at, taken, owners))
            threading.Event().wait(0.05)
        assert holder.wait(timeout=60) == 0, holder.err_path.read_text()[-2000:]
        assert all(not taken for _, taken, _ in probes), "a contender took the lock while its holder was running"
        assert all(owners == [owner.encode()] for _, _, owners in probes)
        assert probes[-1][0] - probes[0][0] >= 2 * ttl, "the probes must span more than the TTL"
        assert "lock.lost" not in holder.err_path.read_text()
        assert owner.encode() not in [lock.owner for lock in store.list_locks()], "released when the step ended"
        assert store.acquire_lock("long-key", OTHER, ttl)
    finally:
        store.close()


# -- atomic acquire and the lock manager (in process) --------------------------------------


def test_racing_acquires_of_a_free_key_have_exactly_one_winner(backend):
    stores = [backend.open() for _ in range(6)]
    try:
        for round_number in range(5):
            key = f"race-{round_number}"
            barrier = threading.Barrier(len(stores))
            wins: list[bool] = [False] * len(stores)

            def attempt(index: int) -> None:
                barrier.wait()
                wins[index] = stores[index].acquire_lock(key, LockOwner(f"run-{index}", "h", index), 30)

            threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(stores))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert wins.count(True) == 1
    finally:
        for store in stores:
            store.close()


def test_an_expired_lock_is_taken_over_and_the_old_owner_cannot_renew_it(backend):
    store = backend.open()
    try:
        assert store.acquire_lock("stale", OTHER, 0.05)
        wait_for(lambda: store.now() > store.list_locks()[0].expires_at, what="expiry")
        mine = LockOwner("new-run", "here", 1)
        assert store.acquire_lock("stale", mine, 30)
        assert not store.renew_lock("stale", OTHER, 30)
        assert not store.release_lock("stale", OTHER)
        assert [lock.owner for lock in store.list_locks()] == [mine.encode()]
    finally:
        store.close()


def test_lock_manager_is_reentrant_and_release_all_frees_everything(backend):
    store = backend.open()
    try:
        manager = LockManager(store, "run-1")
        with manager.hold("outer", 30):
            with manager.hold("outer", 30):
                pass
            assert [lock.key for lock in store.list_locks()] == ["outer"], "the inner release freed the outer hold"
            assert not store.acquire_lock("outer", OTHER, 30)
            manager.acquire("second", 30)
            manager.acquire("second", 30)
        assert [lock.key for lock in store.list_locks()] == ["second"]
        manager.release_all()
        assert store.list_locks() == []
        assert manager._thread is None or not manager._thread.is_alive()
    finally:
        store.close()


def test_a_short_lock_taken_while_a_long_one_is_held_is_renewed_in_time(backend):
    store, probe = backend.open(), backend.open()
    try:
        manager = LockManager(store, "run-2")
        manager.acquire("long", 600)
        manager.acquire("short", 0.6)
        for _ in range(30):  # 1.5 s: more than two short TTLs
            assert not probe.acquire_lock("short", OTHER, 0.6)
            threading.Event().wait(0.05)
        manager.release_all()
        assert probe.list_locks() == []
    finally:
        store.close()
        probe.close()


def test_hold_of_a_busy_key_raises_lock_held_error_naming_the_holder(backend):
    store = backend.open()
    try:
        assert store.acquire_lock("busy", OTHER, 30)
        manager = LockManager(store, "run-3")
        try:
            with manager.hold("busy", 30, wait_seconds=0.2):
                raise AssertionError("must not get here")
        except LockHeldError as exc:
            assert "other-run@other-host:4242" in str(exc)
    finally:
        store.close()


# -- with_lock and flow.lock through the CLI -------------------------------------------------


def test_with_lock_returns_the_inner_steps_outputs_and_releases_the_lock(backend, hosts):
    host, _ = hosts
    flow = write_flow_for(
        hosts,
        "inner.yaml",
        with_lock_flow(
            "inner", backend.state_yaml, "k1", 30, 0, "{type: check_items, id: count, inputs: {items: 'a,b,c'}}"
        ),
    )
    result = host.run("run", flow, "--json")
    assert result.exit_code == 0, result.stderr
    (step,) = result.json["jobs"][0]["steps"]
    assert step["type"] == "with_lock" and step["outputs"] == {"has_data": True, "count": 3}
    assert "lock.acquired" in result.stderr and "lock.released" in result.stderr


def test_with_lock_fails_after_wait_seconds_naming_the_holder(backend, hosts):
    host, _ = hosts
    store = backend.open()
    try:
        assert store.acquire_lock("k2", OTHER, 600)
        flow = write_flow_for(hosts, "busy.yaml", with_lock_flow("busy", backend.state_yaml, "k2", 30, 0.3, "{type: check_items, inputs: {items: [1]}}"))
        result = host.run("run", flow, "--json")
        assert result.exit_code == 1
        (step,) = result.json["jobs"][0]["steps"]
        assert step["status"] == "FAILED"
        assert "lock 'k2' is held by other-run@other-host:4242" in step["error"]
        assert [lock.owner for lock in store.list_locks()] == [OTHER.encode()]
    finally:
        store.close()


def test_with_lock_rejects_a_bad_inner_step_before_taking_the_lock(backend, hosts):
    host, _ = hosts
    # A literal inner step is checked before the run starts (tests/spec/test_validate_knowable.py);
    # one whose type is only known once rendered is checked by the step, before the lock.
    inner = "{type: \"{{ 'check_items' }}\", inputs: {itemz: [1]}}"
    flow = write_flow_for(hosts, "bad.yaml", with_lock_flow("bad", backend.state_yaml, "k3", 30, 0, inner))
    result = host.run("run", flow, "--json")
    assert result.exit_code == 2
    assert "unknown input 'itemz'" in result.json["jobs"][0]["steps"][0]["error"]
    assert "lock.acquired" not in result.stderr


def _flow_lock_flow(state: str | None, on_locked: str) -> str:
    jobs = """
    - id: only
      steps:
        - id: count
          type: check_items
          inputs: {items: [1, 2]}
    """
    return flow_yaml("nightly", jobs, state=state, lock=f"{{key: nightly, ttl_seconds: 60, on_locked: {on_locked}}}")


def test_flow_lock_held_with_on_locked_fail_exits_3_and_records_the_run_failed(backend, hosts):
    host, _ = hosts
    store = backend.open()
    try:
        assert store.acquire_lock("nightly", OTHER, 600)
        flow = write_flow_for(hosts, "nightly.yaml", _flow_lock_flow(backend.state_yaml, "fail"))
        result = host.run("run", flow, "--run-id", "refused-1")
        assert result.exit_code == 3
        assert "flow lock 'nightly' is held by other-run@other-host:4242" in result.stderr
        assert "Traceback" not in result.stderr
        assert store.get_run("refused-1").status == "FAILED"
        assert [lock.owner for lock in store.list_locks()] == [OTHER.encode()]
    finally:
        store.close()


def test_flow_lock_held_with_on_locked_skip_is_a_skipped_run_exit_0(backend, hosts):
    host, _ = hosts
    store = backend.open()
    try:
        assert store.acquire_lock("nightly", OTHER, 600)
        flow = write_flow_for(hosts, "nightly.yaml", _flow_lock_flow(backend.state_yaml, "skip"))
        result = host.run("run", flow, "--json")
        assert result.exit_code == 0, result.stderr
        assert result.json["status"] == "SKIPPED"
        assert [job["status"] for job in result.json["jobs"]] == ["SKIPPED"]
        assert store.get_run(result.json["run_id"]).status == "SKIPPED"
    finally:
        store.close()


def test_flow_lock_is_taken_and_released_by_a_run(backend, hosts):
    host, _ = hosts
    flow = write_flow_for(hosts, "nightly.yaml", _flow_lock_flow(backend.state_yaml, "fail"))
    result = host.run("run", flow, "--json")
    assert result.exit_code == 0, result.stderr
    assert "lock.acquired lock_key=nightly" in result.stderr and "lock.released lock_key=nightly" in result.stderr
    store = backend.open()
    try:
        assert store.list_locks() == []
    finally:
        store.close()


def test_a_failing_guarded_step_releases_its_lock_and_the_flow_lock(backend, hosts):
    host, _ = hosts
    host.env["LEDGER"] = str(backend.root / "ledger")
    inner = '{type: statetest.ledger, inputs: {ledger: "{{ env.LEDGER }}", previous: t, artifact: x.bin, fail: true}}'
    text = with_lock_flow("failing", backend.state_yaml, "k4", 30, 0, inner)
    text = text.replace("  id: failing\n", "  id: failing\n  lock: {key: failing-flow, ttl_seconds: 60}\n")
    flow = write_flow_for(hosts, "failing.yaml", text)
    result = host.run("run", flow, "--json")
    assert result.exit_code == 1
    assert "guarded.guarded failed as asked" in result.json["jobs"][0]["steps"][0]["error"]
    assert result.stderr.count("lock.released") == 2
    store = backend.open()
    try:
        assert store.list_locks() == []
    finally:
        store.close()
