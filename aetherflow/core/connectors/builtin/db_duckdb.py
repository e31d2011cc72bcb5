"""``db/duckdb``: a DuckDB database (file or ``:memory:``), with DuckDB's own file I/O.

Parameters: ``?`` placeholders with a list, or ``$name`` with a mapping (``$1`` for
numbered). Extracts run DuckDB's ``COPY (query) TO 'file'`` and loads read the file with
``read_csv`` / ``read_json`` / ``read_parquet``: no row passes through Python.

Threads: the first thread uses the connection opened from ``path``; other threads get
``connection.cursor()``, DuckDB's own second connection to the same database, so they
work in parallel with their own transactions.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ...atomic import display_name
from ...errors import ConnectorConfigError
from ...tabular import BLOCK_SIZE, CsvSource, TableFormat, open_encoded, write_plain_csv
from ..base import ProgressCallback
from ..families.db import DatabaseConnector, Params
from ..schema import Field

_EXTENSION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def sql_string(text: str) -> str:
    """``text`` as a single-quoted SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


class DuckDBConnector(DatabaseConnector):
    """DuckDB database, native CSV/Parquet."""

    driver = "duckdb"
    summary = "DuckDB database, native CSV/Parquet"
    paramstyle = "qmark (?) with a list, or $name with a mapping"
    placeholder = "?"
    config_schema = {
        "path": Field(str, default=":memory:", help='database file (created if missing); ":memory:" for an in-memory database'),
        "read_only": Field(bool, default=False, help="open the file read-only"),
    }
    options_schema = {
        "settings": Field(dict, default=None, help="DuckDB settings applied when the database opens, e.g. {threads: 2, memory_limit: 1GB}"),
        "extensions": Field(list, default=None, help="extensions to LOAD on open (they must be installed or autoloadable)"),
    }
    sql_types = {
        **DatabaseConnector.sql_types,
        "float64": "DOUBLE",
        "json": "JSON",
        "timestamptz": "TIMESTAMPTZ",
    }

    @property
    def in_memory(self) -> bool:
        return self.cfg("path") == ":memory:"

    def _open(self, first: Any | None) -> Any:
        import duckdb

        if first is not None:
            return first.cursor()
        path = self.cfg("path")
        if not self.in_memory and not self.cfg("read_only"):
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        settings = {str(k): (str(v) if not isinstance(v, (bool, int, float)) else v) for k, v in (self.opt("settings") or {}).items()}
        try:
            conn = duckdb.connect(path, read_only=bool(self.cfg("read_only")), config=settings)
        except duckdb.Error as exc:
            raise self.error(f"cannot open {path!r}: {exc}") from exc
        try:
            for name in self.opt("extensions") or []:
                if not _EXTENSION_NAME.match(str(name)):
                    raise self.error(f"invalid extension name {name!r}", ConnectorConfigError)
                try:
                    conn.execute(f"LOAD {name}")
                except duckdb.Error as exc:
                    raise self.error(
                        f"extension {name!r} could not be loaded: {exc}",
                        hint=f"install it on this machine first (duckdb -c 'INSTALL {name}')",
                    ) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _params(self, params: Params) -> Any:
        return params

    def _interrupt(self, conn: Any) -> None:
        conn.interrupt()

    def _cursor(self, conn: Any) -> Any:
        # The connection itself: conn.cursor() would be a second connection, outside
        # any transaction open on this one.
        return conn

    def _release(self, cursor: Any) -> None:
        pass

    def _run(self, conn: Any, sql: str, params: Params) -> Any:
        conn.execute(sql, self._params(params))
        return conn

    def _rowcount(self, cursor: Any) -> int:
        count = cursor.rowcount
        return count if isinstance(count, int) else -1

    def _is_missing_table(self, exc: BaseException) -> bool:
        import duckdb

        return isinstance(exc, duckdb.CatalogException)

    def _is_timeout(self, exc: BaseException) -> bool:
        import duckdb

        return isinstance(exc, duckdb.InterruptException)

    # -- native files -----------------------------------------------------------------------

    def _export(
        self, sql: str, params: Params, target: Path, fmt: TableFormat, progress: ProgressCallback | None, batch_size: int
    ) -> dict[str, Any]:
        """``COPY (sql) TO 'path'`` in DuckDB's own writer (csv, tsv, jsonl, parquet).
        DuckDB writes UTF-8 only: for another encoding (or a byte order mark) it writes a
        UTF-8 copy first, which is then re-encoded into ``target``."""
        if fmt.delimited:
            options = f"FORMAT csv, {_csv_options(fmt, copy=True)}, NEW_LINE {sql_string(fmt.line_terminator)}"
            if fmt.date_format:
                options += f", DATEFORMAT {sql_string(fmt.date_format)}"
            if fmt.timestamp_format:
                options += f", TIMESTAMPFORMAT {sql_string(fmt.timestamp_format)}"
        elif fmt.name == "jsonl":
            options = "FORMAT json"
        else:
            options = "FORMAT parquet"
        query = sql.strip().rstrip(";")
        written = target if not fmt.delimited or fmt.encoding == "utf-8" else target.with_name(target.name + ".utf8")
        try:
            with self._using(f"extract to '{display_name(target)}'") as session:
                conn = session.conn
                columns = [row[0] for row in conn.execute(f"DESCRIBE {query}\n", params).fetchall()]
                # The newline keeps a trailing "-- comment" from swallowing the parenthesis.
                result = conn.execute(f"COPY (\n{query}\n) TO {sql_string(str(written))} ({options})", params).fetchone()
            if written != target:
                with self.translate(f"extract to '{display_name(target)}'"), open(written, "rb") as src, open_encoded(target, fmt.encoding) as dst:
                    shutil.copyfileobj(src, dst, BLOCK_SIZE)
        finally:
            if written != target:
                written.unlink(missing_ok=True)
        rows = int(result[0]) if result else 0
        if progress is not None and rows:
            progress(rows)
        return {"rows": rows, "columns": columns}

    def _load(self, table: str, path: Path, fmt: TableFormat, mode: str, progress: ProgressCallback | None, batch_size: int) -> int:
        """Load with ``read_csv`` / ``read_json`` / ``read_parquet`` inside one transaction.

        ``replace``, and ``append`` to a missing table, create the table from the file
        with DuckDB's type detection; ``append``/``truncate`` into an existing table read
        CSV columns as text and let the table's types convert them, matching columns by
        name when the file has a header. A CSV file that ``read_csv`` cannot read as it
        is (an encoding other than UTF-8, date patterns) is first copied to plain UTF-8
        CSV by pyarrow, in a temporary directory."""
        action = f"load {table} from '{path.name}'"
        if fmt.delimited and (not fmt.utf8 or fmt.formats_dates):
            with self.translate(action):
                source = CsvSource(path, fmt, batch_size)
            if source.empty:
                return self._load(table, path, TableFormat(fmt.name, fmt.header), mode, progress, batch_size)
            with tempfile.TemporaryDirectory(prefix="aetherflow-duckdb-") as scratch:
                plain = Path(scratch) / "plain.csv"
                with self.translate(action):
                    plain_fmt = write_plain_csv(source, plain)
                return self._load_file(table, plain, plain_fmt, mode, progress, action)
        return self._load_file(table, path, fmt, mode, progress, action)

    def _load_file(self, table: str, path: Path, fmt: TableFormat, mode: str, progress: ProgressCallback | None, action: str) -> int:
        create = mode == "replace" or (mode == "append" and not self.table_exists(table))
        source = sql_string(str(path))
        by_name = True
        if fmt.delimited:
            reader = (
                f"read_csv({source}, {_csv_options(fmt, copy=False)}, allow_quoted_nulls=false"
                + ("" if create else ", all_varchar=true")
                + ")"
            )
            by_name = fmt.header
        elif fmt.name == "jsonl":
            reader = f"read_json({source}, format='newline_delimited')"
        else:
            reader = f"read_parquet({source})"
        if create and fmt.delimited and not fmt.header:
            why = "mode 'replace' needs" if mode == "replace" else "the table does not exist, and creating it needs"
            raise self.error(f"{action}: {why} the file's column names (a header line)", ConnectorConfigError)
        with self.transaction(), self._using(action) as session:
            conn = session.conn
            if create:
                conn.execute(f"DROP TABLE IF EXISTS {table}")
                conn.execute(f"CREATE TABLE {table} AS SELECT * FROM {reader}")
                rows = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            else:
                if mode == "truncate":
                    conn.execute(f"DELETE FROM {table}")
                insert = f"INSERT INTO {table} BY NAME" if by_name else f"INSERT INTO {table}"
                result = conn.execute(f"{insert} SELECT * FROM {reader}").fetchone()
                rows = int(result[0]) if result else 0
        if progress is not None and rows:
            progress(rows)
        return rows


def _csv_options(fmt: TableFormat, *, copy: bool) -> str:
    """The dialect of ``fmt`` as COPY's options (``KEY value``) or read_csv's (``key=value``)."""
    names = ("HEADER", "DELIMITER", "QUOTE", "ESCAPE", "NULLSTR") if copy else ("header", "delim", "quote", "escape", "nullstr")
    values = ("true" if fmt.header else "false", *(sql_string(v) for v in (fmt.delimiter, fmt.quote, fmt.escape or fmt.quote, fmt.null)))
    separator = " " if copy else "="
    return ", ".join(f"{name}{separator}{value}" for name, value in zip(names, values))
