"""The statements the SQL backends share: :class:`SQLStateStore`.

SQLite and PostgreSQL speak the same SQL for runs, job runs, step runs and for listing
and releasing locks; they differ in table names (PostgreSQL's carry an ``aetherflow_``
prefix), in the parameter marker (``?`` or ``%s``), in how a JSON column is written,
and in the clock that decides lock expiry (which each backend keeps to itself). The
statements here are written once, with ``{table}`` names and ``?`` markers, and
translated to the backend's dialect the first time they are used. Inserts are built
from the row's fields (:mod:`.rows`).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from functools import cache
from typing import Any, ClassVar

from ..status import DONE_OK, Status
from .base import LockOwner, StateStore
from .rows import JobRunRow, LockInfo, PersistedRow, Row, RunRow, StepRunRow, dumps

_TABLES = tuple(row.TABLE for row in (RunRow, JobRunRow, StepRunRow, LockInfo, PersistedRow))
_DONE_OK = tuple(sorted(str(status) for status in DONE_OK))


def insert_sql(row_type: type[Row], table: str, *, marker: str, json_marker: str | None = None, upsert: bool = False) -> str:
    """``INSERT`` of every column of ``row_type``; with ``upsert``, a row whose key exists
    is updated in place. ``json_marker`` is the parameter marker of a JSON column."""
    names = row_type.columns()
    markers = [json_marker or marker if name in row_type.JSON else marker for name in names]
    sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(markers)})"
    if upsert:
        updates = ", ".join(f"{name} = excluded.{name}" for name in names if name not in row_type.KEY)
        sql += f" ON CONFLICT ({', '.join(row_type.KEY)}) DO UPDATE SET {updates}"
    return sql


@cache
def _translate(sql: str, prefix: str, marker: str) -> str:
    return sql.format(**{name: prefix + name for name in _TABLES}).replace("?", marker)


@cache
def _insert(row_type: type[Row], prefix: str, marker: str, json_marker: str, upsert: bool) -> str:
    return insert_sql(row_type, prefix + row_type.TABLE, marker=marker, json_marker=json_marker, upsert=upsert)


class SQLStateStore(StateStore):
    """A state store on a SQL database: everything but connecting, migrating and
    taking locks. A backend names its dialect and runs statements."""

    TABLE_PREFIX: ClassVar[str] = ""
    MARKER: ClassVar[str] = "?"
    JSON_MARKER: ClassVar[str] = "?"

    @abstractmethod
    def _execute(self, sql: str, params: tuple = ()) -> Any:
        """Run one statement (already in this dialect); returns its cursor."""

    @abstractmethod
    def _query(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        """The rows of one query (already in this dialect), as mappings."""

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[None]:
        """The statements run inside the block commit together, or not at all."""

    def _sql(self, sql: str) -> str:
        return _translate(sql, self.TABLE_PREFIX, self.MARKER)

    def _rows(self, row_type: type[Row], sql: str, params: tuple = ()) -> list[Any]:
        return [row_type.from_mapping(data) for data in self._query(self._sql(sql), params)]

    def _write(self, row: Row, *, upsert: bool) -> None:
        self._execute(_insert(type(row), self.TABLE_PREFIX, self.MARKER, self.JSON_MARKER, upsert), row.values())

    # -- runs -----------------------------------------------------------------------------

    def create_run(self, run: RunRow) -> None:
        self._write(run, upsert=False)

    def reopen_run(self, run_id: str, *, fingerprint: str | None, host: str | None, pid: int | None) -> None:
        self._execute(
            self._sql(
                "UPDATE {runs} SET status = ?, ended_at = NULL, invocations = invocations + 1, "
                "fingerprint = COALESCE(?, fingerprint), host = COALESCE(?, host), pid = COALESCE(?, pid) WHERE run_id = ?"
            ),
            (Status.RUNNING, fingerprint, host, pid, run_id),
        )

    def finish_run(self, run_id: str, status: str, ended_at: float, duration_ms: int, *, persist: Iterable[PersistedRow] = ()) -> None:
        persist = list(persist)
        statement = self._sql("UPDATE {runs} SET status = ?, ended_at = ?, duration_ms = ? WHERE run_id = ?")
        if not persist:
            self._execute(statement, (status, ended_at, duration_ms, run_id))
            return
        with self._transaction():
            self._execute(statement, (status, ended_at, duration_ms, run_id))
            for row in persist:
                self._write(row, upsert=True)

    def set_run_vars(self, run_id: str, variables: Mapping[str, Any]) -> None:
        self._execute(self._sql(f"UPDATE {{runs}} SET vars = {self.JSON_MARKER} WHERE run_id = ?"), (dumps(dict(variables)), run_id))

    def get_run(self, run_id: str) -> RunRow | None:
        rows = self._rows(RunRow, "SELECT * FROM {runs} WHERE run_id = ?", (run_id,))
        return rows[0] if rows else None

    def list_runs(self, flow_id: str | None = None, limit: int = 50) -> list[RunRow]:
        if flow_id:
            return self._rows(RunRow, "SELECT * FROM {runs} WHERE flow_id = ? ORDER BY started_at DESC LIMIT ?", (flow_id, limit))
        return self._rows(RunRow, "SELECT * FROM {runs} ORDER BY started_at DESC LIMIT ?", (limit,))

    def latest_unfinished_run(self, flow_id: str) -> str | None:
        rows = self._query(
            self._sql(
                f"SELECT run_id FROM {{runs}} WHERE flow_id = ? AND status NOT IN ({', '.join('?' * len(_DONE_OK))}) "
                "ORDER BY started_at DESC LIMIT 1"
            ),
            (flow_id, *_DONE_OK),
        )
        return rows[0]["run_id"] if rows else None

    # -- jobs and steps -------------------------------------------------------------------

    def record_job(self, job: JobRunRow) -> None:
        self._write(job, upsert=True)

    def record_step(self, step: StepRunRow) -> None:
        self._write(step, upsert=True)

    def job_runs(self, run_id: str) -> list[JobRunRow]:
        return self._rows(JobRunRow, "SELECT * FROM {job_runs} WHERE run_id = ? ORDER BY position, started_at", (run_id,))

    def step_runs(self, run_id: str) -> list[StepRunRow]:
        return self._rows(StepRunRow, "SELECT * FROM {step_runs} WHERE run_id = ? ORDER BY job_id, position", (run_id,))

    def latest_successful_jobs(self, flow_id: str, job_ids: Iterable[str]) -> dict[str, JobRunRow]:
        wanted = sorted(set(job_ids))
        if not wanted:
            return {}
        rows = self._rows(
            JobRunRow,
            f"SELECT j.* FROM {{job_runs}} j JOIN {{runs}} r ON r.run_id = j.run_id "
            f"WHERE r.flow_id = ? AND r.status = ? AND j.status = ? AND j.job_id IN ({', '.join('?' * len(wanted))}) "
            "ORDER BY r.started_at DESC",
            (flow_id, Status.SUCCESS, Status.SUCCESS, *wanted),
        )
        latest: dict[str, JobRunRow] = {}
        for row in rows:
            latest.setdefault(row.job_id, row)
        return latest

    # -- persisted values -----------------------------------------------------------------

    def persisted(self, flow_id: str) -> list[PersistedRow]:
        return self._rows(PersistedRow, "SELECT * FROM {persisted} WHERE flow_id = ? ORDER BY name", (flow_id,))

    def set_persisted(self, row: PersistedRow) -> None:
        self._write(row, upsert=True)

    def delete_persisted(self, flow_id: str, name: str) -> bool:
        cursor = self._execute(self._sql("DELETE FROM {persisted} WHERE flow_id = ? AND name = ?"), (flow_id, name))
        return cursor.rowcount == 1

    # -- locks (taking and renewing them is the backend's: it decides whose clock counts) --

    def release_lock(self, key: str, owner: LockOwner | None = None) -> bool:
        if owner is None:
            cursor = self._execute(self._sql("DELETE FROM {locks} WHERE key = ?"), (key,))
        else:
            cursor = self._execute(self._sql("DELETE FROM {locks} WHERE key = ? AND owner = ?"), (key, owner.encode()))
        return cursor.rowcount == 1

    def list_locks(self) -> list[LockInfo]:
        return self._rows(LockInfo, "SELECT key, owner, acquired_at, expires_at FROM {locks} ORDER BY key")
