"""``db/postgres``: PostgreSQL through psycopg 3, with COPY fast paths.

Parameters: ``%s`` placeholders with a list, or ``%(name)s`` with a mapping (a literal
``%`` is written ``%%`` when parameters are given). Connections run in autocommit mode
unless inside ``transaction()``.

Streaming: ``iter_batches`` uses ``cursor.stream()`` in chunks of ``batch_size`` rows
(libpq 17+; row by row with older libpq), so a result is never held in memory and
``INSERT ... RETURNING`` streams too. CSV/TSV extracts run ``COPY (query) TO STDOUT``
with the file's dialect as COPY options and pass the server's bytes straight to the
file (re-encoded when the dialect's encoding is not UTF-8): the loop reads each row with
libpq's ``PQgetCopyData`` and hands it to a 1 MiB buffered writer, without psycopg's
per-row generator machinery, which costs about as much as the server's own work.
Loads run ``COPY table (columns) FROM STDIN`` fed with 1 MiB blocks of the file
(CSV/TSV, as UTF-8), with Parquet batches (and CSV whose dialect has date patterns)
rendered as CSV by pyarrow, or row by row (JSON Lines).

Threads: one connection per thread.
"""

from __future__ import annotations

import csv
import select
from itertools import islice
from pathlib import Path
from typing import Any

from ...atomic import display_name
from ...errors import ConnectorConfigError
from ...redaction import split_dsn_password
from ...tabular import CsvSource, ParquetSource, Source, TableFormat, arrow_batches_as_csv, json_text, open_encoded, utf8_blocks
from ..base import ProgressCallback
from ..families.db import DatabaseConnector, Params, ResultColumns, plain_url, quote_ident, url_scheme
from ..schema import Field

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_CONNINFO_KEYS = ("host", "port", "dbname", "user", "password", "sslmode", "sslrootcert")
_PROGRESS_EVERY = 1 << 16

# Result column type OIDs -> type hints (see tabular.arrow_type).
_OID_HINTS = {
    16: "bool",
    20: "int64",
    21: "int16",
    23: "int32",
    26: "int64",
    700: "float32",
    701: "float64",
    25: "string",
    1043: "string",
    1042: "string",
    19: "string",
    18: "string",
    2950: "string",
    17: "binary",
    1082: "date",
    1083: "time",
    1114: "timestamp",
    1184: "timestamptz",
    114: "json",
    3802: "json",
}


def _postgres_url(value: str) -> str:
    """A DSN as libpq reads it: a SQLAlchemy URL (``postgresql+psycopg2://``) loses its
    ``+driver``; a URL of another database is refused."""
    scheme = url_scheme(value)
    if scheme is None:
        return value  # a key=value connection string
    if scheme not in ("postgresql", "postgres"):
        raise ValueError(f"a {scheme}:// URL is not a PostgreSQL one; write postgresql://user@host:port/dbname")
    return plain_url(value)


def _copy_literal(text: str) -> str:
    """``text`` as a string literal in COPY options (standard strings: backslashes are plain)."""
    return "E'\\t'" if text == "\t" else "'" + text.replace("'", "''") + "'"


def _copy_options(fmt: TableFormat, *, header: bool) -> str:
    """COPY's CSV options for the dialect of ``fmt`` (encoding and line ends are handled
    outside: COPY data is UTF-8, and the server writes ``\\n``)."""
    options = [f"FORMAT csv, HEADER {'true' if header else 'false'}, DELIMITER {_copy_literal(fmt.delimiter)}"]
    if fmt.quote != '"':
        options.append(f"QUOTE {_copy_literal(fmt.quote)}")
    if fmt.escape:
        options.append(f"ESCAPE {_copy_literal(fmt.escape)}")
    if fmt.null:
        options.append(f"NULL {_copy_literal(fmt.null)}")
    return ", ".join(options)


def _options_value(text: str) -> str:
    """A value for libpq's ``options`` (``-c name=value``): spaces and backslashes escaped."""
    return text.replace("\\", "\\\\").replace(" ", "\\ ")


class PostgresConnector(DatabaseConnector):
    """PostgreSQL via psycopg 3, COPY fast paths."""

    driver = "postgres"
    summary = "PostgreSQL via psycopg 3, COPY fast paths"
    paramstyle = "format (%s) with a list, or pyformat (%(name)s) with a mapping"
    placeholder = "%s"
    config_schema = {
        "host": Field(str, help="server host name or address, or a unix socket directory"),
        "port": Field(int, help="server port (libpq default 5432)"),
        "dbname": Field(str, help="database name"),
        "user": Field(str, help="role to log in as"),
        "password": Field(str, secret=True, help="password of the role"),
        "sslmode": Field(str, choices=SSL_MODES, help="libpq sslmode (libpq default: prefer)"),
        "sslrootcert": Field(str, help="CA certificate file for sslmode verify-ca / verify-full"),
        # A password inside a URL or DSN is secret, not the whole value (redaction finds it).
        "dsn": Field(str, normalize=_postgres_url, help="libpq connection string or postgresql:// URL; the keys above override its parts"),
        "url": Field(str, normalize=_postgres_url, help="a postgresql:// URL (same as dsn; give one of them)"),
    }
    options_schema = {
        "connect_timeout": Field(int, default=10, help="seconds to wait for a connection"),
        "application_name": Field(str, default="aetherflow", help="name shown in pg_stat_activity"),
        "statement_timeout": Field(
            (int, str), help="cancel statements running longer: milliseconds, or text with a unit such as '30s'"
        ),
    }
    sql_types = {
        **DatabaseConnector.sql_types,
        "binary": "BYTEA",
        "json": "JSONB",
        "timestamptz": "TIMESTAMPTZ",
    }

    # -- connections -----------------------------------------------------------------------

    def conninfo(self) -> tuple[str, dict[str, Any]]:
        """The DSN and the keyword arguments psycopg connects with (secrets included)."""
        dsn, url = self.cfg("dsn"), self.cfg("url")
        if dsn and url:
            raise self.error("give either dsn or url, not both", ConnectorConfigError)
        kwargs: dict[str, Any] = {k: self.cfg(k) for k in _CONNINFO_KEYS if self.cfg(k) is not None}
        if not (dsn or url or kwargs.get("host")):
            raise self.error("no server given: set host (and port, dbname, user, password) or dsn", ConnectorConfigError)
        kwargs["connect_timeout"] = int(self.opt("connect_timeout"))
        # COPY writes in the client encoding: files are always UTF-8, whatever the database's.
        kwargs["client_encoding"] = "UTF8"
        if self.opt("application_name"):
            kwargs["application_name"] = self.opt("application_name")
        timeout = self.opt("statement_timeout")
        if timeout is not None:
            kwargs["options"] = f"-c statement_timeout={_options_value(str(timeout))}"
        # The password leaves the string and travels as a keyword: psycopg quotes it for
        # libpq, so spaces and quotes need no escaping, and libpq never quotes it back
        # in a parse error.
        dsn, password = split_dsn_password(dsn or url or "")
        if password is not None:
            kwargs.setdefault("password", password)
        return dsn, kwargs

    def _open(self, first: Any | None) -> Any:
        import psycopg

        dsn, kwargs = self.conninfo()
        return psycopg.connect(dsn, autocommit=True, **kwargs)

    def table_exists(self, table: str) -> bool:
        # to_regclass reads the name as SQL would and answers NULL, without an error that
        # would abort an open transaction.
        _, rows = self.fetchall("SELECT to_regclass(%s) IS NOT NULL", [table])
        return bool(rows[0][0])

    def _is_broken(self, conn: Any) -> bool:
        return bool(conn.closed or conn.broken)

    def _interrupt(self, conn: Any) -> None:
        # A cancel request on its own connection: the server stops the running statement.
        cancel_safe = getattr(conn, "cancel_safe", None)  # psycopg 3.2+: does not block the GIL
        if cancel_safe is not None:
            cancel_safe(timeout=10.0)
        else:
            conn.cancel()

    def _is_timeout(self, exc: BaseException) -> bool:
        import psycopg

        if isinstance(exc, psycopg.errors.QueryCanceled):
            return True
        return isinstance(exc, psycopg.OperationalError) and "timeout expired" in str(exc)

    # -- statements ------------------------------------------------------------------------

    def _params(self, params: Params) -> Any:
        return params

    def _run(self, conn: Any, sql: str, params: Params) -> Any:
        cursor = conn.cursor()
        try:
            cursor.execute(sql, params)
            while cursor.nextset():  # a script: report on its last statement
                pass
        except BaseException:
            cursor.close()
            raise
        return cursor

    def _hints(self, cursor: Any) -> list[str | None]:
        hints: list[str | None] = []
        for column in cursor.description or ():
            if column.type_code == 1700:
                precision, scale = column.precision, column.scale
                hints.append(f"decimal({precision},{scale})" if precision else "string")
            else:
                hints.append(_OID_HINTS.get(column.type_code))
        return hints

    def _stream(self, session, sql: str, params: Params, batch_size: int):
        import psycopg

        cursor = session.conn.cursor()
        size = batch_size if psycopg.capabilities.has_stream_chunked() else 1
        rows = cursor.stream(sql, params, size=size)
        try:
            columns: ResultColumns | None = None
            while True:
                batch = list(islice(rows, batch_size))
                if columns is None:
                    columns = ResultColumns([c.name for c in cursor.description or ()], self._hints(cursor))
                    yield columns, batch
                elif batch:
                    yield columns, batch
                if len(batch) < batch_size:
                    break
        finally:
            rows.close()
            cursor.close()

    # -- COPY fast paths -------------------------------------------------------------------

    def _export(
        self, sql: str, params: Params, target: Path, fmt: TableFormat, progress: ProgressCallback | None, batch_size: int
    ) -> dict[str, Any]:
        """CSV/TSV through ``COPY (sql) TO STDOUT`` in the file's dialect; JSON Lines,
        Parquet and dialects with date patterns (which COPY cannot apply) through the
        generic streamed path."""
        if not fmt.delimited or fmt.formats_dates:
            return super()._export(sql, params, target, fmt, progress, batch_size)
        query = sql.strip().rstrip(";").strip()
        # The newline keeps a trailing "-- comment" from swallowing the parenthesis.
        copy_sql = f"COPY (\n{query}\n) TO STDOUT ({_copy_options(fmt, header=True)})"
        with self._using(f"extract to '{display_name(target)}'") as session:
            cursor = session.conn.cursor()
            with cursor.copy(copy_sql, params or None) as copy, open_encoded(target, fmt.encoding) as fh:
                header_line, rows = self._copy_out(session.conn, copy, fh, fmt, progress)
        header_text = header_line.decode("utf-8").rstrip("\r\n")
        reader = csv.reader([header_text], delimiter=fmt.delimiter, quotechar=fmt.quote, escapechar=fmt.escape, doublequote=fmt.doubled_quotes)
        return {"rows": rows, "columns": next(reader, [])}

    def _copy_out(self, conn, copy, fh, fmt: TableFormat, progress: ProgressCallback | None) -> tuple[bytes, int]:
        """Move COPY data to ``fh``; returns the header line and the row count.

        Rows already buffered by libpq are taken with ``PQgetCopyData`` directly; only
        when the buffer is empty does the loop wait on the socket. The first message is
        the header line (always requested, to learn the column names). Each message is
        one row ending in ``\\n``; another line terminator replaces it row by row."""
        pgconn = conn.pgconn
        get = pgconn.get_copy_data
        write = fh.write
        wait = self._wait_readable
        eol = fmt.line_terminator.encode("ascii")
        if eol != b"\n":

            def write(data, _write=fh.write, _eol=eol):
                _write(data[:-1])
                _write(_eol)

        header_line = b""
        while True:  # the header
            n, data = get(1)
            if n > 0:
                header_line = bytes(data)
                if fmt.header:
                    write(data)
                break
            if n < 0:
                self._finish_copy(conn)
                return header_line, 0
            wait(pgconn)
        count = 0
        reported = 0
        while True:
            n, data = get(1)
            if n > 0:
                write(data)
                count += 1
                continue
            if n < 0:
                break
            if progress is not None and count - reported >= _PROGRESS_EVERY:
                progress(count - reported)
                reported = count
            wait(pgconn)
        rows = self._finish_copy(conn)
        if progress is not None and count > reported:
            progress(count - reported)
        return header_line, rows if rows is not None else count

    @staticmethod
    def _wait_readable(pgconn) -> None:
        select.select([pgconn.socket], [], [])
        pgconn.consume_input()

    def _finish_copy(self, conn) -> int | None:
        """Collect the results that end a COPY; raise the server's error if it failed."""
        import psycopg
        from psycopg import pq

        pgconn = conn.pgconn
        results = []
        while True:
            while pgconn.is_busy():
                self._wait_readable(pgconn)
            result = pgconn.get_result()
            if result is None:
                break
            results.append(result)
        for result in results:
            if result.status != pq.ExecStatus.COMMAND_OK:
                raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
        return results[-1].command_tuples if results else None

    def _truncate_sql(self, table: str) -> str:
        return f"TRUNCATE {table}"

    def _load_rows(self, table: str, source: Source, path: Path, progress: ProgressCallback | None, action: str) -> int:
        columns = f" ({', '.join(quote_ident(c) for c in source.columns)})" if source.columns else ""
        with self._using(action) as session:
            cursor = session.conn.cursor()
            try:
                if isinstance(source, CsvSource) and source.empty:
                    return 0
                if isinstance(source, CsvSource) and not source.format.formats_dates:
                    fmt = source.format
                    sql = f"COPY {table}{columns} FROM STDIN ({_copy_options(fmt, header=fmt.header)})"
                    with cursor.copy(sql) as copy:
                        for block in utf8_blocks(path, fmt.encoding):
                            copy.write(block)
                            if progress is not None:
                                progress(block.count(b"\n"))
                elif isinstance(source, (ParquetSource, CsvSource)):
                    # Parquet, and CSV with date patterns (COPY reads ISO dates only, and
                    # the source rewrites them): Arrow batches rendered as plain CSV.
                    sql = f"COPY {table}{columns} FROM STDIN (FORMAT csv)"
                    with cursor.copy(sql) as copy:
                        for batch in source.record_batches():
                            for block in arrow_batches_as_csv([batch]):
                                copy.write(block)
                            if progress is not None:
                                progress(batch.num_rows)
                else:
                    sql = f"COPY {table}{columns} FROM STDIN"
                    with cursor.copy(sql) as copy:
                        for rows in source.batches():
                            for row in rows:
                                copy.write_row([json_text(v) if isinstance(v, (dict, list)) else v for v in row])
                            if progress is not None:
                                progress(len(rows))
                return max(cursor.rowcount, 0)
            finally:
                cursor.close()
