"""The ``db`` connector family: one interface over SQLite, DuckDB and PostgreSQL.

:class:`DatabaseConnector` defines what every database connector answers --
``execute``, ``executemany``, ``fetchall``, ``iter_batches``, ``transaction`` -- and
the two file paths the ``db_extract`` / ``db_load`` steps use, ``export`` and
``load``. The generic implementations here stream batches of rows through Python and
use pyarrow for CSV/TSV and Parquet (the standard ``csv`` module of Python 3.11 cannot
tell NULL from an empty string, pyarrow can) and the ``json`` module for JSON Lines.
Drivers override them with native fast paths (PostgreSQL ``COPY``, DuckDB ``COPY`` and
``read_csv``/``read_parquet``).

File conventions shared by every driver: CSV is RFC 4180 with ``"`` quoting; NULL is
an empty unquoted field and an empty string is ``""``; TSV is the same dialect with a
tab delimiter; JSON Lines holds one object per row.

Threads: each thread gets its own connection, opened on first use; ``close()`` closes
them all. A database that cannot be opened twice (SQLite ``:memory:``) shares one
connection, and every call holds that connection's lock for its duration, a
``transaction()`` block and an unfinished ``iter_batches`` included.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from ...errors import AetherflowError, ConnectorConfigError, ConnectorError, ConnectorTimeout
from ...redaction import Scrubber, is_secret_key, url_passwords
from ..base import ConnectorBase

FORMATS = ("csv", "tsv", "jsonl", "parquet")
LOAD_MODES = ("append", "truncate", "replace")
DEFAULT_BATCH_SIZE = 10_000
COPY_BLOCK_SIZE = 1 << 20

_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}

ProgressCallback = Callable[[int], None]
Params = Sequence[Any] | dict[str, Any] | None


def format_from_path(path: str | os.PathLike) -> str | None:
    """The file format its extension names (``.csv``, ``.tsv``, ``.jsonl``, ``.parquet``, ...)."""
    return _EXTENSIONS.get(Path(path).suffix.lower())


def quote_ident(name: str) -> str:
    """``name`` as a double-quoted SQL identifier (valid in all three databases)."""
    return '"' + str(name).replace('"', '""') + '"'


_PARTIAL = re.compile(r"^\.(?P<name>.+)\.part-[0-9a-f]+$")


def display_name(path: str | os.PathLike) -> str:
    """The file name to show in messages: a temporary ``.name.part-xxxx`` shows as ``name``."""
    name = Path(path).name
    match = _PARTIAL.match(name)
    return match.group("name") if match else name


def delimiter_of(fmt: str) -> str:
    return "\t" if fmt == "tsv" else ","


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ConnectorConfigError(f"unknown file format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return fmt


# -- values as JSON -----------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    """JSON for the values databases return that ``json`` does not know."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        if value == value.to_integral_value():
            return int(value)
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, (set, frozenset)):
        return [json_value(v) for v in value]
    return str(value)


def json_value(value: Any) -> Any:
    """``value`` converted to something ``json.dumps`` writes as valid JSON.

    Decimal: an integer when integral, a float when the float is exact, else a string;
    date/time: ISO 8601 text; bytes: ``\\x`` and hex digits (PostgreSQL's bytea text form,
    the same as in CSV); timedelta: seconds; NaN/Infinity: strings;
    anything else unknown (UUID, IP address, ...): ``str(value)``.
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return json_value(_json_default(value))


_ENCODER = json.JSONEncoder(default=_json_default, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _dumps_row(record: dict[str, Any]) -> str:
    try:
        return _ENCODER.encode(record)
    except ValueError:  # NaN or Infinity somewhere: not valid JSON as a number
        return json.dumps(json_value(record), ensure_ascii=False, separators=(",", ":"))


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return _dumps_row(value) if isinstance(value, dict) else json.dumps(json_value(value), ensure_ascii=False, separators=(",", ":"))


# -- column types ----------------------------------------------------------------------------
#
# Drivers describe result columns with a small vocabulary of type hints ("int64",
# "decimal(12,2)", "timestamptz", "json", ...; None when unknown). They fix the Parquet
# schema up front, so a column that is NULL in the first batch still gets its type.


def arrow_type(hint: str | None):
    import pyarrow as pa

    if hint is None:
        return None
    simple = {
        "bool": pa.bool_(),
        "int16": pa.int16(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float32": pa.float32(),
        "float64": pa.float64(),
        "string": pa.string(),
        "json": pa.string(),
        "binary": pa.binary(),
        "date": pa.date32(),
        "time": pa.time64("us"),
        "timestamp": pa.timestamp("us"),
        "timestamptz": pa.timestamp("us", tz="UTC"),
    }
    if hint in simple:
        return simple[hint]
    if hint.startswith("decimal("):
        precision, scale = (int(p) for p in hint[8:-1].split(","))
        return pa.decimal128(precision, scale) if 0 < precision <= 38 else pa.string()
    return None


def type_category(arrow_type) -> tuple[str, tuple[int, ...]]:
    """The category of an Arrow type used to pick a SQL column type, and its parameters."""
    import pyarrow as pa
    import pyarrow.types as pt

    if pt.is_dictionary(arrow_type):
        return type_category(arrow_type.value_type)
    if pt.is_boolean(arrow_type):
        return "bool", ()
    if pt.is_int8(arrow_type) or pt.is_int16(arrow_type) or pt.is_uint8(arrow_type):
        return "int16", ()
    if pt.is_int32(arrow_type) or pt.is_uint16(arrow_type):
        return "int32", ()
    if pt.is_integer(arrow_type):
        return "int64", ()
    if pt.is_float16(arrow_type) or pt.is_float32(arrow_type):
        return "float32", ()
    if pt.is_floating(arrow_type):
        return "float64", ()
    if pt.is_decimal(arrow_type):
        return "decimal", (arrow_type.precision, arrow_type.scale)
    if pt.is_binary(arrow_type) or pt.is_large_binary(arrow_type) or pt.is_fixed_size_binary(arrow_type):
        return "binary", ()
    if pt.is_date(arrow_type):
        return "date", ()
    if pt.is_time(arrow_type):
        return "time", ()
    if pt.is_timestamp(arrow_type):
        return ("timestamptz" if arrow_type.tz else "timestamp"), ()
    if pt.is_nested(arrow_type):
        return "json", ()
    if arrow_type == pa.null():
        return "string", ()
    return "string", ()


# -- writing files -------------------------------------------------------------------------------


def _infer_array(values: list[Any], hint: str | None):
    """An Arrow array of ``values``; mixed or unsupported values fall back to text."""
    import pyarrow as pa

    if hint == "json":
        values = [_json_text(v) for v in values]
    target = arrow_type(hint)
    try:
        return pa.array(values, type=target, from_pandas=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, TypeError, ValueError):
        return pa.array([None if v is None else _text(v) for v in values], type=pa.string())


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, (dict, list, tuple)):
        return _json_text(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    return str(value)


def _csv_ready(array):
    """``array`` in a form pyarrow's CSV writer accepts (binary as ``\\x`` hex, nested as JSON)."""
    import pyarrow as pa
    import pyarrow.types as pt

    t = array.type
    if pt.is_binary(t) or pt.is_large_binary(t) or pt.is_fixed_size_binary(t):
        return pa.array([None if v is None else "\\x" + v.hex() for v in array.to_pylist()], type=pa.string())
    if pt.is_nested(t) or pt.is_null(t):
        return pa.array([None if v is None else _text(v) for v in array.to_pylist()], type=pa.string())
    if pt.is_duration(t) or pt.is_interval(t):
        return pa.array([None if v is None else _text(v) for v in array.to_pylist()], type=pa.string())
    return array


class _Sink:
    """Writes batches of rows to a file of one format."""

    def __init__(self, path: Path, columns: list[str], header: bool, hints: list[str | None] | None):
        self.path = path
        self.columns = list(columns)
        self.header = header
        self.hints = list(hints) if hints else [None] * len(columns)

    def write(self, rows: list[Sequence[Any]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _CsvSink(_Sink):
    def __init__(self, path, columns, header, hints, delimiter: str):
        super().__init__(path, columns, header, hints)
        import pyarrow.csv as pcsv

        self._pcsv = pcsv
        self._fh = open(path, "wb", buffering=COPY_BLOCK_SIZE)
        self._options = pcsv.WriteOptions(include_header=False, delimiter=delimiter, quoting_style="needed")
        if header and self.columns:
            line = io.StringIO()
            csv.writer(line, delimiter=delimiter, lineterminator="\n").writerow(self.columns)
            self._fh.write(line.getvalue().encode("utf-8"))

    def write(self, rows):
        import pyarrow as pa

        if not rows:
            return
        columns = list(zip(*rows))
        arrays = [_csv_ready(_infer_array(list(values), hint)) for values, hint in zip(columns, self.hints)]
        batch = pa.RecordBatch.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])
        self._pcsv.write_csv(batch, self._fh, self._options)

    def close(self):
        self._fh.close()


class _JsonlSink(_Sink):
    def __init__(self, path, columns, header, hints):
        super().__init__(path, columns, header, hints)
        self._fh = open(path, "w", encoding="utf-8", newline="\n", buffering=COPY_BLOCK_SIZE)

    def write(self, rows):
        columns = self.columns
        lines = [_dumps_row(dict(zip(columns, row))) for row in rows]
        if lines:
            self._fh.write("\n".join(lines))
            self._fh.write("\n")

    def close(self):
        self._fh.close()


class _ParquetSink(_Sink):
    """Parquet through pyarrow. The schema is fixed by the first batch (and the driver's
    type hints); each batch becomes one row group, so memory stays bounded by the batch
    size (bigger batches: bigger row groups, more memory)."""

    def __init__(self, path, columns, header, hints):
        super().__init__(path, columns, header, hints)
        self._writer = None
        self._schema = None
        self._row = 0

    def write(self, rows):
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not rows:
            return
        columns = list(zip(*rows))
        if self._schema is None:
            arrays = [_infer_array(list(values), hint) for values, hint in zip(columns, self.hints)]
            arrays = [a.cast(pa.string()) if pa.types.is_null(a.type) else a for a in arrays]
            self._schema = pa.schema([pa.field(name, a.type) for name, a in zip(self.columns, arrays)])
            self._writer = pq.ParquetWriter(str(self.path), self._schema)
        else:
            arrays = [self._array(i, list(values)) for i, values in enumerate(columns)]
        self._writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=self._schema))
        self._row += len(rows)

    def _array(self, index: int, values: list[Any]):
        import pyarrow as pa

        field_ = self._schema.field(index)
        if self.hints[index] == "json":
            values = [_json_text(v) for v in values]
        try:
            return pa.array(values, type=field_.type, from_pandas=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError) as exc:
            if pa.types.is_string(field_.type):
                return pa.array([None if v is None else _text(v) for v in values], type=pa.string())
            raise ValueError(
                f"column {field_.name!r} changed type after row {self._row} (Parquet type {field_.type}): {exc}; "
                "cast it to one type in the query"
            ) from None

    def close(self):
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._writer is None:
            types = [arrow_type(h) or pa.string() for h in self.hints]
            self._schema = pa.schema([pa.field(n, t) for n, t in zip(self.columns, types)])
            self._writer = pq.ParquetWriter(str(self.path), self._schema)
        self._writer.close()


def open_sink(fmt: str, path: Path, columns: list[str], header: bool, hints: list[str | None] | None) -> _Sink:
    if fmt in ("csv", "tsv"):
        return _CsvSink(path, columns, header, hints, delimiter_of(fmt))
    if fmt == "jsonl":
        return _JsonlSink(path, columns, header, hints)
    return _ParquetSink(path, columns, header, hints)


# -- reading files -------------------------------------------------------------------------------


class Source:
    """Rows of a file, in batches. ``columns`` is None for a CSV without header."""

    columns: list[str] | None = None
    width: int = 0

    def arrow_types(self) -> list | None:
        """Column types for ``mode: replace`` (None: all text)."""
        return None

    def batches(self) -> Iterator[list[tuple]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _first_csv_record(path: Path, delimiter: str) -> list[str] | None:
    with open(path, encoding="utf-8", newline="") as fh:
        return next(csv.reader(fh, delimiter=delimiter), None)


class CsvSource(Source):
    def __init__(self, path: Path, delimiter: str, header: bool, batch_size: int):
        self.path, self.delimiter, self.header = path, delimiter, header
        first = _first_csv_record(path, delimiter)
        self.empty = first is None
        self.width = len(first or [])
        self.columns = list(first) if header and first is not None else None
        self._names = self.columns or [f"c{i}" for i in range(self.width)]

    def batches(self):
        import pyarrow as pa
        import pyarrow.csv as pcsv

        if self.empty:
            return
        unique = [f"c{i}" for i in range(self.width)]
        reader = pcsv.open_csv(
            str(self.path),
            read_options=pcsv.ReadOptions(
                block_size=4 * COPY_BLOCK_SIZE, column_names=unique, skip_rows=1 if self.header else 0
            ),
            parse_options=pcsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True),
            convert_options=pcsv.ConvertOptions(
                column_types={name: pa.string() for name in unique},
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                null_values=[""],
            ),
        )
        for batch in reader:
            if batch.num_rows:
                yield list(zip(*(column.to_pylist() for column in batch.columns)))


class JsonlSource(Source):
    """Rows of a JSON Lines file; nested values (objects, arrays) stay Python objects."""

    def __init__(self, path: Path, batch_size: int):
        self.path, self.batch_size = path, batch_size
        self.columns = []
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if line.strip():
                    self.columns = list(self._record(line, number))
                    break
        self.width = len(self.columns)
        self._first: list[tuple] | None = None

    @staticmethod
    def _record(line: str, number: int) -> dict:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {number} is not valid JSON: {exc}") from None
        if not isinstance(record, dict):
            raise ValueError(f"line {number} is not a JSON object")
        return record

    def _read(self) -> Iterator[list[tuple]]:
        columns = self.columns
        known = set(columns)
        batch: list[tuple] = []
        with open(self.path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                record = self._record(line, number)
                if not known.issuperset(record):
                    extra = ", ".join(sorted(set(record) - known))
                    raise ValueError(f"line {number} has keys the first record does not have: {extra}")
                batch.append(tuple(record.get(c) for c in columns))
                if len(batch) >= self.batch_size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def arrow_types(self):
        import pyarrow as pa

        batches = self._read()
        self._first = next(batches, [])
        self._rest = batches
        types = []
        for values in zip(*self._first) if self._first else [[] for _ in self.columns]:
            array = _infer_array(list(values), None)
            types.append(pa.string() if pa.types.is_null(array.type) else array.type)
        return types

    def batches(self):
        if self._first is None:
            yield from self._read()
            return
        if self._first:
            yield self._first
        yield from self._rest


def _plain(value: Any) -> Any:
    return _json_text(value) if isinstance(value, (dict, list)) else value


class ParquetSource(Source):
    def __init__(self, path: Path, batch_size: int):
        import pyarrow.parquet as pq

        self.path, self.batch_size = path, batch_size
        self.file = pq.ParquetFile(str(path))
        self.schema = self.file.schema_arrow
        self.columns = list(self.schema.names)
        self.width = len(self.columns)

    def arrow_types(self):
        return list(self.schema.types)

    def record_batches(self):
        return self.file.iter_batches(batch_size=self.batch_size)

    def batches(self):
        for batch in self.record_batches():
            if batch.num_rows:
                yield list(zip(*(column.to_pylist() for column in batch.columns)))

    def close(self):
        self.file.close()


def open_source(fmt: str, path: Path, header: bool, batch_size: int) -> Source:
    if fmt in ("csv", "tsv"):
        return CsvSource(path, delimiter_of(fmt), header, batch_size)
    if fmt == "jsonl":
        return JsonlSource(path, batch_size)
    return ParquetSource(path, batch_size)


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


class DatabaseConnector(ConnectorBase):
    """Base of the ``db`` connectors.

    Drivers implement :meth:`_open` (a new DB-API connection; ``first`` is an already
    open one to derive from or share) and may override the cursor hooks, the native
    ``export``/``load`` paths and :meth:`_is_timeout`/:meth:`_is_broken`.
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
        self._secrets = Scrubber(self._secret_values())

    def _secret_values(self) -> list[str]:
        found: list[str] = []
        for values, schema in ((self.config, self.config_schema), (self.options, self.options_schema)):
            for key, value in values.items():
                if not isinstance(value, str) or not value:
                    continue
                declared = (schema or {}).get(key)
                if (declared is not None and declared.secret) or is_secret_key(key):
                    found.append(value)
                found.extend(url_passwords(value))
        return found

    # -- errors -------------------------------------------------------------------------

    def error(self, message: str, cls: type[ConnectorError] = ConnectorError, hint: str | None = None) -> ConnectorError:
        scrub = self._secrets.scrub
        return super().error(scrub(message), cls, hint=scrub(hint) if hint else None)

    def _is_timeout(self, exc: BaseException) -> bool:
        return False

    def _is_broken(self, conn: Any) -> bool:
        return False

    def _fail(self, action: str, exc: BaseException) -> ConnectorError:
        detail = str(exc).strip() or type(exc).__name__
        cls = ConnectorTimeout if self._is_timeout(exc) else ConnectorError
        return self.error(f"{action} failed: {detail}", cls)

    # -- connections ---------------------------------------------------------------------

    def _open(self, first: Any | None) -> Any:
        raise NotImplementedError

    def _close_connection(self, conn: Any) -> None:
        conn.close()

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
            try:
                conn = self._open(first.conn if first is not None else None)
            except AetherflowError:
                raise
            except Exception as exc:
                raise self._fail("connect", exc) from exc
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
        with self._guard(self._session(), action) as session:
            yield session

    @contextmanager
    def _guard(self, session: _Session, action: str) -> Iterator[_Session]:
        with session.lock:
            try:
                yield session
            except AetherflowError:
                raise
            except Exception as exc:
                if self._is_broken(session.conn):
                    self._discard(session)
                elif session.depth == 0:
                    self._abandon_transaction(session.conn)
                raise self._fail(action, exc) from exc

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

    def _begin(self, conn: Any) -> None:
        conn.execute("BEGIN")

    def _commit(self, conn: Any) -> None:
        conn.execute("COMMIT")

    def _rollback(self, conn: Any) -> None:
        conn.execute("ROLLBACK")

    @staticmethod
    def _columns(cursor: Any) -> list[str]:
        return [d[0] for d in cursor.description or ()]

    def _hints(self, cursor: Any) -> list[str | None] | None:
        return None

    def _stream(self, session: _Session, sql: str, params: Params, batch_size: int) -> Iterator[tuple[ResultColumns, list[tuple]]]:
        """Batches of a query's rows; yields at least once (an empty batch for no rows)."""
        cursor = self._run(session.conn, sql, params)
        try:
            columns = ResultColumns(self._columns(cursor), self._hints(cursor))
            batch = cursor.fetchmany(batch_size)
            yield columns, [tuple(r) for r in batch]
            while batch:
                batch = cursor.fetchmany(batch_size)
                if batch:
                    yield columns, [tuple(r) for r in batch]
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
        self, sql: str, params: Params = None, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> Iterator[tuple[list[str], list[tuple]]]:
        """``(columns, rows)`` batches of at most ``batch_size`` rows, streamed: the
        whole result is never held in memory. Close the iterator (or exhaust it) to
        release the connection."""
        with closing(self._batches("query", sql, params, batch_size)) as batches:
            for columns, rows in batches:
                if rows:
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
            with self._guard(session, "begin transaction"):
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
                with self._guard(session, "commit"):
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
        format: str,
        header: bool = True,
        progress: ProgressCallback | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> dict[str, Any]:
        """Write a query's result to ``path`` as csv, tsv, jsonl or parquet, streamed in
        batches. Returns ``{"rows": n, "columns": [...]}``. The caller owns ``path``
        (it writes to a temporary name and renames)."""
        fmt = _check_format(format)
        target = Path(path)
        rows = 0
        names: list[str] = []
        sink: _Sink | None = None
        action = f"extract to '{display_name(target)}'"
        try:
            with closing(self._batches(action, sql, params, batch_size)) as batches:
                for columns, batch in batches:
                    with self.translate(action):
                        if sink is None:
                            names = columns.names
                            sink = open_sink(fmt, target, names, header, columns.hints)
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

    def load(
        self,
        table: str,
        path: str | os.PathLike,
        *,
        format: str,
        header: bool = True,
        mode: str = "append",
        progress: ProgressCallback | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> int:
        """Load a csv, tsv, jsonl or parquet file into ``table`` in one transaction.

        ``append`` adds rows; ``truncate`` empties the table first; ``replace`` drops
        it and creates it from the file's columns (Parquet and JSON Lines types map to
        SQL types, CSV columns become text). ``table`` is used as written (quote it
        yourself if it needs quoting). Returns the number of rows loaded."""
        fmt = _check_format(format)
        if mode not in LOAD_MODES:
            raise self.error(f"unknown load mode {mode!r}; expected one of {', '.join(LOAD_MODES)}", ConnectorConfigError)
        source_path = Path(path)
        action = f"load {table} from '{source_path.name}'"
        with self.translate(action):
            source = open_source(fmt, source_path, header, batch_size)
        try:
            with self.transaction():
                with self.translate(action):
                    self._prepare_table(table, source, mode, action)
                with self.translate(action):
                    return self._load_rows(table, source, fmt, source_path, progress, action)
        finally:
            source.close()

    def _prepare_table(self, table: str, source: Source, mode: str, action: str) -> None:
        if mode == "truncate":
            self.execute(self._truncate_sql(table))
        elif mode == "replace":
            if not source.columns:
                raise self.error(
                    f"{action}: mode 'replace' needs the file's column names (a header line, JSON Lines or Parquet)",
                    ConnectorConfigError,
                )
            types = source.arrow_types()
            columns = []
            for index, name in enumerate(source.columns):
                sql_type = self.sql_types["string"] if types is None else self._sql_type(types[index])
                columns.append(f"{quote_ident(name)} {sql_type}")
            self.execute(f"DROP TABLE IF EXISTS {table}")
            self.execute(f"CREATE TABLE {table} ({', '.join(columns)})")

    def _truncate_sql(self, table: str) -> str:
        return f"DELETE FROM {table}"

    def _sql_type(self, arrow_type) -> str:
        category, params = type_category(arrow_type)
        return self.sql_types[category].format(*params)

    def _insert_sql(self, table: str, source: Source) -> str:
        target = table
        if source.columns:
            target += f" ({', '.join(quote_ident(c) for c in source.columns)})"
        marks = ", ".join([self.placeholder] * source.width)
        return f"INSERT INTO {target} VALUES ({marks})"

    def _adapt_rows(self, rows: list[tuple], source: Source) -> list[tuple]:
        """Rows of ``source`` converted to values the driver can bind."""
        return rows

    def _load_rows(self, table: str, source: Source, fmt: str, path: Path, progress: ProgressCallback | None, action: str) -> int:
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


def copy_file_blocks(path: Path, block_size: int = COPY_BLOCK_SIZE) -> Iterator[bytes]:
    """The bytes of ``path`` in blocks of ``block_size``."""
    with open(path, "rb", buffering=0) as fh:
        while block := fh.read(block_size):
            yield block


def arrow_batches_as_csv(batches: Iterable[Any]) -> Iterator[bytes]:
    """Arrow record batches as CSV text (no header) in which every non-NULL value is
    quoted, so NULL and the empty string stay distinct for ``COPY ... (FORMAT csv)``."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    options = pcsv.WriteOptions(include_header=False, quoting_style="all_valid")
    for batch in batches:
        if not batch.num_rows:
            continue
        arrays = [_csv_ready(column) for column in batch.columns]
        buffer = io.BytesIO()
        pcsv.write_csv(pa.RecordBatch.from_arrays(arrays, names=batch.schema.names), buffer, options)
        yield buffer.getvalue()
