"""``db/sqlalchemy`` and ``db/mysql``: databases reached through a SQLAlchemy dialect.

``db/sqlalchemy`` takes a SQLAlchemy URL (``mysql+pymysql://``, ``oracle+oracledb://``,
``mssql+pymssql://``, ``snowflake://``, ...) and works with any database whose dialect
and DB-API driver are installed. ``db/mysql`` is the same code for MySQL and MariaDB,
configured like ``db/postgres`` (host, port, user, password, database) or with a URL.

SQLAlchemy contributes what differs between databases: parsing the URL and importing
the DB-API driver, identifier quoting, column type names for ``CREATE TABLE``,
isolation levels and server-side cursors. Statements are sent as written.

Parameters: a mapping binds ``:name`` placeholders (SQLAlchemy's ``text()``, the same
for every database); a list binds positionally in the DB-API driver's own style (``%s``
for PyMySQL and mysqlclient, ``:1`` for oracledb, ...).

Transactions: connections run in autocommit mode (SQLAlchemy's ``AUTOCOMMIT`` isolation
level); ``transaction()`` switches a connection to ``isolation_level`` (the database's
default unless configured) and back after the commit or rollback.

Streaming: ``iter_batches`` and extracts use ``stream_results`` -- the dialect's
server-side cursor (MySQL's unbuffered cursor, PostgreSQL's named cursor) -- fetched
``batch_size`` rows at a time. Loads insert ``batch_size`` rows per ``executemany``,
in one transaction (PyMySQL and mysqlclient send each batch as multi-row INSERTs).

Threads: one connection per thread, each its own (the engine pools nothing).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, ClassVar

from ...errors import ConnectorConfigError, ConnectorError, ConnectorTimeout, MissingDependencyError
from ...tabular import Source, TableFormat, json_text
from ..base import Classification, ProgressCallback
from ..families.db import DatabaseConnector, Params, ResultColumns, fetched_batches, url_scheme
from ..schema import Field

_INSTALL = "pip install 'aetherflow[sqlalchemy]'"

#: The package that provides the DB-API driver of a dialect (``name`` or ``name+driver``),
#: for install hints. SQLAlchemy's default driver of a bare dialect name comes first.
DRIVER_PACKAGES = {
    "mysql": "mysqlclient",
    "mysql+mysqldb": "mysqlclient",
    "mysql+pymysql": "PyMySQL",
    "mysql+mysqlconnector": "mysql-connector-python",
    "mysql+mariadbconnector": "mariadb",
    "mariadb": "mysqlclient",
    "mariadb+mysqldb": "mysqlclient",
    "mariadb+pymysql": "PyMySQL",
    "mariadb+mariadbconnector": "mariadb",
    "oracle": "oracledb",
    "oracle+oracledb": "oracledb",
    "oracle+cx_oracle": "cx_Oracle",
    "mssql": "pyodbc",
    "mssql+pyodbc": "pyodbc",
    "mssql+pymssql": "pymssql",
    "postgresql": "psycopg2-binary",
    "postgresql+psycopg2": "psycopg2-binary",
    "postgresql+psycopg": "'psycopg[binary]'",
    "snowflake": "snowflake-sqlalchemy",
    "exa": "sqlalchemy-exasol",
    "exa+websocket": "sqlalchemy-exasol",
}

# MySQL protocol column types (the same numbers in PyMySQL and mysqlclient) -> type hints.
# TEXT and BLOB share type codes (only the character set tells them apart): no hint, the
# values decide.
_MYSQL_HINTS = {1: "int16", 2: "int16", 3: "int32", 9: "int32", 8: "int64", 13: "int16", 4: "float32", 5: "float64",
                10: "date", 7: "timestamp", 12: "timestamp", 245: "json"}
_MYSQL_DECIMAL = (0, 246)
# Numbers, dates and times: the server sends them as text, the driver converts them.
_MYSQL_TEXTUAL = frozenset({0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 246})
# CLIENT_MULTI_STATEMENTS of the MySQL protocol (the same flag in PyMySQL and mysqlclient).
_CLIENT_MULTI_STATEMENTS = 1 << 16
# MySQL errors that mean "took too long": lock wait, statement time limits (MariaDB, MySQL).
_MYSQL_TIMEOUTS = {1205, 1969, 3024}
# The messages databases give for a missing table (MySQL 1146, SQLite, PostgreSQL, Oracle, SQL Server).
_MISSING_TABLE = re.compile(r"doesn't exist|does not exist|no such table|ORA-00942|invalid object name", re.IGNORECASE)


def _sqlalchemy():
    try:
        import sqlalchemy
    except ImportError:
        raise MissingDependencyError("db/sqlalchemy needs SQLAlchemy, which is not installed", hint=f"install it: {_INSTALL}") from None
    return sqlalchemy


def _check_url(value: str) -> str:
    """A SQLAlchemy URL is ``dialect[+driver]://...``; checked when the flow is resolved."""
    if url_scheme(value) is None:
        raise ValueError("expected a SQLAlchemy URL such as mysql+pymysql://user@host:3306/db or oracle+oracledb://user@host/?service_name=XE")
    return value


class SQLAlchemyConnector(DatabaseConnector):
    """Any database with a SQLAlchemy dialect."""

    driver = "sqlalchemy"
    summary = "Any database with a SQLAlchemy dialect (MySQL/MariaDB, Oracle, SQL Server, ...)"
    paramstyle = ":name with a mapping (any database); a list binds in the DB-API driver's positional style (%s, ?, :1)"
    config_schema = {
        "url": Field(
            str, required=True, normalize=_check_url, help=(
                "SQLAlchemy URL, dialect+driver://user@host:port/database; "
                "a password written in it (after the user and a colon) is secret"
            )
        ),
        "password": Field(str, secret=True, help="password, given apart from the URL (it replaces one in the URL)"),
        "connect_args": Field(dict, help="keyword arguments for the DB-API driver's connect(), e.g. {ssl: {ca: /etc/ca.pem}}"),
        "isolation_level": Field(str, help="isolation level of transaction() blocks and loads, e.g. READ COMMITTED (default: the database's)"),
    }
    options_schema: ClassVar[dict[str, Field]] = {}

    def __init__(self, *, config: dict[str, Any], options: dict[str, Any]):
        super().__init__(config=config, options=options)
        self._engine = None
        self._types: dict[str, str] | None = None

    # -- the engine ------------------------------------------------------------------------

    def url(self):
        """The SQLAlchemy URL to connect to (``password`` applied)."""
        sa = _sqlalchemy()
        try:
            url = sa.engine.make_url(self.cfg("url"))
        except sa.exc.ArgumentError as exc:
            raise self.error(f"invalid url: {exc}", ConnectorConfigError) from None
        if self.cfg("password") is not None:
            url = url.set(password=self.cfg("password"))
        return url

    def connect_args(self) -> dict[str, Any]:
        """Keyword arguments for the DB-API driver's ``connect()``."""
        return dict(self.cfg("connect_args") or {})

    @property
    def engine(self):
        """The engine, made on first use (it imports the dialect and its DB-API driver)."""
        with self.lock:
            if self._engine is None:
                self._engine = self._create_engine()
            return self._engine

    def _create_engine(self):
        sa = _sqlalchemy()
        from sqlalchemy.pool import NullPool

        url = self.url()
        name = url.drivername
        package = DRIVER_PACKAGES.get(name) or DRIVER_PACKAGES.get(url.get_backend_name())
        try:
            return sa.create_engine(
                url, poolclass=NullPool, connect_args=self.connect_args(), hide_parameters=True, isolation_level="AUTOCOMMIT"
            )
        except sa.exc.NoSuchModuleError:
            hint = f"install the dialect's package: {_INSTALL} {package}" if package else (
                f"install the SQLAlchemy dialect for {name!r} (see the database's docs)"
            )
            raise MissingDependencyError(f"no SQLAlchemy dialect {name!r} is installed", hint=hint) from None
        except ImportError as exc:
            module = getattr(exc, "name", None) or str(exc)
            raise MissingDependencyError(
                f"the {name} dialect needs the DB-API driver {module!r}, which is not installed",
                hint=f"install it: pip install {package or module}",
            ) from None
        except sa.exc.ArgumentError as exc:
            raise self.error(f"cannot use the url: {exc}", ConnectorConfigError) from None

    @property
    def dialect(self):
        return self.engine.dialect

    def quote_identifier(self, name: str) -> str:
        return self.dialect.identifier_preparer.quote(str(name))

    # -- connections -----------------------------------------------------------------------

    def _open(self, first: Any | None) -> Any:
        return self.engine.connect()

    def _is_broken(self, conn: Any) -> bool:
        if conn.closed or conn.invalidated:
            return True
        # A DB-API connection that failed under the MySQL streaming path, which SQLAlchemy did not see.
        return not getattr(conn.connection.dbapi_connection, "open", True)

    def close(self) -> None:
        super().close()
        with self.lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()

    def _begin(self, conn: Any) -> None:
        conn.rollback()  # ends the no-op transaction SQLAlchemy begins in autocommit mode
        level = self.cfg("isolation_level")
        conn.execution_options(isolation_level=level.upper() if level else self.dialect.default_isolation_level)
        conn.begin()

    def _commit(self, conn: Any) -> None:
        try:
            conn.commit()
        finally:
            self._autocommit(conn)

    def _rollback(self, conn: Any) -> None:
        try:
            conn.rollback()
        finally:
            self._autocommit(conn)

    @staticmethod
    def _autocommit(conn: Any) -> None:
        if not (conn.closed or conn.invalidated):
            conn.execution_options(isolation_level="AUTOCOMMIT")

    # -- statements ------------------------------------------------------------------------

    def _execute(self, conn: Any, sql: str, params: Params, **options: Any) -> Any:
        """A statement's CursorResult: a mapping binds ``:name``, a list binds positionally."""
        if isinstance(params, dict):
            return conn.execute(_sqlalchemy().text(sql), params, execution_options=options)
        if params is None:  # the statement as written: a % is no placeholder
            return conn.exec_driver_sql(sql, execution_options={**options, "no_parameters": True})
        return conn.exec_driver_sql(sql, tuple(params), execution_options=options)

    def _run(self, conn: Any, sql: str, params: Params) -> Any:
        return self._execute(conn, sql, params)

    def _release(self, cursor: Any) -> None:
        cursor.close()

    @staticmethod
    def _columns(cursor: Any) -> list[str]:
        return list(cursor.keys()) if cursor.returns_rows else []

    def fetchall(self, sql: str, params: Params = None) -> tuple[list[str], list[tuple]]:
        with self._using("query") as session:
            result = self._execute(session.conn, sql, params)
            try:
                return self._columns(result), [tuple(r) for r in result.fetchall()] if result.returns_rows else []
            finally:
                result.close()

    def executemany(self, sql: str, seq_of_params) -> int:
        with self.transaction(), self._using("executemany") as session:
            rows = list(seq_of_params)
            if rows and isinstance(rows[0], dict):
                result = session.conn.execute(_sqlalchemy().text(sql), rows)
            else:
                result = session.conn.exec_driver_sql(sql, [tuple(r) for r in rows])
            try:
                return self._rowcount(result)
            finally:
                result.close()

    def _hints(self, description) -> list[str | None] | None:
        """Type hints of a MySQL result's columns (``description`` of its DB-API cursor)."""
        hints: list[str | None] = []
        for column in description or ():
            code, size, scale = column[1], column[3], column[5]
            if code in _MYSQL_DECIMAL and size:
                # The display size counts the point and the sign: an upper bound of the precision.
                precision = min(38, int(size) - (1 if scale else 0))
                hints.append(f"decimal({precision},{int(scale or 0)})" if precision > int(scale or 0) else None)
            else:
                hints.append(_MYSQL_HINTS.get(code))
        return hints

    @property
    def _is_mysql(self) -> bool:
        return self.dialect.name in ("mysql", "mariadb")

    def _stream(self, session, sql: str, params: Params, batch_size: int):
        if self._is_mysql:
            yield from self._stream_mysql(session, sql, params, batch_size)
            return
        result = self._execute(session.conn, sql, params, stream_results=True, max_row_buffer=batch_size)
        try:
            if not result.returns_rows:
                yield ResultColumns([]), []
                return
            yield from fetched_batches(ResultColumns(list(result.keys())), result.fetchmany, batch_size)
        finally:
            result.close()

    def _stream_mysql(self, session, sql: str, params: Params, batch_size: int):
        """MySQL rows straight from the driver's unbuffered cursor (SSCursor): the rows
        are the driver's tuples, without SQLAlchemy's row objects around them (a third
        of an extract's time). In an extract to CSV the numbers, dates and times stay
        the server's text (see :meth:`_export`)."""
        as_text = getattr(self._local, "as_text", False)
        raw = session.conn.connection.dbapi_connection
        statement, values = self._driver_statement(sql, params)
        cursor = raw.cursor(self.dialect.loaded_dbapi.cursors.SSCursor)
        try:
            with self._server_text(raw) if as_text else nullcontext():
                cursor.execute(statement, values)
            description = cursor.description
            if not description:
                yield ResultColumns([]), []
                return
            hints = self._hints(description)
            if as_text:  # Arrow parses the typed ones; the others stay text
                hints = [hint or ("string" if column[1] in _MYSQL_TEXTUAL else None) for hint, column in zip(hints, description)]
            yield from fetched_batches(ResultColumns([column[0] for column in description], hints), cursor.fetchmany, batch_size)
        finally:
            cursor.close()

    def _driver_statement(self, sql: str, params: Params) -> tuple[str, Any]:
        """``sql`` and its parameters as the DB-API driver takes them: a mapping's
        ``:name`` placeholders compiled to the driver's style, as SQLAlchemy does."""
        if not isinstance(params, dict):
            return sql, (tuple(params) if params is not None else None)
        compiled = _sqlalchemy().text(sql).compile(dialect=self.dialect)
        values = compiled.construct_params(params)
        if compiled.positiontup is not None:
            return compiled.string, tuple(values[name] for name in compiled.positiontup)
        return compiled.string, values

    # -- extracts to CSV: the server's text --------------------------------------------

    def _export(
        self, sql: str, params: Params, target: Path, fmt: TableFormat, progress: ProgressCallback | None, batch_size: int
    ) -> dict[str, Any]:
        """A MySQL or MariaDB result goes to CSV/TSV as the text the server sends:
        numbers, dates and times are not converted to Python values and back (the
        driver's conversions cost more than the rest of the extract). Date patterns need
        the values: those extracts, and other formats, take the generic path."""
        if fmt.name not in ("csv", "tsv") or fmt.formats_dates or not self._is_mysql:
            return super()._export(sql, params, target, fmt, progress, batch_size)
        self._local.as_text = True
        try:
            return super()._export(sql, params, target, fmt, progress, batch_size)
        finally:
            self._local.as_text = False

    @staticmethod
    @contextmanager
    def _server_text(raw: Any) -> Iterator[None]:
        """Statements run inside return numbers, dates and times as the server's text
        (the DB-API connection's conversions for them are switched off: ``converter``
        in mysqlclient, ``decoders`` in PyMySQL); text and binary columns convert as
        usual. A result keeps the conversions it was created with."""
        attribute = "converter" if hasattr(raw, "converter") else "decoders"
        conversions = getattr(raw, attribute)
        setattr(raw, attribute, {code: convert for code, convert in conversions.items() if code not in _MYSQL_TEXTUAL})
        try:
            yield
        finally:
            setattr(raw, attribute, conversions)

    # -- loads -----------------------------------------------------------------------------

    def _is_missing_table(self, exc: BaseException) -> bool:
        original = getattr(exc, "orig", None) or exc
        return bool(_MISSING_TABLE.search(str(original)))

    @property
    def sql_types(self) -> dict[str, str]:  # type: ignore[override]
        """SQL column types by category, as the dialect spells them."""
        if self._types is None:
            self._types = self._type_names()
        return self._types

    def _type_names(self) -> dict[str, str]:
        import sqlalchemy.types as t

        types = {
            "bool": t.Boolean(),
            "int16": t.SmallInteger(),
            "int32": t.Integer(),
            "int64": t.BigInteger(),
            "float32": t.Float(precision=24),
            "float64": t.Double(),
            "string": t.Text(),
            "binary": t.LargeBinary(),
            "date": t.Date(),
            "time": t.Time(),
            "timestamp": t.DateTime(),
            "timestamptz": t.DateTime(timezone=True),
            "json": t.Text(),
        }
        if self._is_mysql:
            from sqlalchemy.dialects import mysql

            # TEXT and BLOB hold 64 KiB, DATETIME and TIME drop fractions of a second.
            types.update(string=mysql.LONGTEXT(), binary=mysql.LONGBLOB(), time=mysql.TIME(fsp=6), json=mysql.JSON(),
                         timestamp=mysql.DATETIME(fsp=6), timestamptz=mysql.DATETIME(fsp=6))
        names = {category: sa_type.compile(dialect=self.dialect) for category, sa_type in types.items()}
        names["decimal"] = "NUMERIC({0},{1})"
        return names

    def _insert_sql(self, table: str, source: Source) -> str:
        target = table
        if source.columns:
            target += f" ({', '.join(self.quote_identifier(c) for c in source.columns)})"
        return f"INSERT INTO {target} VALUES ({', '.join(self._placeholders(source.width))})"

    def _placeholders(self, count: int) -> list[str]:
        style = self.dialect.paramstyle
        if style in ("format", "pyformat"):
            return ["%s"] * count
        if style == "qmark":
            return ["?"] * count
        if style == "numeric_dollar":
            return [f"${i + 1}" for i in range(count)]
        return [f":{i + 1}" for i in range(count)]  # numeric, and named drivers that bind by position (oracledb)

    def _adapt_rows(self, rows: list[tuple], source: Source) -> list[tuple]:
        if not rows or not any(isinstance(v, (dict, list)) for v in rows[0]):
            return rows
        return [tuple(json_text(v) if isinstance(v, (dict, list)) else v for v in row) for row in rows]

    def _load_rows(self, table, source, path, progress, action) -> int:
        sql = self._insert_sql(table, source)
        total = 0
        with self._using(action) as session:
            for rows in source.batches():
                session.conn.exec_driver_sql(sql, self._adapt_rows(rows, source)).close()
                total += len(rows)
                if progress is not None:
                    progress(len(rows))
        return total

    # -- errors ----------------------------------------------------------------------------

    def _classify(self, exc: BaseException) -> Classification:
        original = getattr(exc, "orig", None)
        if original is None:
            return super()._classify(exc)
        cls: type[ConnectorError] = ConnectorTimeout if self._is_timeout(exc) else ConnectorError
        return cls, str(original).strip() or type(original).__name__, None

    def _is_timeout(self, exc: BaseException) -> bool:
        original = getattr(exc, "orig", None) or exc
        args = getattr(original, "args", ())
        if args and args[0] in _MYSQL_TIMEOUTS and self._is_mysql:
            return True
        return isinstance(original, TimeoutError) or "timed out" in str(original).lower()


class MySQLConnector(SQLAlchemyConnector):
    """MySQL and MariaDB (SQLAlchemy with PyMySQL or mysqlclient)."""

    driver = "mysql"
    summary = "MySQL and MariaDB via SQLAlchemy (PyMySQL or mysqlclient)"
    paramstyle = "%s with a list, or :name with a mapping"
    config_schema = {
        "host": Field(str, help="server host name or address"),
        "port": Field(int, help="server port (default 3306)"),
        "user": Field(str, help="user to log in as"),
        "password": Field(str, secret=True, help="password of the user"),
        "database": Field(str, help="default database (schema)"),
        "url": Field(str, normalize=_check_url, help="a mysql:// or mariadb:// SQLAlchemy URL instead of the keys above (they override its parts)"),
        "charset": Field(str, default="utf8mb4", help="connection character set; utf8mb4 holds every character"),
        "client": Field(str, default="auto", choices=("auto", "mysqlclient", "pymysql"),
                        help="DB-API driver: mysqlclient (C, faster) when installed, else PyMySQL (pure Python)"),
        "connect_args": SQLAlchemyConnector.config_schema["connect_args"],
        "isolation_level": SQLAlchemyConnector.config_schema["isolation_level"],
    }
    options_schema = {
        "connect_timeout": Field(int, default=10, help="seconds to wait for a connection"),
    }

    def url(self):
        """The URL: ``url`` (or ``mysql://``) with the separate keys applied, the client's
        driver and the character set."""
        sa = _sqlalchemy()
        given = self.cfg("url")
        try:
            url = sa.engine.make_url(given) if given else sa.engine.URL.create("mysql")
        except sa.exc.ArgumentError as exc:
            raise self.error(f"invalid url: {exc}", ConnectorConfigError) from None
        backend = url.get_backend_name()
        if backend not in ("mysql", "mariadb"):
            raise self.error(f"a {backend}:// URL is not a MySQL or MariaDB one; use db/sqlalchemy for other databases", ConnectorConfigError)
        parts = {"host": "host", "port": "port", "username": "user", "password": "password", "database": "database"}
        url = url.set(**{part: self.cfg(key) for part, key in parts.items() if self.cfg(key) is not None})
        if not url.host:
            raise self.error("no server given: set host (and port, user, password, database) or url", ConnectorConfigError)
        return url.set(drivername=f"{backend}+{self.client(url)}").update_query_dict({"charset": self.cfg("charset")})

    def client(self, url=None) -> str:
        """The DB-API driver, as SQLAlchemy names it: ``mysqldb`` (mysqlclient) or ``pymysql``."""
        import importlib.util

        if url is None and self.cfg("url"):
            url = _sqlalchemy().engine.make_url(self.cfg("url"))
        named = url.get_driver_name() if url is not None and "+" in url.drivername else None
        choice = self.cfg("client")
        if choice == "mysqlclient" or (choice == "auto" and named == "mysqldb"):
            return "mysqldb"
        if choice == "pymysql" or named == "pymysql":
            return "pymysql"
        if named and named not in ("mysqldb", "pymysql"):
            raise self.error(f"the {named} driver is not one db/mysql uses (mysqlclient, pymysql); use db/sqlalchemy for it", ConnectorConfigError)
        return "mysqldb" if importlib.util.find_spec("MySQLdb") is not None else "pymysql"

    def connect_args(self) -> dict[str, Any]:
        # Several statements in one call (a script for db_execute), as PostgreSQL allows.
        args = {"connect_timeout": int(self.opt("connect_timeout")), "client_flag": _CLIENT_MULTI_STATEMENTS}
        return {**args, **super().connect_args()}

    def _run(self, conn: Any, sql: str, params: Params) -> Any:
        """A statement, or a script of several, on the DB-API cursor: every statement's
        error is raised, and the row count is the last statement's."""
        statement, values = self._driver_statement(sql, params)
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.execute(statement, values)
            while cursor.nextset():
                pass
        except BaseException:
            cursor.close()
            raise
        return cursor
