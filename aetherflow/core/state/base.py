"""The state store interface: runs, job runs, step runs, locks and persisted values.

Backends (SQLite by default, PostgreSQL for several hosts sharing one state) implement
:class:`StateStore` and take and return the typed rows of :mod:`.rows`. Everything
written here has passed the scrubber first: the store never sees a secret.

Schema changes are migrations: each backend keeps ``MIGRATIONS``, a mapping from
version to the statements that reach it, and opening a store applies the missing ones
in one transaction. To add a column: give the row its field (with a default, so rows
of older runs still load), and add the next version to both backends with its
``ALTER TABLE ... ADD COLUMN``; ``tests/state/test_schema.py`` checks that both
backends reach the same version and have a column for every field.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .rows import JobRunRow, LockInfo, PersistedRow, RunRow, StepRunRow


@dataclass(frozen=True)
class LockOwner:
    run_id: str
    host: str
    pid: int

    def encode(self) -> str:
        return f"{self.run_id}@{self.host}:{self.pid}"

    @classmethod
    def decode(cls, text: str) -> LockOwner | None:
        """The owner encoded by :meth:`encode`, or None for a foreign value."""
        run_id, at, rest = text.rpartition("@")
        host, colon, pid = rest.rpartition(":")
        if not (at and colon and pid.isdigit()):
            return None
        return cls(run_id, host, int(pid))


class StateStore(ABC):
    """A state backend. Times are epoch seconds (float). Safe to share between threads."""

    #: version -> the statements that migrate the previous version to it
    MIGRATIONS: dict[int, tuple[str, ...]]

    @classmethod
    def schema_version(cls) -> int:
        """The version this program writes (the last migration)."""
        return max(cls.MIGRATIONS)

    @abstractmethod
    def close(self) -> None: ...

    def now(self) -> float:
        """The clock lock expiry is judged by (the database server's, for a shared store)."""
        return time.time()

    # -- runs -----------------------------------------------------------------------------

    @abstractmethod
    def create_run(self, run: RunRow) -> None:
        """Insert a new run; an existing run id is an error."""

    @abstractmethod
    def reopen_run(self, run_id: str, *, fingerprint: str | None, host: str | None, pid: int | None) -> None:
        """Mark a resumed run RUNNING again, counting the invocation and its runner."""

    @abstractmethod
    def finish_run(self, run_id: str, status: str, ended_at: float, duration_ms: int, *, persist: Iterable[PersistedRow] = ()) -> None:
        """Record the run's final status; ``persist`` is written in the same transaction."""

    @abstractmethod
    def set_run_vars(self, run_id: str, variables: Mapping[str, Any]) -> None:
        """Replace the variables stored with a run (a resumed run may add new ones)."""

    @abstractmethod
    def get_run(self, run_id: str) -> RunRow | None: ...

    @abstractmethod
    def list_runs(self, flow_id: str | None = None, limit: int = 50) -> list[RunRow]:
        """Newest first."""

    @abstractmethod
    def latest_unfinished_run(self, flow_id: str) -> str | None:
        """The newest run of ``flow_id`` that did not end SUCCESS or SKIPPED."""

    # -- jobs and steps -------------------------------------------------------------------

    @abstractmethod
    def record_job(self, job: JobRunRow) -> None:
        """Insert or replace the job run (its key: run id, job id)."""

    @abstractmethod
    def record_step(self, step: StepRunRow) -> None:
        """Insert or replace the step run (its key: run id, job id, step id)."""

    @abstractmethod
    def job_runs(self, run_id: str) -> list[JobRunRow]:
        """In plan order."""

    @abstractmethod
    def step_runs(self, run_id: str) -> list[StepRunRow]:
        """By job id, then in step order."""

    @abstractmethod
    def latest_successful_jobs(self, flow_id: str, job_ids: Iterable[str]) -> dict[str, JobRunRow]:
        """For each of ``job_ids``, its SUCCESS record in the newest SUCCESS run of the flow
        that has one (jobs without any are left out)."""

    # -- persisted values -----------------------------------------------------------------

    @abstractmethod
    def persisted(self, flow_id: str) -> list[PersistedRow]:
        """The values kept for ``flow_id``, by name."""

    @abstractmethod
    def set_persisted(self, row: PersistedRow) -> None:
        """Insert or replace one value (its key: flow id, name)."""

    @abstractmethod
    def delete_persisted(self, flow_id: str, name: str) -> bool:
        """Remove one value; False when there was none."""

    # -- locks ----------------------------------------------------------------------------

    @abstractmethod
    def acquire_lock(self, key: str, owner: LockOwner, ttl_seconds: float) -> bool: ...

    @abstractmethod
    def renew_lock(self, key: str, owner: LockOwner, ttl_seconds: float) -> bool: ...

    @abstractmethod
    def release_lock(self, key: str, owner: LockOwner | None = None) -> bool:
        """Release ``key`` if ``owner`` holds it (whoever holds it, without an owner)."""

    @abstractmethod
    def list_locks(self) -> list[LockInfo]: ...
