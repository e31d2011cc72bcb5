"""Parallel jobs: the same statuses as one after another, resume, locks, Ctrl-C, and
the cross-job template rule of ``validate``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from aetherflow.core.state import open_state_store
from aetherflow.core.status import Status
from tests.helpers import run_cli, write_flow
from tests.services import process_gone

DIAMOND = """
version: 1
flow:
  id: diamond
jobs:
  - id: start
    steps:
      - {id: go, type: test.echo, inputs: {values: {go: true}}, outputs: {go: "{{ result.go }}"}}
  - id: left
    depends_on: [start]
    steps:
      - {id: ok, type: test.echo}
      - {id: bad, type: test.fail, inputs: {message: left branch broke}}
      - {id: after, type: test.echo}
  - id: right
    depends_on: [start]
    steps:
      - {id: ok, type: test.echo, inputs: {values: {n: 1}}, outputs: {n: "{{ result.n }}"}}
  - id: join
    depends_on: [left, right]
    steps:
      - {id: never, type: test.echo}
  - id: gated
    depends_on: [start]
    when: "jobs.start.outputs.go == false"
    steps:
      - {id: never, type: test.echo}
  - id: nodata
    depends_on: [start]
    steps:
      - {id: empty, type: test.echo, inputs: {skip: true}, on_no_data: skip_job}
      - {id: never, type: test.echo}
  - id: after_nodata
    depends_on: [nodata]
    steps:
      - {id: never, type: test.echo}
  - id: after_right
    depends_on: [right]
    when: "jobs.right.outputs.n == 1"
    steps:
      - {id: ok, type: test.echo}
"""


def _outcome(doc: dict) -> list:
    return [(job["id"], job["status"], [(s["id"], s["status"]) for s in job["steps"]]) for job in doc["jobs"]]


def _state(tmp_path: Path, run_id: str):
    store = open_state_store("sqlite", path=str(tmp_path / "state" / "state.db"))
    try:
        return store.job_runs(run_id), store.step_runs(run_id)
    finally:
        store.close()


def test_a_diamond_with_a_failing_branch_and_gates_ends_the_same_in_parallel_and_in_sequence(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", DIAMOND)
    sequential = run_cli("run", flow, "--json", "--max-parallel", "1", env=cli_env)
    parallel = run_cli("run", flow, "--json", "--max-parallel", "4", env=cli_env)
    assert sequential.exit_code == parallel.exit_code == 1, parallel.output
    assert _outcome(parallel.json) == _outcome(sequential.json)
    statuses = {job_id: status for job_id, status, _ in _outcome(parallel.json)}
    assert statuses == {
        "start": "SUCCESS", "left": "FAILED", "right": "SUCCESS", "join": "BLOCKED",
        "gated": "SKIPPED", "nodata": "SKIPPED", "after_nodata": "SKIPPED", "after_right": "SUCCESS",
    }
    # The document and the state list jobs in plan order, whatever order they finished in.
    assert [job["id"] for job in parallel.json["jobs"]] == ["start", "left", "right", "join", "gated", "nodata", "after_nodata", "after_right"]
    jobs, steps = _state(tmp_path, parallel.json["run_id"])
    assert [row.job_id for row in jobs] == [job["id"] for job in parallel.json["jobs"]]
    assert all(row.status != Status.RUNNING for row in jobs + steps)
    assert all(row.started_at is not None and row.ended_at is not None for row in jobs)
    # Job selection plans the same jobs either way.
    for selection in (("--job", "join"), ("--job", "after_nodata", "--job", "after_right")):
        one = run_cli("run", flow, "--json", "--max-parallel", "1", *selection, env=cli_env)
        many = run_cli("run", flow, "--json", "--max-parallel", "4", *selection, env=cli_env)
        assert one.exit_code == many.exit_code and _outcome(one.json) == _outcome(many.json), (selection, many.output)


def test_the_environment_and_the_command_line_set_max_parallel(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", DIAMOND)
    bad = run_cli("run", flow, env={**cli_env, "AETHERFLOW_MAX_PARALLEL": "many"})
    assert bad.exit_code == 2 and "AETHERFLOW_MAX_PARALLEL='many' is not a number of jobs" in bad.stderr
    assert "Traceback" not in bad.output
    too_many = run_cli("run", flow, "--max-parallel", "0", env=cli_env)
    assert too_many.exit_code == 2 and "--max-parallel" in too_many.stderr
    logged = run_cli("run", flow, "--log-format", "json", env={**cli_env, "AETHERFLOW_MAX_PARALLEL": "3"})
    started = next(json.loads(line) for line in logged.stderr.splitlines() if '"run.started"' in line)
    assert started["max_parallel"] == 3
    overridden = run_cli("run", flow, "--log-format", "json", "--max-parallel", "2", env={**cli_env, "AETHERFLOW_MAX_PARALLEL": "3"})
    started = next(json.loads(line) for line in overridden.stderr.splitlines() if '"run.started"' in line)
    assert started["max_parallel"] == 2


RENDEZVOUS = """
version: 1
flow:
  id: rendezvous
  max_parallel: 2
jobs:
  - id: a
    steps:
      - id: meet
        type: external.process
        timeout_seconds: 60
        inputs: {command: "touch $MEET/a; while [ ! -e $MEET/b ]; do sleep 0.02; done", shell: true}
  - id: b
    steps:
      - id: meet
        type: external.process
        timeout_seconds: 60
        inputs: {command: "touch $MEET/b; while [ ! -e $MEET/a ]; do sleep 0.02; done", shell: true}
"""


def test_independent_jobs_run_at_the_same_time_up_to_max_parallel(tmp_path, cli_env):
    # Each job waits for the other to have started: only a parallel run finishes.
    flow = write_flow(tmp_path / "flow.yaml", RENDEZVOUS)
    (tmp_path / "meet").mkdir()
    result = run_cli("run", flow, "--json", env={**cli_env, "MEET": str(tmp_path / "meet")})
    assert result.exit_code == 0, result.output
    run_id = result.json["run_id"]
    jobs, _ = _state(tmp_path, run_id)
    a, b = jobs
    assert a.started_at < b.ended_at and b.started_at < a.ended_at  # the two intervals overlap

    timeline = run_cli("runs", "show", run_id, "--timeline", "--json", env=cli_env)
    assert timeline.exit_code == 0, timeline.output
    rows = {(row["job"], row["step"]): row for row in timeline.json["rows"]}
    assert list(rows) == [("a", None), ("a", "meet"), ("b", None), ("b", "meet")]
    ja, jb = rows["a", None], rows["b", None]
    assert 0 <= ja["start_ms"] < jb["end_ms"] and 0 <= jb["start_ms"] < ja["end_ms"]
    assert max(ja["end_ms"], jb["end_ms"]) <= timeline.json["duration_ms"]
    chart = run_cli("runs", "show", run_id, "--timeline", env=cli_env)
    assert chart.exit_code == 0, chart.output
    lines = chart.stdout.splitlines()
    assert lines[0].startswith(f"run {run_id} of flow rendezvous: SUCCESS")
    bars = {line.split("|")[0].strip(): line.split("|")[1] for line in lines[2:]}
    assert set(bars) == {"a", "b", "meet"}
    assert all("=" in bars[job] for job in ("a", "b"))


LOCKED = """
version: 1
flow:
  id: locked
  max_parallel: 3
jobs:
"""
LOCKED_JOB = """
  - id: j{n}
    steps:
      - id: exclusive
        type: with_lock
        inputs:
          lock_key: shared-thing
          wait_seconds: 60
          step:
            type: external.process
            inputs: {{command: "mkdir $INSIDE/held && sleep 0.3 && rmdir $INSIDE/held", shell: true}}
"""


def test_with_lock_excludes_parallel_jobs_of_the_same_run(tmp_path, cli_env):
    # mkdir fails when another job is inside the lock at the same time.
    flow = write_flow(tmp_path / "flow.yaml", LOCKED + "".join(LOCKED_JOB.format(n=n) for n in range(3)))
    result = run_cli("run", flow, "--json", env={**cli_env, "INSIDE": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert [job["status"] for job in result.json["jobs"]] == ["SUCCESS"] * 3


RESUMABLE = """
version: 1
flow:
  id: resumable
  max_parallel: 3
jobs:
  - id: a
    steps:
      - {id: count, type: external.process, inputs: {command: "echo x >> $COUNTS/a", shell: true}}
  - id: b
    steps:
      - {id: count, type: external.process, inputs: {command: "echo x >> $COUNTS/b", shell: true}}
  - id: c
    steps:
      - {id: count, type: external.process, inputs: {command: "echo x >> $COUNTS/c", shell: true}}
      - {id: needs_flag, type: external.process, inputs: {command: "echo x >> $COUNTS/flag; test -e $COUNTS/ok", shell: true}}
  - id: d
    depends_on: [a, c]
    steps:
      - {id: count, type: external.process, inputs: {command: "echo x >> $COUNTS/d", shell: true}}
"""


def test_resuming_a_parallel_run_runs_no_finished_step_again(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", RESUMABLE)
    counts = tmp_path / "counts"
    counts.mkdir()
    env = {**cli_env, "COUNTS": str(counts)}
    first = run_cli("run", flow, "--json", env=env)
    assert first.exit_code == 1, first.output
    assert {job["id"]: job["status"] for job in first.json["jobs"]} == {"a": "SUCCESS", "b": "SUCCESS", "c": "FAILED", "d": "BLOCKED"}
    (counts / "ok").touch()
    second = run_cli("run", flow, "--json", "--run-id", first.json["run_id"], env=env)
    assert second.exit_code == 0, second.output
    lines = {name: len((counts / name).read_text().splitlines()) for name in ("a", "b", "c", "d", "flag")}
    assert lines == {"a": 1, "b": 1, "c": 1, "d": 1, "flag": 2}


INTERRUPTED = """
version: 1
flow:
  id: interrupted
  max_parallel: 3
jobs:
"""
SLEEPER = """
  - id: s{n}
    steps:
      - id: tree
        type: external.process
        inputs:
          command: "sleep 60 & echo $! > $PIDS/{n}; wait"
          shell: true
          kill_grace_seconds: 2
      - {{id: after, type: test.echo}}
"""
LATER = """
  - id: later
    depends_on: [s0]
    steps:
      - {id: never, type: test.echo}
"""


def _interrupted(flow: Path, env: dict, ready, *, signals: int = 1) -> tuple[int, str, str]:
    """Run ``flow`` as a user would, wait for ``ready()``, press Ctrl-C ``signals`` times
    (the later ones after the run had time to react to the first), and wait for the end."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "aetherflow.cli", "run", str(flow), "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not ready():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never got to the point of the test"
            time.sleep(0.02)
        for n in range(signals):
            if n:
                time.sleep(0.5)
                assert proc.poll() is None  # the first Ctrl-C waits for a step still running
            proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)  # well before any step of these tests ends by itself
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, stdout, stderr


def test_ctrl_c_during_a_parallel_run_stops_every_tree_and_leaves_nothing_running(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", INTERRUPTED + "".join(SLEEPER.format(n=n) for n in range(3)) + LATER)
    pids = tmp_path / "pids"
    pids.mkdir()
    env = {**cli_env, "PIDS": str(pids)}

    def started() -> bool:
        return all((pids / str(n)).exists() and (pids / str(n)).read_text().strip() for n in range(3))

    returncode, stdout, stderr = _interrupted(flow, env, started)
    children = [int((pids / str(n)).read_text()) for n in range(3)]
    assert returncode == 130, stderr
    assert all(process_gone(pid) for pid in children)
    doc = json.loads(stdout)
    assert doc["status"] == "FAILED"
    assert [(job["id"], job["status"]) for job in doc["jobs"]] == [("s0", "FAILED"), ("s1", "FAILED"), ("s2", "FAILED")]
    for job in doc["jobs"]:
        assert [(s["status"], s["error"]) for s in job["steps"]] == [("FAILED", "interrupted"), ("BLOCKED", None)]
    jobs, steps = _state(tmp_path, doc["run_id"])
    assert {row.job_id: (row.status, row.error) for row in jobs} == {f"s{n}": ("FAILED", "interrupted") for n in range(3)}
    assert not [row for row in jobs + steps if row.status == Status.RUNNING]


SIGNALLED = """
version: 1
flow:
  id: signalled
  max_parallel: {max_parallel}
jobs:
  - id: a
    steps:
      - {{id: poke, type: test.signal_own_thread}}
      - {{id: after, type: test.echo}}
"""


def test_a_signal_delivered_to_a_job_thread_still_interrupts_the_run(tmp_path, cli_env):
    # The kernel may hand SIGINT to any thread; Python runs the handler on the main
    # thread only, so the main thread must not sleep through it.
    for max_parallel in (1, 2):
        flow = write_flow(tmp_path / f"flow{max_parallel}.yaml", SIGNALLED.format(max_parallel=max_parallel))
        result = run_cli("run", flow, "--json", env=cli_env)
        assert result.exit_code == 130, result.output
        [job] = result.json["jobs"]
        assert [(s["status"], s["error"]) for s in job["steps"]] == [("FAILED", "interrupted"), ("BLOCKED", None)]


DEAF = """
version: 1
flow:
  id: deaf
  max_parallel: 2
jobs:
  - id: quick
    steps:
      - {id: ok, type: test.echo}
  - id: deaf
    depends_on: [quick]
    steps:
      - {id: sleep, type: test.ignore_cancel, inputs: {marker: "{{ env.MARKER }}", seconds: 60}}
      - {id: after, type: test.echo}
"""


def test_a_second_ctrl_c_stops_waiting_for_a_step_that_ignores_cancellation(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", DEAF)
    marker = tmp_path / "started"
    returncode, stdout, stderr = _interrupted(flow, {**cli_env, "MARKER": str(marker)}, marker.exists, signals=2)
    assert returncode == 130, stderr
    doc = json.loads(stdout)
    assert [(job["id"], job["status"]) for job in doc["jobs"]] == [("quick", "SUCCESS"), ("deaf", "FAILED")]
    assert [(s["status"], s["error"]) for s in doc["jobs"][1]["steps"]] == [("FAILED", "interrupted"), ("BLOCKED", None)]
    jobs, steps = _state(tmp_path, doc["run_id"])
    assert {row.job_id: row.status for row in jobs} == {"deaf": "FAILED", "quick": "SUCCESS"}
    assert not [row for row in jobs + steps if row.status == Status.RUNNING]


CROSS_READ = """
version: 1
flow:
  id: cross
  max_parallel: {max_parallel}
jobs:
  - id: a
    steps:
      - {{id: s, type: test.echo, inputs: {{values: {{n: 1}}}}, outputs: {{n: "{{{{ result.n }}}}"}}}}
  - id: b
    depends_on: [a]
    steps:
      - {{id: s, type: test.echo, inputs: {{values: {{n: "{{{{ jobs.a.outputs.n }}}}"}}}}}}
  - id: c
    when: "jobs.a.outputs.n == 1"
    steps:
      - {{id: s, type: test.echo, inputs: {{values: {{n: "{{{{ jobs.b.status }}}}"}}}}}}
"""


def test_validate_refuses_reading_a_job_that_is_not_upstream_when_jobs_run_in_parallel(tmp_path, cli_env):
    parallel = write_flow(tmp_path / "parallel.yaml", CROSS_READ.format(max_parallel=2))
    result = run_cli("validate", parallel, env=cli_env)
    assert result.exit_code == 2, result.output
    assert "job 'c' reads job 'a', which is not among its upstream jobs, and flow.max_parallel is 2" in result.stderr
    assert "job 'c' reads job 'b'" in result.stderr
    assert "parallel.yaml:14:" in result.stderr  # the `when` line
    assert "add 'a' to depends_on of job 'c'" in result.stderr
    assert "job 'b' reads" not in result.stderr  # b depends on a

    sequential = write_flow(tmp_path / "sequential.yaml", CROSS_READ.format(max_parallel=1))
    assert run_cli("validate", sequential, env=cli_env).exit_code == 0
    refused = run_cli("run", sequential, "--max-parallel", "2", env=cli_env)
    assert refused.exit_code == 2 and "--max-parallel / AETHERFLOW_MAX_PARALLEL is 2" in refused.stderr
    assert run_cli("run", sequential, env=cli_env).exit_code == 0


def test_lines_logged_while_a_step_runs_name_its_job_and_step(tmp_path):
    import io
    import logging

    from aetherflow.core.logs import configure_logging, log_context
    from aetherflow.core.redaction import Scrubber

    stream = io.StringIO()
    configure_logging(Scrubber(), fmt="json", stream=stream)
    try:
        with log_context(job_id="extract", step_id="dump"):
            logging.getLogger("aetherflow.connectors.sftp").warning("driver.said")
        logging.getLogger("aetherflow.connectors.sftp").warning("outside")
    finally:
        logging.getLogger("aetherflow").handlers.clear()
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (inside["job_id"], inside["step_id"]) == ("extract", "dump")
    assert (outside["job_id"], outside["step_id"]) == (None, None)


SECRET = "S3cr3t-Pa55-parallel"
LEAKY = """
version: 1
flow:
  id: leaky
  max_parallel: 2
resources:
  api:
    kind: rest
    driver: httpx
    config: {base_url: "http://127.0.0.1:9", token: "{{ env.API_TOKEN }}"}
jobs:
  - id: slow
    steps:
      - id: nap
        type: external.process
        timeout_seconds: 0.5
        inputs: {command: "echo token=$API_TOKEN >&2; sleep 30 # $API_TOKEN", shell: true}
  - id: other
    steps:
      - {id: fail, type: test.fail, inputs: {message: "refused $API_TOKEN"}}
"""


def test_timeouts_and_the_timeline_never_show_a_secret(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", LEAKY.replace("$API_TOKEN\"}}", SECRET + "\"}}"))
    env = {**cli_env, "API_TOKEN": SECRET}
    result = run_cli("run", flow, "--json", "--log-format", "json", env=env)
    assert result.exit_code == 1, result.output
    assert "timeout_seconds: 0.5" in result.stdout
    assert SECRET not in result.output
    for args in (("--timeline", "--json"), ("--timeline",), ("--json",)):
        shown = run_cli("runs", "show", result.json["run_id"], *args, env=env)
        assert shown.exit_code == 0 and SECRET not in shown.output
    for path in (tmp_path / "state").glob("state.db*"):
        assert SECRET.encode() not in path.read_bytes()
