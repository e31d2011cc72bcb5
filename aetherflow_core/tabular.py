"""Tabular files: CSV, TSV, JSON Lines and Parquet, read and written in batches of rows.

This is the format layer the ``db`` family streams through (``db_extract`` writes a
query's rows with a sink, ``db_load`` reads a file's rows with a source); it knows
nothing of database connections. pyarrow does CSV/TSV and Parquet (the standard
``csv`` module cannot tell NULL from an empty string, pyarrow can); the ``json``
module does JSON Lines.

Conventions: CSV is RFC 4180 with ``"`` quoting; NULL is an empty unquoted field and
an empty string is ``""``; TSV is the same dialect with a tab delimiter; JSON Lines
holds one object per row. A :class:`TableFormat` names the format and how it is laid
out; sinks and sources take one, so layout options travel with it.

Column types: drivers describe result columns with a small vocabulary of type hints
(``"int64"``, ``"decimal(12,2)"``, ``"timestamptz"``, ``"json"``, ...; None when
unknown), mapped to Arrow types by :func:`arrow_type`. They fix the Parquet schema up
front, so a column that is NULL in the first batch still gets its type.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

FORMATS = ("csv", "tsv", "jsonl", "parquet")

#: Buffer size of file reads and writes, and of the blocks a file is copied in.
BLOCK_SIZE = 1 << 20

_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def format_from_path(path: str | os.PathLike) -> str | None:
    """The file format its extension names (``.csv``, ``.tsv``, ``.jsonl``, ``.parquet``, ...)."""
    return _EXTENSIONS.get(Path(path).suffix.lower())


@dataclass(frozen=True)
class TableFormat:
    """How a tabular file is laid out: its format and, for CSV/TSV, its header line."""

    name: str
    header: bool = True

    def __post_init__(self) -> None:
        if self.name not in FORMATS:
            raise ValueError(f"unknown file format {self.name!r}; expected one of {', '.join(FORMATS)}")

    @property
    def delimited(self) -> bool:
        """CSV or TSV (text with a delimiter), as opposed to JSON Lines or Parquet."""
        return self.name in ("csv", "tsv")

    @property
    def delimiter(self) -> str:
        return "\t" if self.name == "tsv" else ","


def table_format(format: str | TableFormat, header: bool = True) -> TableFormat:
    """``format`` as a :class:`TableFormat`: a format name with ``header``, or one given whole.
    An unknown name raises :class:`ValueError`."""
    return format if isinstance(format, TableFormat) else TableFormat(format, header)


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


def json_text(value: Any) -> str | None:
    """``value`` as JSON text (a string stays as it is; None stays None)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return _dumps_row(value) if isinstance(value, dict) else json.dumps(json_value(value), ensure_ascii=False, separators=(",", ":"))


# -- column types ----------------------------------------------------------------------------


def arrow_type(hint: str | None):
    """The Arrow type of a column type hint (None when the hint is None or unknown)."""
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
        values = [json_text(v) for v in values]
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
        return json_text(value)
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


class Sink:
    """Writes batches of rows to a file of one format."""

    def __init__(self, path: Path, columns: list[str], hints: list[str | None] | None):
        self.path = path
        self.columns = list(columns)
        self.hints = list(hints) if hints else [None] * len(columns)

    def write(self, rows: list[Sequence[Any]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class CsvSink(Sink):
    def __init__(self, path, columns, hints, fmt: TableFormat):
        super().__init__(path, columns, hints)
        delimiter = fmt.delimiter
        import pyarrow.csv as pcsv

        self._pcsv = pcsv
        self._fh = open(path, "wb", buffering=BLOCK_SIZE)
        self._options = pcsv.WriteOptions(include_header=False, delimiter=delimiter, quoting_style="needed")
        if fmt.header and self.columns:
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


class JsonlSink(Sink):
    def __init__(self, path, columns, hints):
        super().__init__(path, columns, hints)
        self._fh = open(path, "w", encoding="utf-8", newline="\n", buffering=BLOCK_SIZE)

    def write(self, rows):
        columns = self.columns
        lines = [_dumps_row(dict(zip(columns, row))) for row in rows]
        if lines:
            self._fh.write("\n".join(lines))
            self._fh.write("\n")

    def close(self):
        self._fh.close()


class ParquetSink(Sink):
    """Parquet through pyarrow. The schema is fixed by the first batch (and the driver's
    type hints); each batch becomes one row group, so memory stays bounded by the batch
    size (bigger batches: bigger row groups, more memory)."""

    def __init__(self, path, columns, hints):
        super().__init__(path, columns, hints)
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
            values = [json_text(v) for v in values]
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


def open_sink(fmt: TableFormat, path: Path, columns: list[str], hints: list[str | None] | None = None) -> Sink:
    """A writer of rows with ``columns`` to a new file ``path``; ``hints`` are the
    columns' type hints (see :func:`arrow_type`)."""
    if fmt.delimited:
        return CsvSink(path, columns, hints, fmt)
    if fmt.name == "jsonl":
        return JsonlSink(path, columns, hints)
    return ParquetSink(path, columns, hints)


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
    def __init__(self, path: Path, fmt: TableFormat, batch_size: int):
        self.path, self.format = path, fmt
        self.delimiter, self.header = fmt.delimiter, fmt.header
        first = _first_csv_record(path, self.delimiter)
        self.empty = first is None
        self.width = len(first or [])
        self.columns = list(first) if self.header and first is not None else None
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
                block_size=4 * BLOCK_SIZE, column_names=unique, skip_rows=1 if self.header else 0
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


def open_source(fmt: TableFormat, path: Path, batch_size: int) -> Source:
    """A reader of the rows of ``path`` in batches of at most ``batch_size``."""
    if fmt.delimited:
        return CsvSource(path, fmt, batch_size)
    if fmt.name == "jsonl":
        return JsonlSource(path, batch_size)
    return ParquetSource(path, batch_size)


# -- bulk copies ---------------------------------------------------------------------------------


def copy_file_blocks(path: Path, block_size: int = BLOCK_SIZE) -> Iterator[bytes]:
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
