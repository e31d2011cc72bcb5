"""SQLite state backend: one file, WAL journal, one connection per run.

Each write is one committed statement (``synchronous=NORMAL`` in WAL mode keeps that
around a tenth of a millisecond), so a crash loses at most the write in flight and the
file stays consistent. Locks are taken with a single conditional upsert, which is
atomic across processes.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..atomic import atomic_path
from ..errors import StateError
from .base import LockOwner
from .sql import SQLStateStore

_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """
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
    )""",
        "CREATE INDEX IF NOT EXISTS runs_flow ON runs (flow_id, started_at)",
        """
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
    )""",
        """
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
    )""",
        """
    CREATE TABLE IF NOT EXISTS locks (
        key TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        acquired_at REAL NOT NULL,
        expires_at REAL NOT NULL
    )""",
    ),
    2: (
        "ALTER TABLE job_runs ADD COLUMN outputs_masked INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE step_runs ADD COLUMN outputs_masked INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE step_runs ADD COLUMN process_group TEXT",
    ),
    # Run variables and persisted values (watermarks).
    3: (
        "ALTER TABLE runs ADD COLUMN vars TEXT",
        """
    CREATE TABLE IF NOT EXISTS persisted (
        flow_id TEXT NOT NULL,
        name TEXT NOT NULL,
        json_value TEXT NOT NULL,
        updated_at REAL NOT NULL,
        run_id TEXT,
        PRIMARY KEY (flow_id, name)
    )""",
    ),
}


_ADD_COLUMN = re.compile(r"\s*ALTER\s+TABLE\s+(\w+)\s+ADD\s+COLUMN\s+(\w+)", re.IGNORECASE)


def _column_exists(conn: sqlite3.Connection, statement: str) -> bool:
    """Whether ``statement`` adds a column that the table has already.

    SQLite has no ``ADD COLUMN IF NOT EXISTS`` (PostgreSQL's migrations use it), so a
    database whose column arrived before its version number did (a copy restored over a
    newer schema, a build between releases) would otherwise fail to open with
    "duplicate column name"."""
    match = _ADD_COLUMN.match(statement)
    if not match:
        return False
    table, column = match.groups()
    return any(row[1] == column for row in conn.execute(f"PRAGMA table_info({table})"))


class SQLiteStateStore(SQLStateStore):
    MIGRATIONS = _MIGRATIONS

    def __init__(self, path: str | Path):
        self.path = str(path)
        try:
            if self.path != ":memory:":
                self._create_if_missing(Path(self.path))
            self._conn = self._connect(self.path)
            self._migrate()
        except sqlite3.Error as exc:
            raise StateError(f"cannot open state database {self.path!r}: {exc}", hint="check AETHERFLOW_STATE_ROOT / flow.state.path") from None
        self._lock = threading.RLock()  # re-entered by statements inside _transaction()

    @staticmethod
    def _connect(path: str) -> sqlite3.Connection:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def _create_if_missing(self, path: Path) -> None:
        """A new database is built under a temporary name and linked into place, so the
        file at ``path`` always holds a schema: an empty one there was damaged (or made
        by something else), and is refused rather than taken for an empty history."""
        if not path.exists():
            try:
                with atomic_path(path, overwrite=False) as tmp:
                    conn = self._connect(str(tmp))
                    try:
                        self._migrate(conn)
                    finally:
                        conn.close()
            except FileExistsError:
                pass  # another runner created it meanwhile
        if path.stat().st_size == 0:
            raise StateError(
                f"state database {self.path!r} is an empty file: it holds no schema and no runs",
                hint="aetherflow never leaves its state empty: the file was truncated or made by something else; "
                "restore it from a backup, or delete it to start a new history",
            )

    def _migrate(self, conn: sqlite3.Connection | None = None) -> None:
        conn = conn or self._conn
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        current = int(row[0]) if row else 0
        target = self.schema_version()
        if current > target:
            raise StateError(
                f"state database {self.path!r} has schema version {current}, newer than this aetherflow ({target})",
                hint="upgrade aetherflow or point flow.state.path elsewhere",
            )
        for version in range(current + 1, target + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                again = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                if again and int(again[0]) >= version:
                    conn.execute("COMMIT")
                    continue
                for statement in self.MIGRATIONS[version]:
                    if not _column_exists(conn, statement):
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

    def _execute(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        try:
            with self._lock:
                return self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise StateError(f"state database {self.path!r}: {exc}") from None

    def _query(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        with self._lock:
            try:
                cursor = self._conn.execute(sql, params)
                names = [d[0] for d in cursor.description]
                return [dict(zip(names, values)) for values in cursor.fetchall()]
            except sqlite3.Error as exc:
                raise StateError(f"state database {self.path!r}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            self._execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._execute("COMMIT")

    # -- locks (this machine's clock) -----------------------------------------------------

    def acquire_lock(self, key: str, owner: LockOwner, ttl_seconds: float) -> bool:
        now = time.time()
        cursor = self._execute(
            "INSERT INTO locks (key, owner, acquired_at, expires_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET owner = excluded.owner, acquired_at = excluded.acquired_at, "
            "expires_at = excluded.expires_at WHERE locks.expires_at < ? OR locks.owner = excluded.owner",
            (key, owner.encode(), now, now + ttl_seconds, now),
        )
        return cursor.rowcount == 1

    def renew_lock(self, key: str, owner: LockOwner, ttl_seconds: float) -> bool:
        cursor = self._execute(
            "UPDATE locks SET expires_at = ? WHERE key = ? AND owner = ?", (time.time() + ttl_seconds, key, owner.encode())
        )
        return cursor.rowcount == 1
