"""PostgreSQL state backend: runners on several hosts share one state.

The tables are named ``aetherflow_*`` and live in the first schema of the
connection's ``search_path`` (choose another with ``options=-csearch_path=myschema``
in the DSN). They are created and migrated automatically; the migration runs under a
transaction-scoped advisory lock, so several processes starting at once against an
empty database create the schema exactly once.

Clocks: lock decisions (acquire, renew, expiry) use the database server's clock
(``clock_timestamp()``) only, so runners on hosts whose clocks disagree still agree on
who holds a lock. The times recorded for runs, jobs and steps are the runner's clock:
they describe what happened, they decide nothing.

The DSN carries a password: it is never put in a message. Errors name the target as
``user@host:port/dbname`` and driver messages pass through a scrubber that knows the
DSN and its password.

psycopg is imported when a store is opened, never at module import.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import StateError
from ..redaction import Scrubber
from .base import LockOwner
from .sql import SQLStateStore

# Any constant shared by every aetherflow process; it only has to be the same everywhere.
MIGRATION_LOCK_ID = 0x4165_7468_6572  # "Aether"
_NOW = "extract(epoch from clock_timestamp())::float8"

_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """
        CREATE TABLE IF NOT EXISTS aetherflow_runs (
            run_id text PRIMARY KEY,
            flow_id text NOT NULL,
            status text NOT NULL,
            profile text,
            flow_path text,
            flow_sha256 text,
            fingerprint text,
            host text,
            pid integer,
            started_at double precision NOT NULL,
            ended_at double precision,
            duration_ms bigint,
            invocations integer NOT NULL DEFAULT 1
        )
        """,
        "CREATE INDEX IF NOT EXISTS aetherflow_runs_flow ON aetherflow_runs (flow_id, started_at)",
        """
        CREATE TABLE IF NOT EXISTS aetherflow_job_runs (
            run_id text NOT NULL,
            job_id text NOT NULL,
            status text NOT NULL,
            started_at double precision,
            ended_at double precision,
            duration_ms bigint,
            outputs jsonb,
            error text,
            position integer,
            PRIMARY KEY (run_id, job_id)
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS aetherflow_step_runs (
            run_id text NOT NULL,
            job_id text NOT NULL,
            step_id text NOT NULL,
            step_type text,
            status text NOT NULL,
            attempts integer NOT NULL DEFAULT 0,
            started_at double precision,
            ended_at double precision,
            duration_ms bigint,
            outputs jsonb,
            error text,
            position integer,
            PRIMARY KEY (run_id, job_id, step_id)
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS aetherflow_locks (
            key text PRIMARY KEY,
            owner text NOT NULL,
            acquired_at double precision NOT NULL,
            expires_at double precision NOT NULL
        )
        """,
    ),
    2: (
        "ALTER TABLE aetherflow_job_runs ADD COLUMN IF NOT EXISTS outputs_masked boolean NOT NULL DEFAULT false",
        "ALTER TABLE aetherflow_step_runs ADD COLUMN IF NOT EXISTS outputs_masked boolean NOT NULL DEFAULT false",
        "ALTER TABLE aetherflow_step_runs ADD COLUMN IF NOT EXISTS process_group text",
    ),
    # Run variables and persisted values (watermarks).
    3: (
        "ALTER TABLE aetherflow_runs ADD COLUMN IF NOT EXISTS vars jsonb",
        """
        CREATE TABLE IF NOT EXISTS aetherflow_persisted (
            flow_id text NOT NULL,
            name text NOT NULL,
            json_value text NOT NULL,
            updated_at double precision NOT NULL,
            run_id text,
            PRIMARY KEY (flow_id, name)
        )
        """,
    ),
}


def describe_dsn(dsn: str) -> str:
    """``user@host:port/dbname`` for messages: never the password, never the raw DSN."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        parts = conninfo_to_dict(dsn)
    except Exception:  # noqa: BLE001 - an unparsable DSN is described, not echoed
        return "postgres (unparsable dsn, not shown)"
    user = parts.get("user") or ""
    host = parts.get("host") or parts.get("hostaddr") or "localhost"
    port = parts.get("port") or "5432"
    dbname = parts.get("dbname") or user
    return f"postgres {user + '@' if user else ''}{host}:{port}/{dbname}"


class PostgresStateStore(SQLStateStore):
    MIGRATIONS = _MIGRATIONS
    TABLE_PREFIX = "aetherflow_"
    MARKER = "%s"
    JSON_MARKER = "%s::jsonb"

    def __init__(self, dsn: str, *, connect_timeout: int = 10):
        self._scrubber = Scrubber([dsn])
        self._dsn = dsn
        self._connect_timeout = connect_timeout
        self.target = describe_dsn(dsn)
        self._lock = threading.RLock()
        self._in_transaction = False
        try:
            import psycopg  # noqa: F401 - imported here so the module costs nothing until used
        except ImportError:
            raise StateError("state backend postgres needs psycopg", hint="pip install 'psycopg[binary]'") from None
        self._conn = self._connect()
        self._migrate()

    # -- connection ---------------------------------------------------------------------

    def _error(self, what: str, exc: BaseException, hint: str | None = None) -> StateError:
        detail = self._scrubber.scrub(str(exc).strip() or type(exc).__name__)
        return StateError(f"state database {self.target}: {what}: {detail}", hint=hint)

    def _connect(self):
        import psycopg
        from psycopg.conninfo import conninfo_to_dict
        from psycopg.rows import dict_row

        try:
            params = conninfo_to_dict(self._dsn)
        except psycopg.Error:
            raise StateError(f"state database {self.target}: the dsn is not valid", hint="check flow.state.dsn") from None
        params.setdefault("connect_timeout", self._connect_timeout)
        params.setdefault("application_name", "aetherflow")
        try:
            return psycopg.connect(autocommit=True, row_factory=dict_row, **params)
        except psycopg.Error as exc:
            raise self._error("cannot connect", exc, hint="check flow.state.dsn and that the server is reachable") from None

    def _connection(self):
        if self._conn.closed or self._conn.broken:
            self._conn = self._connect()
        return self._conn

    def _run(self, sql: str, params: dict | tuple | None, fetch: bool):
        import psycopg

        with self._lock:
            for attempt in (1, 2):
                try:
                    cursor = self._connection().execute(sql, params)
                    return cursor.fetchall() if fetch else cursor
                except psycopg.OperationalError as exc:
                    # A long run may outlive its connection (server restart, idle timeout, a
                    # proxy). The statements here are reads and idempotent upserts/updates, so
                    # the statement is sent once more on a new connection (the one plain
                    # INSERT, of a new run, fails loudly if its first send had arrived).
                    # Never inside a transaction: its earlier statements went with the connection.
                    if attempt == 2 or self._in_transaction or not (self._conn.closed or self._conn.broken):
                        raise self._error("query failed", exc) from None
                except psycopg.Error as exc:
                    raise self._error("query failed", exc) from None
                except BaseException:
                    # Interrupted mid-statement (SIGTERM raises in the main thread): the protocol
                    # state of the connection is unknown, so the next statement gets a fresh one.
                    self._conn.close()
                    raise

    def _execute(self, sql: str, params: dict | tuple | None = None):
        return self._run(sql, params, fetch=False)

    def _query(self, sql: str, params: dict | tuple | None = None) -> list[dict[str, Any]]:
        return self._run(sql, params, fetch=True)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        import psycopg

        with self._lock:
            try:
                with self._connection().transaction():
                    self._in_transaction = True
                    try:
                        yield
                    finally:
                        self._in_transaction = False
            except psycopg.Error as exc:
                raise self._error("transaction failed", exc) from None

    def _migrate(self) -> None:
        import psycopg

        with self._lock:
            conn = self._conn
            try:
                current = self._schema_version(conn)
                if current == self.schema_version():
                    return
                with conn.transaction():
                    # Serialises concurrent first-time creation: CREATE TABLE IF NOT EXISTS alone
                    # races on the catalog when several runners start together.
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS aetherflow_schema "
                        "(id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL, migrated_at timestamptz NOT NULL DEFAULT now())"
                    )
                    current = self._schema_version(conn)
                    self._check_not_newer(current)
                    for version in range(current + 1, self.schema_version() + 1):
                        for statement in self.MIGRATIONS[version]:
                            conn.execute(statement)
                        conn.execute(
                            "INSERT INTO aetherflow_schema (id, version) VALUES (1, %s) "
                            "ON CONFLICT (id) DO UPDATE SET version = excluded.version, migrated_at = now()",
                            (version,),
                        )
            except psycopg.Error as exc:
                raise self._error("cannot create or migrate the state schema", exc) from None

    def _schema_version(self, conn) -> int:
        row = conn.execute("SELECT to_regclass('aetherflow_schema') IS NOT NULL AS present").fetchone()
        if not row["present"]:
            return 0
        row = conn.execute("SELECT version FROM aetherflow_schema WHERE id = 1").fetchone()
        version = int(row["version"]) if row else 0
        self._check_not_newer(version)
        return version

    def _check_not_newer(self, version: int) -> None:
        if version > self.schema_version():
            raise StateError(
                f"state database {self.target} has schema version {version}, newer than this aetherflow ({self.schema_version()})",
                hint="upgrade aetherflow on this host",
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def now(self) -> float:
        return float(self._query(f"SELECT {_NOW} AS now")[0]["now"])

    # -- locks (server clock) -----------------------------------------------------------

    def acquire_lock(self, key: str, owner: LockOwner, ttl_seconds: float) -> bool:
        # One statement: a free key is inserted; a held key is taken over only when its
        # lock has expired or it is ours already. Concurrent callers serialise on the row.
        cursor = self._execute(
            f"INSERT INTO aetherflow_locks AS held (key, owner, acquired_at, expires_at) "
            f"VALUES (%(key)s, %(owner)s, {_NOW}, {_NOW} + %(ttl)s) "
            f"ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at, "
            f"acquired_at = CASE WHEN held.owner = excluded.owner THEN held.acquired_at ELSE excluded.acquired_at END "
            f"WHERE held.expires_at < {_NOW} OR held.owner = excluded.owner",
            {"key": key, "owner": owner.encode(), "ttl": float(ttl_seconds)},
        )
        return cursor.rowcount == 1

    def renew_lock(self, key: str, owner: LockOwner, ttl_seconds: float) -> bool:
        cursor = self._execute(
            f"UPDATE aetherflow_locks SET expires_at = {_NOW} + %s WHERE key = %s AND owner = %s",
            (float(ttl_seconds), key, owner.encode()),
        )
        return cursor.rowcount == 1
