"""Which job runs when: :class:`Scheduler`, the one place that decides it.

The jobs of the plan wait until their dependencies are finished. A job whose
dependencies are all finished is *ready*; ready jobs start in plan order (topological,
the flow file's order breaking ties), as long as fewer than ``max_parallel`` jobs run.
A ready job's gate (:func:`~.job.gate`: a failed, blocked or skipped dependency, or a
false ``when``) is evaluated when it becomes ready, here, with the jobs finished then:
a gated job is recorded at once and never reaches the executor. With ``max_parallel``
1 this is exactly one job after another in plan order.

The run's cancel token stops the scheduling: no job starts after it is cancelled, and
the scheduler waits for the running ones, which stop their steps and report
themselves FAILED (``interrupted``). :meth:`Scheduler.abandon` (a second Ctrl-C) stops
waiting: jobs still running are recorded FAILED at once.

Everything here happens on the thread that calls :meth:`Scheduler.run`; executors
report through a queue that is safe to use from any thread.
"""

from __future__ import annotations

import heapq
import queue
from collections.abc import Callable

from ..errors import AetherflowError, UserError
from ..spec.models import JobSpec
from ..status import Status
from .executor import JobExecutor, JobWork
from .job import INTERRUPTED, JobRun, gate
from .records import JobRecord
from .session import RunSession

_WAKE = object()  # the run was cancelled: look again
_ABANDON = object()  # stop waiting for running jobs
_POLL_SECONDS = 0.1  # how long the main thread may go without looking at pending signals


class Scheduler:
    def __init__(self, session: RunSession, plan: list[JobSpec], executor: JobExecutor, max_parallel: int):
        self.session = session
        self.plan = plan
        self.executor = executor
        self.max_parallel = max(1, max_parallel)
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        position = {job.id: i for i, job in enumerate(plan)}
        self._waiting = {job.id: sum(1 for dep in job.depends_on if dep in position) for job in plan}
        self._dependents: dict[str, list[int]] = {job.id: [] for job in plan}
        for i, job in enumerate(plan):
            for dep in job.depends_on:
                if dep in self._dependents:
                    self._dependents[dep].append(i)
        self._ready = [i for i, job in enumerate(plan) if self._waiting[job.id] == 0]
        heapq.heapify(self._ready)
        self._records: dict[int, JobRecord] = {}
        self._running: set[int] = set()

    def abandon(self) -> None:
        """Stop waiting for running jobs (safe from any thread, and from a signal relay)."""
        self._events.put(_ABANDON)

    def run(self, on_record: Callable[[JobRecord], None] | None = None) -> list[JobRecord]:
        """Run the plan; the records of the jobs that started, in plan order."""
        failure: BaseException | None = None
        with self.session.cancel.on_cancel(lambda: self._events.put(_WAKE)):
            while True:
                if failure is None and not self.session.cancel.cancelled:
                    self._start_ready()
                if not self._running:
                    break
                try:
                    # Never block for good: a signal delivered to another thread runs its
                    # Python handler only once this (the main) thread runs code again.
                    event = self._events.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    continue
                if event is _ABANDON:
                    self._abandon_running()
                    break
                if event is _WAKE:
                    continue
                work, outcome = event
                self._running.discard(work.position)
                if isinstance(outcome, BaseException):
                    # A bug or a state store that cannot be written: stop the run, keep the first.
                    failure = failure or outcome
                    self.session.cancel.cancel(f"job {work.job_id!r} crashed")
                    continue
                self._finish(work.position, outcome)
        self.executor.close(wait=failure is not None)
        if failure is not None:
            raise failure
        return [self._records[i] for i in sorted(self._records)]

    # -- steps of the loop --------------------------------------------------------------

    def _start_ready(self) -> None:
        while self._ready and len(self._running) < self.max_parallel:
            position = heapq.heappop(self._ready)
            job = self.plan[position]
            finished = self.session.finished_jobs()
            try:
                status, reason = gate(self.session, job, finished)
                user_error = False
            except AetherflowError as exc:
                status, reason = Status.FAILED, self.session.scrubber.scrub(exc.describe())
                user_error = isinstance(exc, UserError)
            if status is not None:
                job_run = JobRun(self.session, job, position, finished)
                job_run.record.user_error = user_error
                self._finish(position, job_run.gated(status, reason))
                continue
            self._running.add(position)
            self.executor.submit(JobWork(job.id, position, finished), self._report)

    def _report(self, work: JobWork, outcome: JobRecord | BaseException) -> None:
        self._events.put((work, outcome))

    def _finish(self, position: int, record: JobRecord) -> None:
        self._records[position] = record
        self.session.publish(record)
        for dependent in self._dependents[record.id]:
            job_id = self.plan[dependent].id
            self._waiting[job_id] -= 1
            if self._waiting[job_id] == 0:
                heapq.heappush(self._ready, dependent)

    def _abandon_running(self) -> None:
        for job_run in self.executor.running():
            self._records[job_run.position] = job_run.abandon(INTERRUPTED)
