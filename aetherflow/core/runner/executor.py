"""Where jobs execute: the :class:`JobExecutor` protocol and the local thread pool.

The scheduler (:mod:`.schedule`) decides *which* job runs *when*; an executor only runs
what it is given. A unit of work is :class:`JobWork`: run job ``job_id`` of the run's
prepared flow, at ``position`` in the plan, with the jobs finished before it
(``finished``, their statuses and outputs). That is all a job needs besides the run's
shared :class:`~.session.RunSession`, so an executor may run it in a thread here or in
another process that rebuilt the session from the same prepared flow.

An executor reports each finished job by calling the ``done`` callback given to
:meth:`JobExecutor.submit`, from any thread, exactly once, with the job's record or
with the exception that escaped it (a bug, a state store that cannot be written).
Cancellation reaches running jobs through the run's cancel token; :meth:`cancel` is
for executors whose jobs cannot see that token (other processes).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from .job import JobRun
from .records import JobRecord
from .session import RunSession


@dataclass(frozen=True)
class JobWork:
    """One job to execute: which one, where in the plan, and what it may read."""

    job_id: str
    position: int
    finished: Mapping[str, JobRecord]


#: ``done(work, outcome)``: the job's record, or the exception that escaped it.
Done = Callable[[JobWork, "JobRecord | BaseException"], None]


class JobExecutor(Protocol):
    """Runs jobs given by the scheduler, at most as many at once as it was told."""

    def submit(self, work: JobWork, done: Done) -> None:
        """Start ``work`` now (the scheduler never submits more than ``max_parallel``)."""

    def cancel(self, reason: str) -> None:
        """Ask every running job to stop (they finish as FAILED, ``interrupted``)."""

    def running(self) -> list[JobRun]:
        """The jobs started and not yet reported, for a run that stops waiting for them."""

    def close(self, wait: bool = True) -> None:
        """No more work; with ``wait``, return once every running job was reported."""


def run_job(session: RunSession, work: JobWork) -> JobRun:
    """The :class:`JobRun` of ``work`` (not started)."""
    job = next(job for job in session.spec.jobs if job.id == work.job_id)
    return JobRun(session, job, work.position, work.finished)


class ThreadExecutor:
    """The local executor: each job in a thread of this process.

    Threads are started per job (a run has few jobs, and a thread costs little next to
    a job) and are daemons: a run that stops waiting for a job that ignores its
    cancellation can still exit.
    """

    def __init__(self, session: RunSession):
        self.session = session
        self._running: dict[str, JobRun] = {}
        self._threads: list[threading.Thread] = []
        self._guard = threading.Lock()

    def submit(self, work: JobWork, done: Done) -> None:
        job_run = run_job(self.session, work)
        with self._guard:
            self._running[work.job_id] = job_run

        def execute() -> None:
            outcome: JobRecord | BaseException
            try:
                outcome = job_run.run()
            except BaseException as exc:  # noqa: BLE001 - handed to the scheduler, which re-raises it
                outcome = exc
            with self._guard:
                self._running.pop(work.job_id, None)
            done(work, outcome)

        thread = threading.Thread(target=execute, name=f"aetherflow-job-{work.job_id}", daemon=True)
        with self._guard:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def cancel(self, reason: str) -> None:
        self.session.cancel.cancel(reason)

    def running(self) -> list[JobRun]:
        with self._guard:
            return list(self._running.values())

    def close(self, wait: bool = True) -> None:
        if not wait:
            return
        with self._guard:
            threads = list(self._threads)
        for thread in threads:
            while thread.is_alive():
                thread.join(0.1)  # timed: the main thread keeps handling signals meanwhile
