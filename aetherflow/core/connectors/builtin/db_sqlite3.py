"""``db/sqlite3``: a SQLite database file through the standard library.

Parameters: ``?`` placeholders with a list, or ``:name`` with a mapping. Statements run
in autocommit mode unless inside ``transaction()``; a script of several statements
(without parameters) runs statement by statement. Each thread gets its own connection
to a file; ``:memory:`` is one private database shared by all threads of the
connector through one locked connection.
"""

from __future__ import annotations

import datetime as _dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ...errors import ConnectorConfigError
from ...tabular import Source, json_text
from ..families.db import DatabaseConnector, Params
from ..schema import Field

_PRAGMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PRAGMA_WORD = re.compile(r"^[A-Za-z0-9_.+-]+$")
_NATIVE = frozenset({str, int, float, bytes, type(None), bool})


def split_statements(sql: str) -> list[str]:
    """``sql`` cut into complete statements (semicolons inside strings, comments and
    trigger bodies do not cut)."""
    import sqlite3

    statements: list[str] = []
    pending = ""
    for piece in sql.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                statements.append(pending)
            pending = ""
    rest = pending[:-1]
    if rest.strip(" \t\r\n;"):
        statements.append(rest)
    return statements


def _sqlite_value(value: Any) -> Any:
    if type(value) in _NATIVE:
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, _dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (dict, list, tuple)):
        return json_text(value)
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return str(value)


class SQLiteConnector(DatabaseConnector):
    """SQLite database file (standard library)."""

    driver = "sqlite3"
    summary = "SQLite database file (standard library)"
    paramstyle = "qmark (?) with a list, or named (:name) with a mapping"
    placeholder = "?"
    config_schema = {
        "path": Field(str, required=True, help='database file (created if missing); ":memory:" for a private in-memory database'),
        "read_only": Field(bool, default=False, help="open the file read-only; it must exist"),
    }
    options_schema = {
        "timeout_seconds": Field(float, default=5.0, help="how long a statement waits for a lock held by another connection"),
        "pragmas": Field(dict, default=None, help="PRAGMA name -> value run on every new connection, e.g. {journal_mode: wal}"),
    }
    sql_types = {
        "bool": "INTEGER",
        "int16": "INTEGER",
        "int32": "INTEGER",
        "int64": "INTEGER",
        "float32": "REAL",
        "float64": "REAL",
        "decimal": "NUMERIC",
        "string": "TEXT",
        "binary": "BLOB",
        "date": "TEXT",
        "time": "TEXT",
        "timestamp": "TEXT",
        "timestamptz": "TEXT",
        "json": "TEXT",
    }

    @property
    def in_memory(self) -> bool:
        return self.cfg("path") == ":memory:"

    def _open(self, first: Any | None) -> Any:
        import sqlite3

        if self.in_memory and first is not None:
            return first
        path = self.cfg("path")
        target, uri = path, False
        if self.cfg("read_only"):
            if self.in_memory:
                raise self.error("read_only needs a database file, not ':memory:'", ConnectorConfigError)
            target, uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro", True
        elif not self.in_memory:
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(
                target,
                timeout=float(self.opt("timeout_seconds")),
                isolation_level=None,
                check_same_thread=False,
                uri=uri,
            )
        except sqlite3.Error as exc:
            raise self.error(f"cannot open {path!r}: {exc}") from exc
        try:
            for name, value in (self.opt("pragmas") or {}).items():
                conn.execute(self._pragma(name, value))
        except BaseException:
            conn.close()
            raise
        return conn

    def _pragma(self, name: str, value: Any) -> str:
        if not _PRAGMA_NAME.match(str(name)):
            raise self.error(f"invalid pragma name {name!r}", ConnectorConfigError)
        if isinstance(value, bool):
            value = "ON" if value else "OFF"
        text = str(value)
        if not _PRAGMA_WORD.match(text):
            text = "'" + text.replace("'", "''") + "'"
        return f"PRAGMA {name} = {text}"

    def _is_missing_table(self, exc: BaseException) -> bool:
        import sqlite3

        return isinstance(exc, sqlite3.OperationalError) and str(exc).startswith("no such table")

    def _is_timeout(self, exc: BaseException) -> bool:
        import sqlite3

        return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)

    def _interrupt(self, conn: Any) -> None:
        conn.interrupt()

    def _run(self, conn: Any, sql: str, params: Params) -> Any:
        statements = split_statements(sql) if params is None else [sql]
        cursor = conn.cursor()
        try:
            for statement in statements or [sql]:
                cursor.execute(statement, self._params(params))
        except BaseException:
            cursor.close()
            raise
        return cursor

    def _adapt_rows(self, rows: list[tuple], source: Source) -> list[tuple]:
        if not rows:
            return rows
        columns = list(zip(*rows))
        convert = [i for i, values in enumerate(columns) if not _NATIVE.issuperset(map(type, values))]
        if not convert:
            return rows
        for index in convert:
            columns[index] = tuple(_sqlite_value(v) for v in columns[index])
        return list(zip(*columns))

