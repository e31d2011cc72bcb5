"""The ``db`` connector family: one interface over SQLite, DuckDB and PostgreSQL.

:class:`DatabaseConnector` defines what every database connector answers --
``execute``, ``executemany``, ``fetchall``, ``iter_batches``, ``transaction`` -- and
the two file paths the ``db_extract`` / ``db_load`` steps use, ``export`` and
``load``. The generic implementations here stream batches of rows between a DB-API
cursor and the file readers and writers of :mod:`aetherflow.core.tabular` (whose file
conventions every driver follows). Drivers override them with native fast paths
(PostgreSQL ``COPY``, DuckDB ``COPY`` and ``read_csv``/``read_parquet``).

A new database driver subclasses :class:`DatabaseConnector` and implements
:meth:`DatabaseConnector._open`; see ``docs/databases.md`` for the hooks.

Threads: each thread gets its own connection, opened on first use; ``close()`` closes
them all, so jobs running in parallel never share a connection. A database that cannot be opened twice (SQLite ``:memory:``) shares one
connection, and every call holds that connection's lock for its duration, a
``transaction()`` block and an unfinished ``iter_batches`` included.

Cancellation: every call runs inside :func:`~aetherflow.core.cancel.current_cancel`'s
scope, so a cancelled step (Ctrl-C, its ``timeout_seconds``) calls
:meth:`DatabaseConnector._interrupt` on the connection running the call.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ...atomic import display_name
from ...cancel import current_cancel
from ...errors import AetherflowError, ConnectorConfigError, ConnectorError
from ...tabular import Sink, Source, TableFormat, open_sink, open_source, table_format, type_category
from ..base import ConnectorBase, ProgressCallback

LOAD_MODES = ("append", "truncate", "replace")
# Why a load that creates its table needs the file's column names, by mode.
_NEEDS_COLUMNS = {
    "replace": "mode 'replace' needs the file's column names",
    "create": "the table does not exist, and creating it needs the file's column names",
}
DEFAULT_BATCH_SIZE = 10_000

Params = Sequence[Any] | dict[str, Any] | None


def quote_ident(name: str) -> str:
    """``name`` as a double-quoted SQL identifier (valid in all three databases)."""
    return '"' + str(name).replace('"', '""') + '"'


# A database URL's scheme, with SQLAlchemy's optional ``+driver`` (``postgresql+psycopg2://``).
_URL_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9]*)(?P<driver>\+[A-Za-z0-9_]+)?://")


def url_scheme(url: str) -> str | None:
    """The lower-case scheme of a database URL, without a ``+driver`` part; None if not a URL."""
    match = _URL_SCHEME.match(url)
    return match.group("scheme").lower() if match else None


def plain_url(url: str) -> str:
    """A SQLAlchemy-style URL as the database's own client reads it: ``+driver`` dropped."""
    return _URL_SCHEME.sub(lambda m: m.group("scheme") + "://", url, count=1)


# -- the connector --------------------------------------------------------------------------------


@dataclass(eq=False)
class _Session:
    """One connection and the lock that serialises its use."""

    conn: Any
    generation: int
    lock: threading.RLock = field(default_factory=threading.RLock)
    depth: int = 0  # open transaction() blocks


@dataclass
class ResultColumns:
    names: list[str]
    hints: list[str | None] | None = None


def fetched_batches(
    columns: ResultColumns, fetchmany: Callable[[int], Sequence[Any]], batch_size: int
) -> Iterator[tuple[ResultColumns, list[tuple]]]:
    """``(columns, rows)`` of ``fetchmany(batch_size)`` calls until one returns no rows;
    yields at least once (an empty batch for a result without rows)."""
    batch = fetchmany(batch_size)
    yield columns, [tuple(r) for r in batch]
    while batch:
        batch = fetchmany(batch_size)
        if batch:
            yield columns, [tuple(r) for r in batch]


class DatabaseConnector(ConnectorBase):
    """Base of the ``db`` connectors.

    Drivers implement :meth:`_open` (a new DB-API connection; ``first`` is an already
    open one to derive from or share) and may override the cursor and transaction
    hooks, the native ``_export``/``_load`` paths, :meth:`_is_broken` and the error
    classification of :class:`ConnectorBase` (``_is_timeout``, ``_classify``).
    """

    kind = "db"
    #: How queries take parameters, for the docs and error hints.
    paramstyle: ClassVar[str] = ""
    #: The positional placeholder used by the generic ``load``.
    placeholder: ClassVar[str] = "?"
    #: SQL column types by category, for ``load(mode="replace")``.
    sql_types: ClassVar[dict[str, str]] = {
        "bool": "BOOLEAN",
        "int16": "SMALLINT",
        "int32": "INTEGER",
        "int64": "BIGINT",
        "float32": "REAL",
        "float64": "DOUBLE PRECISION",
        "decimal": "NUMERIC({0},{1})",
        "string": "TEXT",
        "binary": "BLOB",
        "date": "DATE",
        "time": "TIME",
        "timestamp": "TIMESTAMP",
        "timestamptz": "TIMESTAMP WITH TIME ZONE",
        "json": "TEXT",
    }

    def __init__(self, *, config: dict[str, Any], options: dict[str, Any]):
        super().__init__(config=config, options=options)
        self._local = threading.local()
        self._sessions: list[_Session] = []
        self._generation = 0

    # -- connections ---------------------------------------------------------------------

    def _open(self, first: Any | None) -> Any:
        raise NotImplementedError

    def _close_connection(self, conn: Any) -> None:
        conn.close()

    def _is_broken(self, conn: Any) -> bool:
        """Whether ``conn`` can no longer be used (it is then discarded and reopened)."""
        return False

    def connect(self) -> Any:
        """This thread's connection, opened on first use."""
        return self._session().conn

    def _session(self) -> _Session:
        session = getattr(self._local, "session", None)
        if session is not None and session.generation == self._generation:
            if not self._is_broken(session.conn):
                return session
            self._discard(session)
            if session.depth:
                # Reconnecting here would run the rest of the block outside any transaction.
                raise self.error("the connection was lost inside a transaction; the transaction did not commit")
        with self.lock:
            first = self._sessions[0] if self._sessions else None
            with self.translate("connect"):
                conn = self._open(first.conn if first is not None else None)
            if first is not None and conn is first.conn:
                session = first
            else:
                session = _Session(conn, self._generation)
                self._sessions.append(session)
            self._client = self._sessions[0].conn
        self._local.session = session
        return session

    def _discard(self, session: _Session) -> None:
        with self.lock:
            if session in self._sessions:
                self._sessions.remove(session)
            if not self._sessions:
                self._client = None
        try:
            self._close_connection(session.conn)
        except Exception:  # noqa: BLE001 - the connection is already unusable
            pass

    def close(self) -> None:
        """Close every connection this connector opened. Idempotent."""
        with self.lock:
            sessions, self._sessions = self._sessions, []
            self._generation += 1
            self._client = None
        for session in reversed(sessions):
            try:
                self._close_connection(session.conn)
            except Exception:  # noqa: BLE001 - closing must never mask the real outcome
                pass

    @contextmanager
    def _using(self, action: str) -> Iterator[_Session]:
        """This thread's session, locked; driver errors become ConnectorErrors."""
        with self._holding(self._session(), action) as session:
            yield session

    @contextmanager
    def _holding(self, session: _Session, action: str) -> Iterator[_Session]:
        """``session`` locked for ``action``. After a driver error a broken connection
        is discarded, a healthy one rolled back outside a transaction, and the error
        translated.

        While the call runs, cancelling the step (Ctrl-C, timeout_seconds) cancels it
        on the database, from the cancelling thread. A step cancelled before the call
        (while connecting) does not start it: a cancel request sent to an idle
        connection is ignored, and the statement would then run to its end."""
        cancel = current_cancel()
        with session.lock, self.translate(action), cancel.on_cancel(lambda: self._interrupt(session.conn)):
            cancel.raise_if_cancelled()
            try:
                yield session
            except AetherflowError:
                raise
            except Exception:
                if self._is_broken(session.conn):
                    self._discard(session)
                elif session.depth == 0:
                    self._abandon_transaction(session.conn)
                raise

    def _interrupt(self, conn: Any) -> None:
        """Stop what ``conn`` is running, called from another thread (the step was
        cancelled). Drivers override it: PostgreSQL asks the server to cancel, DuckDB
        and SQLite interrupt. The default does nothing: the call runs to its end."""

    def _abandon_transaction(self, conn: Any) -> None:
        """Roll back what a failed script may have left open (its own BEGIN)."""
        try:
            self._rollback(conn)
        except Exception:  # noqa: BLE001 - usually "no transaction is active"
            pass

    # -- cursor hooks (DB-API defaults) ------------------------------------------------------

    def _params(self, params: Params) -> Any:
        return () if params is None else params

    def _cursor(self, conn: Any) -> Any:
        return conn.cursor()

    def _release(self, cursor: Any) -> None:
        cursor.close()

    def _rowcount(self, cursor: Any) -> int:
        count = cursor.rowcount
        return count if isinstance(count, int) else -1

    def _run(self, conn: Any, sql: str, params: Params) -> Any:
        cursor = self._cursor(conn)
        cursor.execute(sql, self._params(params))
        return cursor

    # Transactions are explicit: ``_open`` returns a connection in autocommit mode, and
    # ``transaction()`` brackets its block with these three.

    def _begin(self, conn: Any) -> None:
        self._release(self._run(conn, "BEGIN", None))

    def _commit(self, conn: Any) -> None:
        self._release(self._run(conn, "COMMIT", None))

    def _rollback(self, conn: Any) -> None:
        self._release(self._run(conn, "ROLLBACK", None))

    @staticmethod
    def _columns(cursor: Any) -> list[str]:
        return [d[0] for d in cursor.description or ()]

    def _hints(self, cursor: Any) -> list[str | None] | None:
        return None

    def _stream(self, session: _Session, sql: str, params: Params, batch_size: int) -> Iterator[tuple[ResultColumns, list[tuple]]]:
        """Batches of a query's rows; yields at least once (an empty batch for no rows)."""
        cursor = self._run(session.conn, sql, params)
        try:
            yield from fetched_batches(ResultColumns(self._columns(cursor), self._hints(cursor)), cursor.fetchmany, batch_size)
        finally:
            self._release(cursor)

    # -- the public calls ---------------------------------------------------------------------

    def execute(self, sql: str, params: Params = None) -> int:
        """Run one statement; the number of rows it changed (-1 when not applicable)."""
        with self._using("execute") as session:
            cursor = self._run(session.conn, sql, params)
            try:
                return self._rowcount(cursor)
            finally:
                self._release(cursor)

    def executemany(self, sql: str, seq_of_params: Iterable[Params]) -> int:
        """Run one statement for each parameter set, all in one transaction (joining
        an open one); the total rows changed."""
        with self.transaction(), self._using("executemany") as session:
            cursor = self._cursor(session.conn)
            try:
                cursor.executemany(sql, [self._params(p) for p in seq_of_params])
                return self._rowcount(cursor)
            finally:
                self._release(cursor)

    def fetchall(self, sql: str, params: Params = None) -> tuple[list[str], list[tuple]]:
        """``(columns, rows)`` of a query, all in memory: for small results."""
        with self._using("query") as session:
            cursor = self._run(session.conn, sql, params)
            try:
                return self._columns(cursor), [tuple(r) for r in cursor.fetchall()]
            finally:
                self._release(cursor)

    def table_exists(self, table: str) -> bool:
        """Whether ``table``, written as in SQL (qualified or quoted as needed), exists."""
        try:
            with self._using(f"look up table {table}") as session:
                self._release(self._run(session.conn, f"SELECT * FROM {table} WHERE 1 = 0", None))
        except ConnectorError as exc:
            if exc.__cause__ is not None and self._is_missing_table(exc.__cause__):
                return False
            raise
        return True

    def _is_missing_table(self, exc: BaseException) -> bool:
        """Whether a driver exception says that a table does not exist."""
        return False

    def fetchmany(self, sql: str, params: Params = None, max_rows: int = DEFAULT_BATCH_SIZE) -> tuple[list[str], list[tuple]]:
        """``(columns, rows)`` with at most ``max_rows`` rows; reads no further."""
        rows: list[tuple] = []
        columns: list[str] = []
        size = max(1, min(max_rows, DEFAULT_BATCH_SIZE))
        with closing(self._batches("query", sql, params, size)) as batches:
            for result, batch in batches:
                columns = result.names
                rows.extend(batch[: max_rows - len(rows)])
                if len(rows) >= max_rows:
                    break
        return columns, rows

    def iter_batches(
        self, sql: str, params: Params = None, batch_size: int = DEFAULT_BATCH_SIZE, *, yield_empty: bool = False
    ) -> Iterator[tuple[list[str], list[tuple]]]:
        """``(columns, rows)`` batches of at most ``batch_size`` rows, streamed: the
        whole result is never held in memory. With ``yield_empty`` a result without
        rows still yields one empty batch, carrying the column names. Close the
        iterator (or exhaust it) to release the connection."""
        with closing(self._batches("query", sql, params, batch_size)) as batches:
            for columns, rows in batches:
                if rows or yield_empty:
                    yield columns.names, rows

    def _batches(self, action: str, sql: str, params: Params, batch_size: int) -> Iterator[tuple[ResultColumns, list[tuple]]]:
        if batch_size < 1:
            raise self.error(f"batch_size must be at least 1, not {batch_size}", ConnectorConfigError)
        with self._using(action) as session:
            stream = self._stream(session, sql, params, batch_size)
            try:
                yield from stream
            finally:
                stream.close()

    @contextmanager
    def transaction(self) -> Iterator[DatabaseConnector]:
        """Everything inside runs in one transaction on this thread's connection:
        committed when the block ends, rolled back when it raises. Nested blocks
        join the outer transaction."""
        session = self._session()
        with session.lock:
            if session.depth:
                session.depth += 1
                try:
                    yield self
                finally:
                    session.depth -= 1
                return
            with self._holding(session, "begin transaction"):
                self._begin(session.conn)
            session.depth = 1
            try:
                yield self
            except BaseException:
                session.depth = 0
                try:
                    self._rollback(session.conn)
                except Exception:  # noqa: BLE001 - the original error matters more
                    if self._is_broken(session.conn):
                        self._discard(session)
                raise
            try:
                with self._holding(session, "commit"):
                    self._commit(session.conn)
            except BaseException:
                try:
                    self._rollback(session.conn)
                except Exception:  # noqa: BLE001 - the commit error is the one to report
                    pass
                raise
            finally:
                session.depth = 0

    # -- files ------------------------------------------------------------------------------------

    def export(
        self,
        sql: str,
        params: Params = None,
        *,
        path: str | os.PathLike,
        format: str | TableFormat,
        header: bool = True,
        progress: ProgressCallback | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> dict[str, Any]:
        """Write a query's result to ``path`` as csv, tsv, jsonl or parquet, streamed in
        batches. ``format`` is a format name (laid out with ``header``) or a
        :class:`~aetherflow.core.tabular.TableFormat`. Returns ``{"rows": n, "columns":
        [...]}``. The caller owns ``path`` (it writes to a temporary name and renames)."""
        return self._export(sql, params, Path(path), self._table_format(format, header), progress, batch_size)

    def load(
        self,
        table: str,
        path: str | os.PathLike,
        *,
        format: str | TableFormat,
        header: bool = True,
        mode: str = "append",
        progress: ProgressCallback | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> int:
        """Load a csv, tsv, jsonl or parquet file into ``table`` in one transaction.

        ``append`` adds rows, creating the table from the file's columns when it does
        not exist; ``truncate`` empties the table first; ``replace`` drops it and
        creates it from the file's columns (Parquet and JSON Lines types map to SQL
        types, CSV columns become text). ``table`` is used as written (quote it yourself
        if it needs quoting). Returns the number of rows loaded."""
        fmt = self._table_format(format, header)
        if mode not in LOAD_MODES:
            raise self.error(f"unknown load mode {mode!r}; expected one of {', '.join(LOAD_MODES)}", ConnectorConfigError)
        return self._load(table, Path(path), fmt, mode, progress, batch_size)

    def _table_format(self, format: str | TableFormat, header: bool) -> TableFormat:
        try:
            return table_format(format, header)
        except ValueError as exc:
            raise self.error(str(exc), ConnectorConfigError) from None

    def _export(
        self, sql: str, params: Params, target: Path, fmt: TableFormat, progress: ProgressCallback | None, batch_size: int
    ) -> dict[str, Any]:
        """The generic extract: rows in batches from a cursor into a tabular sink."""
        rows = 0
        names: list[str] = []
        sink: Sink | None = None
        action = f"extract to '{display_name(target)}'"
        try:
            with closing(self._batches(action, sql, params, batch_size)) as batches:
                for columns, batch in batches:
                    with self.translate(action):
                        if sink is None:
                            names = columns.names
                            sink = open_sink(fmt, target, names, columns.hints)
                        sink.write(batch)
                    rows += len(batch)
                    if progress is not None and batch:
                        progress(len(batch))
        except BaseException:
            if sink is not None:
                try:
                    sink.close()
                except Exception:  # noqa: BLE001 - the original error matters more
                    pass
            raise
        if sink is not None:
            with self.translate(action):
                sink.close()
        return {"rows": rows, "columns": names}

    def _load(self, table: str, path: Path, fmt: TableFormat, mode: str, progress: ProgressCallback | None, batch_size: int) -> int:
        """The generic load: a tabular source's batches inserted in one transaction."""
        action = f"load {table} from '{path.name}'"
        create = mode == "append" and not self.table_exists(table)
        with self.translate(action):
            source = open_source(fmt, path, batch_size)
        try:
            with self.transaction():
                with self.translate(action):
                    self._prepare_table(table, source, "create" if create else mode, action)
                with self.translate(action):
                    return self._load_rows(table, source, path, progress, action)
        finally:
            source.close()

    def _prepare_table(self, table: str, source: Source, mode: str, action: str) -> None:
        """``mode`` is a load mode, or ``create`` for an append to a missing table."""
        if mode == "truncate":
            self.execute(self._truncate_sql(table))
        elif mode in ("replace", "create"):
            if not source.columns:
                raise self.error(f"{action}: {_NEEDS_COLUMNS[mode]} (a header line, JSON Lines or Parquet)", ConnectorConfigError)
            types = source.arrow_types()
            columns = []
            for index, name in enumerate(source.columns):
                sql_type = self.sql_types["string"] if types is None else self._sql_type(types[index])
                columns.append(f"{self.quote_identifier(name)} {sql_type}")
            if mode == "replace":
                self.execute(f"DROP TABLE IF EXISTS {table}")
            self.execute(f"CREATE TABLE {table} ({', '.join(columns)})")

    def quote_identifier(self, name: str) -> str:
        """``name`` quoted as an identifier of this database (the generic load's column names)."""
        return quote_ident(name)

    def _truncate_sql(self, table: str) -> str:
        return f"DELETE FROM {table}"

    def _sql_type(self, arrow_type) -> str:
        category, params = type_category(arrow_type)
        return self.sql_types[category].format(*params)

    def _insert_sql(self, table: str, source: Source) -> str:
        target = table
        if source.columns:
            target += f" ({', '.join(self.quote_identifier(c) for c in source.columns)})"
        marks = ", ".join([self.placeholder] * source.width)
        return f"INSERT INTO {target} VALUES ({marks})"

    def _adapt_rows(self, rows: list[tuple], source: Source) -> list[tuple]:
        """Rows of ``source`` converted to values the driver can bind."""
        return rows

    def _load_rows(self, table: str, source: Source, path: Path, progress: ProgressCallback | None, action: str) -> int:
        sql = self._insert_sql(table, source)
        total = 0
        with self._using(action) as session:
            cursor = self._cursor(session.conn)
            try:
                for rows in source.batches():
                    cursor.executemany(sql, self._adapt_rows(rows, source))
                    total += len(rows)
                    if progress is not None:
                        progress(len(rows))
            finally:
                self._release(cursor)
        return total


