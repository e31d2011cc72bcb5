"""The split between what a run shares (:class:`RunSession`) and what belongs to one
job (:class:`JobRun`): a job sees the jobs finished when it started, keeps its own
template roots, and jobs of one session can run in separate threads."""

from __future__ import annotations

import threading

from aetherflow.core.cancel import CancelToken
from aetherflow.core.connectors.manager import ConnectorManager
from aetherflow.core.context import no_progress
from aetherflow.core.locks import LockManager
from aetherflow.core.logs import get_logger
from aetherflow.core.prepare import Invocation, prepare_flow
from aetherflow.core.runner.job import JobRun
from aetherflow.core.runner.records import JobRecord
from aetherflow.core.runner.session import RunSession
from aetherflow.core.state import open_state_store
from aetherflow.core.state.rows import RunRow
from aetherflow.core.status import Status
from tests.helpers import base_env, write_flow

FLOW = """
version: 1
flow: {id: session}
jobs:
  - id: a
    steps:
      - {id: s1, type: check_items, inputs: {items: [1, 2]}, outputs: {n: "{{ result.count }}"}}
      - {id: s2, type: check_items, inputs: {items: "{{ steps.s1.outputs.count }},x,y"}, outputs: {m: "{{ result.count }}"}}
  - id: b
    steps:
      - {id: s1, type: check_items, inputs: {items: [1]}, outputs: {n: "{{ result.count }}"}}
      - {id: s2, type: check_items, inputs: {items: "{{ steps.s1.outputs.count }},z"}, outputs: {m: "{{ result.count }}"}}
  - id: c
    depends_on: [a]
    steps:
      - {id: s1, type: check_items, inputs: {items: "{{ jobs.a.outputs.n }},q"}}
"""


def make_session(tmp_path) -> RunSession:
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    prepared = prepare_flow(Invocation(flow_path=str(flow), base_env=base_env(tmp_path)))
    store = open_state_store("sqlite", path=str(tmp_path / "state.db"))
    store.create_run(RunRow(run_id="r", flow_id="session", status=Status.RUNNING, started_at=1.0))
    log = get_logger(flow_id="session", run_id="r")
    return RunSession(
        prepared=prepared,
        run_id="r",
        store=store,
        previous={},
        work_root=tmp_path / "work",
        connectors=ConnectorManager({}),
        locks=LockManager(store, "r", log),
        log=log,
        cancel=CancelToken(),
        progress_factory=no_progress,
    )


def test_a_job_sees_the_jobs_finished_when_it_started(tmp_path):
    session = make_session(tmp_path)
    jobs = {job.id: job for job in session.spec.jobs}
    session.publish(JobRecord("a", Status.SUCCESS, outputs={"n": 2}))
    c = JobRun(session, jobs["c"], 2)
    session.publish(JobRecord("b", Status.FAILED))
    assert set(c.jobs_view) == set(c.finished) == {"a"}
    assert set(session.jobs_view()) == {"a", "b"}
    record = c.run()
    assert (record.status, record.steps[0].outputs["count"]) == (Status.SUCCESS, 2)
    session.store.close()


def test_jobs_of_one_session_run_in_threads_each_with_its_own_steps_and_outputs(tmp_path):
    session = make_session(tmp_path)
    a, b = (JobRun(session, job, position) for position, job in enumerate(session.spec.jobs[:2]))
    assert a.steps_view is not b.steps_view and a.outputs is not b.outputs
    barrier = threading.Barrier(2)
    records: dict[str, JobRecord] = {}

    def run(job: JobRun) -> None:
        barrier.wait()
        records[job.job.id] = job.run()

    threads = [threading.Thread(target=run, args=(job,)) for job in (a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert records["a"].outputs == {"n": 2, "m": 3} and records["b"].outputs == {"n": 1, "m": 2}
    assert {row.job_id: row.status for row in session.store.job_runs("r")} == {"a": Status.SUCCESS, "b": Status.SUCCESS}
    assert len(session.store.step_runs("r")) == 4
    session.store.close()
