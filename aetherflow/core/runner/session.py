"""One run's shared state: :class:`RunSession`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cancel import CancelToken
from ..connectors.manager import ConnectorManager
from ..env import EnvSnapshot
from ..errors import Location
from ..locks import LockManager
from ..logs import ContextLogger
from ..prepare import PreparedFlow
from ..redaction import Scrubber
from ..spec.models import FlowSpec
from ..state.base import StateStore
from ..state.rows import StepRunRow
from ..templating import EnvView, NamedMapping, named
from ..variables import RunVariables
from .persist import PersistedValues
from .records import JobRecord


@dataclass
class RunSession:
    """What every job of one run shares, built once the run is recorded in the state.

    All of it may be used from several threads at once: the prepared flow, the previous
    attempts, the variables, the stored values and the paths are read-only; the store,
    the connector manager, the lock manager and the persisted values guard themselves; the finished jobs are published under :attr:`_guard`, and
    a job reads a snapshot of them taken when it starts (:meth:`finished_jobs`,
    :meth:`jobs_view`). Whatever belongs to one job lives on its
    :class:`~aetherflow.core.runner.job.JobRun`.
    """

    prepared: PreparedFlow
    run_id: str
    store: StateStore
    #: SUCCESS/SKIPPED steps of earlier invocations of this run, by (job id, step id): not run again
    previous: Mapping[tuple[str, str], StepRunRow]
    work_root: Path
    connectors: ConnectorManager
    locks: LockManager
    log: ContextLogger
    #: the run's cancel token, cancelled on SIGINT/SIGTERM: each step attempt runs under
    #: a child of it (its cancel scope), so steps, lock waits and retry delays stop early
    cancel: CancelToken
    progress_factory: Callable
    #: the run's variables (the ``vars`` root)
    variables: RunVariables = field(default_factory=RunVariables)
    #: the values earlier runs persisted, as they were when this invocation started (the ``store`` root)
    store_values: Mapping[str, Any] = field(default_factory=dict)
    #: what this run's steps ask to persist, written when the run succeeds
    persisted: PersistedValues = field(default_factory=PersistedValues)
    _finished: dict[str, JobRecord] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    @property
    def spec(self) -> FlowSpec:
        return self.prepared.document.spec

    @property
    def flow_id(self) -> str:
        return self.spec.flow.id

    @property
    def env(self) -> EnvSnapshot:
        return self.prepared.env

    @property
    def scrubber(self) -> Scrubber:
        return self.prepared.scrubber

    def template_roots(self) -> dict[str, Any]:
        """The roots every template of a job sees, whatever it is (``when``, inputs, outputs)."""
        return {
            "env": EnvView(self.env),
            "vars": named("vars", self.variables.values),
            "store": named("store", self.store_values),
            "run_id": self.run_id,
            "flow_id": self.flow_id,
        }

    def locate(self, *path: str | int) -> Location:
        """Where a node of the flow file is (``"jobs", 2, "when"``), for error messages."""
        return self.prepared.document.locate(*path)

    def workspace(self, job_id: str) -> Path:
        return self.work_root / self.flow_id / job_id / self.run_id

    # -- finished jobs --------------------------------------------------------------------

    def publish(self, record: JobRecord) -> None:
        """A job is over: later gates and templates see its status and outputs."""
        with self._guard:
            self._finished[record.id] = record

    def finished_jobs(self) -> dict[str, JobRecord]:
        with self._guard:
            return dict(self._finished)

    def jobs_view(self) -> NamedMapping:
        """The ``jobs`` template root: the jobs finished so far."""
        return jobs_root(self.finished_jobs())


def jobs_root(finished: Mapping[str, JobRecord]) -> NamedMapping:
    """The ``jobs`` template root of finished jobs: each one's status and outputs."""
    return NamedMapping(
        "jobs",
        {
            job_id: named(f"jobs.{job_id}", {"status": r.status, "outputs": r.outputs if r.values is None else r.values})
            for job_id, r in finished.items()
        },
    )
