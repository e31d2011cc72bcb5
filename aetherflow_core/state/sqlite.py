"""SQLite state backend: one file, WAL journal, one connection per run.

Each write is one committed statement (``synchronous=NORMAL`` in WAL mode keeps that
around a tenth of a millisecond), so a crash loses at most the write in flight and the
file stays consistent. Locks are taken with a single conditional upsert, which is
atomic across processes.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from ..errors import StateError
from .base import SCHEMA_VERSION, LockInfo, LockOwner, StateStore, dumps, loads

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY,
        flow_id TEXT NOT NULL,
        status TEXT NOT NULL,
        profile TEXT,
        flow_path TEXT,
        flow_sha256 TEXT,
        fingerprint TEXT,
        host TEXT,
        pid INTEGER,
        started_at REAL NOT NULL,
        ended_at REAL,
        duration_ms INTEGER,
        invocations INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX IF NOT EXISTS runs_flow ON runs (flow_id, started_at);
    CREATE TABLE IF NOT EXISTS job_runs (
        run_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at REAL,
        ended_at REAL,
        duration_ms INTEGER,
        outputs TEXT,
        error TEXT,
        position INTEGER,
        PRIMARY KEY (run_id, job_id)
    );
    CREATE TABLE IF NOT EXISTS step_runs (
        run_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        step_id TEXT NOT NULL,
        step_type TEXT,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        started_at REAL,
        ended_at REAL,
        duration_ms INTEGER,
        outputs TEXT,
        error TEXT,
        position INTEGER,
        PRIMARY KEY (run_id, job_id, step_id)
    );
    CREATE TABLE IF NOT EXISTS locks (
        key TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        acquired_at REAL NOT NULL,
        expires_at REAL NOT NULL
    );
    """,
}


class SQLiteStateStore(StateStore):
    def __init__(self, path: str | Path):
        self.path = str(path)
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=30000")
            self._migrate()
        except sqlite3.Error as exc:
            raise StateError(f"cannot open state database {self.path!r}: {exc}", hint="check AETHERFLOW_STATE_ROOT / flow.state.path") from None
        self._lock = threading.Lock()

    def _migrate(self) -> None:
        conn = self._conn
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        current = int(row[0]) if row else 0
        if current > SCHEMA_VERSION:
            raise StateError(
                f"state database {self.path!r} has schema version {current}, newer than this aetherflow ({SCHEMA_VERSION})",
                hint="upgrade aetherflow or point flow.state.path elsewhere",
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                again = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                if again and int(again[0]) >= version:
                    conn.execute("COMMIT")
                    continue
                for statement in _MIGRATIONS[version].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (str(version),),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _exec(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        try:
            with self._lock:
                return self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise StateError(f"state database {self.path!r}: {exc}") from None

    def _rows(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        with self._lock:
            try:
                cursor = self._conn.execute(sql, params)
                names = [d[0] for d in cursor.description]
                return [dict(zip(names, row)) for row in cursor.fetchall()]
            except sqlite3.Error as exc:
                raise StateError(f"state database {self.path!r}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- runs ---------------------------------------------------------------------------

    def create_run(self, run: dict[str, Any]) -> None:
        self._exec(
            "INSERT INTO runs (run_id, flow_id, status, profile, flow_path, flow_sha256, fingerprint, host, pid, started_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run["run_id"], run["flow_id"], run["status"], run.get("profile"), run.get("flow_path"),
                run.get("flow_sha256"), run.get("fingerprint"), run.get("host"), run.get("pid"), run["started_at"],
            ),
        )

    def reopen_run(self, run_id: str, started_at: float, **fields: Any) -> None:
        self._exec(
            "UPDATE runs SET status = 'RUNNING', ended_at = NULL, invocations = invocations + 1, "
            "fingerprint = COALESCE(?, fingerprint), host = COALESCE(?, host), pid = COALESCE(?, pid) WHERE run_id = ?",
            (fields.get("fingerprint"), fields.get("host"), fields.get("pid"), run_id),
        )

    def finish_run(self, run_id: str, status: str, ended_at: float, duration_ms: int) -> None:
        self._exec("UPDATE runs SET status = ?, ended_at = ?, duration_ms = ? WHERE run_id = ?", (status, ended_at, duration_ms, run_id))

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        return rows[0] if rows else None

    def list_runs(self, flow_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        if flow_id:
            return self._rows("SELECT * FROM runs WHERE flow_id = ? ORDER BY started_at DESC LIMIT ?", (flow_id, limit))
        return self._rows("SELECT * FROM runs ORDER BY started_at DESC LIMIT ?", (limit,))

    def latest_unfinished_run(self, flow_id: str) -> str | None:
        rows = self._rows(
            "SELECT run_id FROM runs WHERE flow_id = ? AND status NOT IN ('SUCCESS', 'SKIPPED') ORDER BY started_at DESC LIMIT 1",
            (flow_id,),
        )
        return rows[0]["run_id"] if rows else None

    # -- jobs and steps -----------------------------------------------------------------

    def record_job(self, run_id: str, job: dict[str, Any]) -> None:
        self._exec(
            "INSERT INTO job_runs (run_id, job_id, status, started_at, ended_at, duration_ms, outputs, error, position) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, job_id) DO UPDATE SET status = excluded.status, "
            "started_at = excluded.started_at, ended_at = excluded.ended_at, duration_ms = excluded.duration_ms, "
            "outputs = excluded.outputs, error = excluded.error, position = excluded.position",
            (
                run_id, job["id"], job["status"], job.get("started_at"), job.get("ended_at"), job.get("duration_ms"),
                dumps(job.get("outputs") or {}), job.get("error"), job.get("position"),
            ),
        )

    def record_step(self, run_id: str, job_id: str, step: dict[str, Any]) -> None:
        self._exec(
            "INSERT INTO step_runs (run_id, job_id, step_id, step_type, status, attempts, started_at, ended_at, duration_ms, outputs, error, position) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, job_id, step_id) DO UPDATE SET "
            "step_type = excluded.step_type, status = excluded.status, attempts = excluded.attempts, started_at = excluded.started_at, "
            "ended_at = excluded.ended_at, duration_ms = excluded.duration_ms, outputs = excluded.outputs, error = excluded.error, "
            "position = excluded.position",
            (
                run_id, job_id, step["id"], step.get("type"), step["status"], step.get("attempts", 0), step.get("started_at"),
                step.get("ended_at"), step.get("duration_ms"), dumps(step.get("outputs") or {}), step.get("error"), step.get("position"),
            ),
        )

    def job_runs(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._rows("SELECT * FROM job_runs WHERE run_id = ? ORDER BY position, started_at", (run_id,))
        for row in rows:
            row["outputs"] = loads(row["outputs"]) or {}
        return rows

    def step_runs(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._rows("SELECT * FROM step_runs WHERE run_id = ? ORDER BY job_id, position", (run_id,))
        for row in rows:
            row["outputs"] = loads(row["outputs"]) or {}
        return rows

    # -- locks --------------------------------------------------------------------------

    def acquire_lock(self, key: str, owner: LockOwner, ttl_seconds: float, now: float | None = None) -> bool:
        import time

        now = time.time() if now is None else now
        cursor = self._exec(
            "INSERT INTO locks (key, owner, acquired_at, expires_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET owner = excluded.owner, acquired_at = excluded.acquired_at, "
            "expires_at = excluded.expires_at WHERE locks.expires_at < ? OR locks.owner = excluded.owner",
            (key, owner.encode(), now, now + ttl_seconds, now),
        )
        return cursor.rowcount == 1

    def renew_lock(self, key: str, owner: LockOwner, ttl_seconds: float) -> bool:
        import time

        cursor = self._exec(
            "UPDATE locks SET expires_at = ? WHERE key = ? AND owner = ?", (time.time() + ttl_seconds, key, owner.encode())
        )
        return cursor.rowcount == 1

    def release_lock(self, key: str, owner: LockOwner | None = None) -> bool:
        if owner is None:
            cursor = self._exec("DELETE FROM locks WHERE key = ?", (key,))
        else:
            cursor = self._exec("DELETE FROM locks WHERE key = ? AND owner = ?", (key, owner.encode()))
        return cursor.rowcount == 1

    def list_locks(self) -> list[LockInfo]:
        return [LockInfo(**row) for row in self._rows("SELECT key, owner, acquired_at, expires_at FROM locks ORDER BY key")]
