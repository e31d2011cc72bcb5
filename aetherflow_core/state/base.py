"""The state store interface: runs, job runs, step runs and locks.

Backends (SQLite by default, PostgreSQL for several hosts sharing one state) implement
:class:`StateStore`. Everything written here has passed the scrubber first: the store
never sees a secret.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 1


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


@dataclass
class LockInfo:
    key: str
    owner: str
    acquired_at: float
    expires_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "owner": self.owner, "acquired_at": self.acquired_at, "expires_at": self.expires_at}


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def loads(text: str | None) -> Any:
    return json.loads(text) if text else None


class StateStore:
    """Interface of a state backend. Times are epoch seconds (float)."""

    def close(self) -> None:
        raise NotImplementedError

    def now(self) -> float:
        """The clock lock expiry is judged by (the database server's, for a shared store)."""
        return time.time()

    # runs
    def create_run(self, run: dict[str, Any]) -> None:
        raise NotImplementedError

    def finish_run(self, run_id: str, status: str, ended_at: float, duration_ms: int) -> None:
        raise NotImplementedError

    def reopen_run(self, run_id: str, started_at: float, **fields: Any) -> None:
        raise NotImplementedError

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def list_runs(self, flow_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        raise NotImplementedError

    def latest_unfinished_run(self, flow_id: str) -> str | None:
        raise NotImplementedError

    # jobs and steps
    def record_job(self, run_id: str, job: dict[str, Any]) -> None:
        raise NotImplementedError

    def record_step(self, run_id: str, job_id: str, step: dict[str, Any]) -> None:
        raise NotImplementedError

    def job_runs(self, run_id: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def step_runs(self, run_id: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    # locks
    def acquire_lock(self, key: str, owner: LockOwner, ttl_seconds: float) -> bool:
        raise NotImplementedError

    def renew_lock(self, key: str, owner: LockOwner, ttl_seconds: float) -> bool:
        raise NotImplementedError

    def release_lock(self, key: str, owner: LockOwner | None = None) -> bool:
        raise NotImplementedError

    def list_locks(self) -> list[LockInfo]:
        raise NotImplementedError
