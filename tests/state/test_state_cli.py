"""``aetherflow runs list/show`` and ``aetherflow locks list/release``, and where the
state lives (the same place for ``run`` and for these commands)."""

from __future__ import annotations

import os
import pty
import select
import socket
import subprocess
import sys
import time

import pytest

from tests.helpers import base_env, run_cli

from .conftest import PLUGINS, flow_yaml, write_flow_for
from .test_locks import OTHER

FAILING_JOBS = """
- id: a
  steps:
    - id: s1
      type: statetest.ledger
      inputs: {ledger: "{{ env.LEDGER }}", previous: t, artifact: s1.bin, size: 10, sleep_ms: [0, 1]}
    - id: s2
      type: statetest.ledger
      retry: {max_attempts: 2}
      inputs: {ledger: "{{ env.LEDGER }}", previous: t, artifact: s2.bin, fail: true}
- id: b
  depends_on: [a]
  steps:
    - id: s1
      type: check_items
      inputs: {items: [1]}
"""


def test_runs_list_and_show_report_jobs_steps_attempts_durations_and_errors(backend, hosts):
    host, _ = hosts
    host.env["LEDGER"] = str(backend.root / "ledger")
    flow = write_flow_for(hosts, "report.yaml", flow_yaml("report", FAILING_JOBS, state=backend.state_yaml))
    assert host.run("run", flow, "--run-id", "report-1").exit_code == 1

    listed = host.run("runs", "list", flow, "--json")
    assert listed.exit_code == 0, listed.stderr
    (run,) = listed.json
    assert (run["run_id"], run["flow_id"], run["status"], run["pid"] > 0) == ("report-1", "report", "FAILED", True)
    assert run["started_at"].endswith("Z") and run["duration_ms"] >= 0

    shown = host.run("runs", "show", "report-1", "--flow", flow, "--json")
    assert shown.exit_code == 0, shown.stderr
    document = shown.json
    assert document["status"] == "FAILED"
    jobs = {job["id"]: job for job in document["jobs"]}
    assert jobs["a"]["status"] == "FAILED" and jobs["b"]["status"] == "BLOCKED"
    steps = {step["id"]: step for step in jobs["a"]["steps"]}
    assert (steps["s1"]["status"], steps["s1"]["attempts"]) == ("SUCCESS", 1)
    assert steps["s1"]["outputs"]["token"]
    assert (steps["s2"]["status"], steps["s2"]["attempts"]) == ("FAILED", 2)
    assert "a.s2 failed as asked" in steps["s2"]["error"]
    assert all(isinstance(s["duration_ms"], int) and s["started_at"] for s in steps.values())

    text = host.run("runs", "show", "report-1", "--flow", flow)
    assert text.exit_code == 0
    assert "run report-1 of flow report: FAILED" in text.stdout
    assert "a.s2 failed as asked" in text.stdout and "BLOCKED" in text.stdout
    table = host.run("runs", "list", flow)
    assert "report-1" in table.stdout and "FAILED" in table.stdout


def test_runs_list_without_a_flow_reads_the_default_state_file_of_run(tmp_path):
    env = base_env(tmp_path, AETHERFLOW_PLUGIN_PATHS=str(PLUGINS))
    jobs = "- id: j\n  steps:\n    - id: s\n      type: check_items\n      inputs: {items: [1]}\n"
    for flow_id in ("first", "second"):
        (tmp_path / f"{flow_id}.yaml").write_text(flow_yaml(flow_id, jobs))
        assert run_cli("run", tmp_path / f"{flow_id}.yaml", env=env).exit_code == 0
    assert (tmp_path / "state" / "state.db").exists(), "run writes <AETHERFLOW_STATE_ROOT>/state.db"

    everything = run_cli("runs", "list", "--json", env=env).json
    assert [run["flow_id"] for run in everything] == ["second", "first"]
    only_first = run_cli("runs", "list", tmp_path / "first.yaml", "--json", env=env).json
    assert [run["flow_id"] for run in only_first] == ["first"]
    assert len(run_cli("runs", "list", "--limit", "1", "--json", env=env).json) == 1
    same_file = run_cli("runs", "list", "--state", tmp_path / "state" / "state.db", "--json", env=env).json
    assert same_file == everything


def test_a_relative_state_path_is_relative_to_the_flow_file_not_the_cwd(tmp_path):
    env = base_env(tmp_path)
    flows = tmp_path / "flows"
    flows.mkdir()
    jobs = "- id: j\n  steps:\n    - id: s\n      type: check_items\n      inputs: {items: [1]}\n"
    (flows / "rel.yaml").write_text(flow_yaml("rel", jobs, state="{backend: sqlite, path: data/rel-state.db}"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert run_cli("run", flows / "rel.yaml", env=env, cwd=elsewhere).exit_code == 0
    assert (flows / "data" / "rel-state.db").exists() and not (elsewhere / "data").exists()
    listed = run_cli("runs", "list", "flows/rel.yaml", "--json", env=env, cwd=tmp_path)
    assert [run["flow_id"] for run in listed.json] == ["rel"]


def test_reading_commands_never_create_a_state_file(tmp_path):
    env = base_env(tmp_path)
    runs = run_cli("runs", "list", env=env)
    assert runs.exit_code == 0 and "no runs in sqlite" in runs.stdout
    assert run_cli("locks", "list", "--json", env=env).json == []
    assert run_cli("runs", "show", "nope", env=env).exit_code == 2
    assert not (tmp_path / "state").exists()


def test_runs_show_of_an_unknown_run_exits_2_with_a_hint(backend, hosts):
    host, _ = hosts
    flow = write_flow_for(
        hosts,
        "any.yaml",
        flow_yaml(
            "any",
            "- id: j\n  steps:\n    - {id: s, type: check_items, inputs: {items: [1]}}\n",
            state=backend.state_yaml,
        ),
    )
    assert host.run("run", flow).exit_code == 0
    result = host.run("runs", "show", "no-such-run", "--flow", flow)
    assert result.exit_code == 2
    assert "no run 'no-such-run'" in result.stderr and "aetherflow runs list" in result.stderr


def _locks_flow(backend, hosts) -> str:
    return write_flow_for(
        hosts,
        "locks.yaml",
        flow_yaml(
            "locks",
            "- id: j\n  steps:\n    - {id: s, type: check_items, inputs: {items: [1]}}\n",
            state=backend.state_yaml,
        ),
    )


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_locks_list_shows_owner_expiry_and_whether_the_holder_still_runs(backend, hosts):
    from aetherflow.core.state.base import LockOwner

    host, _ = hosts
    flow = _locks_flow(backend, hosts)
    dead = LockOwner("dead-run", socket.gethostname(), _dead_pid())
    store = backend.open()
    try:
        store.acquire_lock("remote", OTHER, 600)
        store.acquire_lock("local-dead", dead, 600)
    finally:
        store.close()
    result = host.run("locks", "list", "--flow", flow, "--json")
    assert result.exit_code == 0, result.stderr
    locks = {lock["key"]: lock for lock in result.json}
    remote = locks["remote"]
    assert (remote["owner"], remote["run_id"], remote["host"], remote["pid"]) == (OTHER.encode(), "other-run", "other-host", 4242)
    assert 590 < remote["expires_in_seconds"] <= 600 and remote["expired"] is False
    assert remote["holder_alive"] is None, "a process on another host cannot be checked"
    assert locks["local-dead"]["holder_alive"] is False
    text = host.run("locks", "list", "--flow", flow)
    assert "holder process gone" in text.stdout and "other-run@other-host:4242" in text.stdout


def test_locks_release_without_a_terminal_or_force_refuses_with_exit_2(backend, hosts):
    host, _ = hosts
    flow = _locks_flow(backend, hosts)
    store = backend.open()
    try:
        store.acquire_lock("keep-me", OTHER, 600)
        result = host.run("locks", "release", "keep-me", "--flow", flow)
        assert result.exit_code == 2
        assert "--force" in result.stderr
        assert [lock.key for lock in store.list_locks()] == ["keep-me"]

        forced = host.run("locks", "release", "keep-me", "--flow", flow, "--force", "--json")
        assert forced.exit_code == 0, forced.stderr
        assert forced.json == {"key": "keep-me", "released": True, "owner": OTHER.encode()}
        assert store.list_locks() == []
        assert host.run("locks", "release", "keep-me", "--flow", flow, "--force").exit_code == 2
    finally:
        store.close()


def _release_on_a_terminal(env: dict, key: str, answer: str) -> tuple[int, str]:
    """Run ``locks release KEY`` with a pseudo-terminal as stdin/stderr and answer its question."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aetherflow.cli", "locks", "release", key],
        stdin=slave, stderr=slave, stdout=subprocess.PIPE, env=env, text=True,
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 30
    while b"[y/N]" not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                seen += os.read(master, 4096)
            except OSError:
                break
    os.write(master, answer.encode() + b"\n")
    stdout, _ = proc.communicate(timeout=30)
    try:
        while select.select([master], [], [], 0.1)[0]:
            seen += os.read(master, 4096)
    except OSError:
        pass
    os.close(master)
    return proc.returncode, seen.decode(errors="replace") + stdout


def test_locks_release_asks_on_a_terminal_and_respects_the_answer(tmp_path):
    from aetherflow.core.state import open_state_store

    env = base_env(tmp_path)
    store = open_state_store("sqlite", path=str(tmp_path / "state" / "state.db"))
    try:
        store.acquire_lock("ask-me", OTHER, 600)
        code, output = _release_on_a_terminal(env, "ask-me", "n")
        assert code == 1 and "Lock 'ask-me' is held by other-run@other-host:4242: held, expires in " in output
        assert "Release it? [y/N]" in output and "((" not in output and "))" not in output
        assert [lock.key for lock in store.list_locks()] == ["ask-me"]
        code, output = _release_on_a_terminal(env, "ask-me", "y")
        assert code == 0 and "released lock 'ask-me'" in output
        assert store.list_locks() == []
    finally:
        store.close()


@pytest.mark.parametrize("command", [("runs", "list"), ("locks", "list")])
def test_a_flow_and_state_together_are_a_usage_error(tmp_path, command):
    (tmp_path / "f.yaml").write_text(flow_yaml("f", "- id: j\n  steps:\n    - {id: s, type: check_items, inputs: {items: [1]}}\n"))
    args = [*command, "--state", tmp_path / "x.db"]
    args += [tmp_path / "f.yaml"] if command == ("runs", "list") else ["--flow", tmp_path / "f.yaml"]
    result = run_cli(*args, env=base_env(tmp_path))
    assert result.exit_code == 2 and "not both" in result.stderr

