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

CSV dialect: a :class:`TableFormat` also carries a CSV/TSV file's dialect --
``delimiter``, ``quote``, ``escape``, ``encoding``, ``null``, ``line_terminator``,
``date_format``, ``timestamp_format`` (:data:`DIALECT_OPTIONS`). Whatever the encoding,
the bytes that pass between this module and a database are UTF-8:
:func:`open_encoded` writes them in the file's encoding and :func:`utf8_blocks` reads
a file back as UTF-8, so a driver's native path (COPY) only has to know the dialect's
characters. In every dialect a quoted field is never NULL: NULL is the ``null`` text
unquoted, as PostgreSQL's and DuckDB's CSV readers see it.

Column types: drivers describe result columns with a small vocabulary of type hints
(``"int64"``, ``"decimal(12,2)"``, ``"timestamptz"``, ``"json"``, ...; None when
unknown), mapped to Arrow types by :func:`arrow_type`. They fix the Parquet schema up
front, so a column that is NULL in the first batch still gets its type.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import datetime as _dt
import io
import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

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

#: The CSV/TSV dialect options a :class:`TableFormat` takes, with a line of help each
#: (the step inputs of the same names show it).
DIALECT_OPTIONS = {
    "delimiter": "field separator, one ASCII character (default: ',' for csv, a tab for tsv)",
    "quote": "quote character, one ASCII character (default: '\"')",
    "escape": "character that escapes a quote (or itself) inside a quoted field (default: none, a quote is doubled)",
    "encoding": "text encoding: utf-8 (default), utf-8-sig (with a byte order mark), cp1252, latin-1, ...",
    "null": "text of a NULL value, never quoted (default: an empty field; an empty string is then written \"\")",
    "line_terminator": "end of line when writing: '\\n' (default) or '\\r\\n' (also: lf, crlf); reading accepts both",
    "date_format": "strftime pattern of dates, such as %d.%m.%Y (default: ISO 8601, 2024-12-31)",
    "timestamp_format": "strftime pattern of timestamps, such as %d.%m.%Y %H:%M:%S (default: ISO 8601)",
}

_LINE_TERMINATORS = {"\n": "\n", "\r\n": "\r\n", "lf": "\n", "crlf": "\r\n"}
UTF8_BOM = codecs.BOM_UTF8


def format_from_path(path: str | os.PathLike) -> str | None:
    """The file format its extension names (``.csv``, ``.tsv``, ``.jsonl``, ``.parquet``, ...)."""
    return _EXTENSIONS.get(Path(path).suffix.lower())


def _one_ascii_character(option: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) != 1 or not value.isascii() or value in "\r\n":
        hint = ' (write a tab as "\\t", in double quotes in YAML)' if value in ("\\t", "tab") else ""
        raise ValueError(f"{option} must be one ASCII character other than a line break, not {value!r}{hint}")
    return value


def _text_encoding(value: Any) -> str:
    """``value`` as the canonical name of a text codec Python knows (``cp1252``, ``utf-8-sig``)."""
    try:
        name = codecs.lookup(str(value)).name
        "".encode(name)  # refuses bytes-to-bytes codecs such as base64
    except LookupError:
        raise ValueError(f"unknown text encoding {value!r}; for example utf-8, utf-8-sig, cp1252, latin-1") from None
    return name


@dataclass(frozen=True)
class TableFormat:
    """How a tabular file is laid out: its format and, for CSV/TSV, its header line and
    dialect (see :data:`DIALECT_OPTIONS`). Values are checked and normalised when the
    format is made (``crlf`` becomes ``"\\r\\n"``, an ``escape`` equal to ``quote`` means
    doubling, an encoding gets its codec's canonical name); a bad one raises
    :class:`ValueError` naming the option."""

    name: str
    header: bool = True
    delimiter: str = ""  # empty: the format's own (',' or a tab)
    quote: str = '"'
    escape: str | None = None
    encoding: str = "utf-8"
    null: str = ""
    line_terminator: str = "\n"
    date_format: str | None = None
    timestamp_format: str | None = None

    def __post_init__(self) -> None:
        if self.name not in FORMATS:
            raise ValueError(f"unknown file format {self.name!r}; expected one of {', '.join(FORMATS)}")
        if not self.delimited:
            given = [f.name for f in dataclasses.fields(self) if f.name in DIALECT_OPTIONS and getattr(self, f.name) != f.default]
            if given:
                raise ValueError(f"{', '.join(given)} applies to csv and tsv files only, not to {self.name}")
            return
        put = object.__setattr__
        put(self, "delimiter", _one_ascii_character("delimiter", self.delimiter or ("\t" if self.name == "tsv" else ",")))
        put(self, "quote", _one_ascii_character("quote", self.quote))
        if self.escape in (None, "", self.quote):
            put(self, "escape", None)
        else:
            put(self, "escape", _one_ascii_character("escape", self.escape))
        if len({self.delimiter, self.quote, self.escape or self.quote}) < (3 if self.escape else 2):
            raise ValueError("delimiter, quote and escape must be different characters")
        put(self, "encoding", _text_encoding(self.encoding))
        if not isinstance(self.null, str) or any(c in self.null for c in ("\r", "\n", self.delimiter, self.quote, self.escape or "\n")):
            raise ValueError(f"null must be text without line breaks, the delimiter, the quote or the escape character, not {self.null!r}")
        terminator = _LINE_TERMINATORS.get(str(self.line_terminator).lower())
        if terminator is None:
            raise ValueError(f"line_terminator must be '\\n' or '\\r\\n' (or lf, crlf), not {self.line_terminator!r}")
        put(self, "line_terminator", terminator)
        for option in ("date_format", "timestamp_format"):
            pattern = getattr(self, option)
            if pattern in (None, ""):
                put(self, option, None)
            elif not isinstance(pattern, str) or "%" not in pattern:
                raise ValueError(f"{option} must be a strftime pattern such as %d.%m.%Y, not {pattern!r}")

    @property
    def delimited(self) -> bool:
        """CSV or TSV (text with a delimiter), as opposed to JSON Lines or Parquet."""
        return self.name in ("csv", "tsv")

    @property
    def utf8(self) -> bool:
        """The file's bytes are UTF-8 (with or without a byte order mark)."""
        return self.encoding in ("utf-8", "utf-8-sig")

    @property
    def formats_dates(self) -> bool:
        """Dates or timestamps are written (and read) in a pattern of their own."""
        return bool(self.date_format or self.timestamp_format)

    @property
    def doubled_quotes(self) -> bool:
        """A quote inside a quoted field is doubled (RFC 4180), not escaped."""
        return self.escape is None


def table_format(format: str | TableFormat, header: bool = True, **dialect: Any) -> TableFormat:
    """``format`` as a :class:`TableFormat`: a format name with ``header`` and the dialect
    options given (None means the default), or one given whole. A bad name or option
    raises :class:`ValueError`."""
    if isinstance(format, TableFormat):
        return format
    return TableFormat(format, header, **{key: value for key, value in dialect.items() if value is not None})


# -- encodings and dates -------------------------------------------------------------------------


class _Transcoder(io.RawIOBase):
    """The raw layer under a buffered writer: takes UTF-8 bytes, writes them to ``raw``
    in ``encoding``. A buffered writer above it calls it once per buffer, so text is
    transcoded in large blocks, not per row."""

    def __init__(self, raw: BinaryIO, encoding: str):
        super().__init__()
        self._raw = raw
        self._encoding = encoding
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._encoder = codecs.getincrementalencoder(encoding)()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._emit(self._decoder.decode(bytes(data)), final=False)
        return len(data)

    def _emit(self, text: str, final: bool) -> None:
        try:
            self._raw.write(self._encoder.encode(text, final))
        except UnicodeEncodeError as exc:
            char = exc.object[exc.start]
            raise ValueError(
                f"character {char!r} (U+{ord(char):04X}) cannot be written in {self._encoding}; "
                "choose an encoding that has it (utf-8 has every character)"
            ) from None

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._emit(self._decoder.decode(b"", True), final=True)
        finally:
            self._raw.close()
            super().close()


def open_encoded(path: str | os.PathLike, encoding: str = "utf-8") -> BinaryIO:
    """A new file ``path`` (truncated if it exists) that is written UTF-8 bytes and stores
    them in ``encoding``; ``utf-8-sig`` starts the file with a byte order mark. A
    character the encoding lacks raises :class:`ValueError` naming it."""
    encoding = _text_encoding(encoding)
    if encoding in ("utf-8", "utf-8-sig"):
        fh = open(path, "wb", buffering=BLOCK_SIZE)
        if encoding == "utf-8-sig":
            fh.write(UTF8_BOM)
        return fh
    return io.BufferedWriter(_Transcoder(open(path, "wb", buffering=0), encoding), BLOCK_SIZE)


def utf8_blocks(path: str | os.PathLike, encoding: str = "utf-8", block_size: int = BLOCK_SIZE) -> Iterator[bytes]:
    """The text of ``path``, stored in ``encoding``, as UTF-8 bytes in blocks of about
    ``block_size``; a byte order mark at the start is dropped. Bytes that are not valid
    in ``encoding`` raise :class:`ValueError` naming their offset."""
    encoding = _text_encoding(encoding)
    name = Path(path).name
    with open(path, "rb", buffering=0) as fh:
        if encoding in ("utf-8", "utf-8-sig"):
            block = fh.read(block_size)
            if block.startswith(UTF8_BOM):
                block = block[len(UTF8_BOM) :]
            while block:
                yield block
                block = fh.read(block_size)
            return
        decoder = codecs.getincrementaldecoder(encoding)()
        offset = 0
        while True:
            block = fh.read(block_size)
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"{name} is not valid {encoding}: byte 0x{exc.object[exc.start]:02x} near offset {offset + exc.start}; "
                    "set encoding to the one the file was written in"
                ) from None
            if text:
                yield text.lstrip("\ufeff").encode("utf-8") if offset == 0 else text.encode("utf-8")
            if not block:
                return
            offset += len(block)


def _formatted_dates(values: list[Any], fmt: TableFormat) -> list[Any] | None:
    """A column's values with dates and timestamps written in the format's patterns;
    None when the column holds none to rewrite (decided by its first non-NULL value)."""
    first = next((v for v in values if v is not None), None)
    if isinstance(first, _dt.datetime):
        pattern = fmt.timestamp_format
    elif isinstance(first, _dt.date):
        pattern = fmt.date_format
    else:
        return None
    if pattern is None:
        return None
    return [v.strftime(pattern) if isinstance(v, _dt.date) else v for v in values]


class _DateReader:
    """Rewrites fields written in a format's ``date_format`` / ``timestamp_format`` to
    ISO 8601, which every database reads: a field that matches a pattern exactly is a
    date (timestamp); any other field stays as it is."""

    def __init__(self, fmt: TableFormat):
        sample = _dt.datetime(2000, 9, 30, 23, 59, 59, 999999, tzinfo=_dt.timezone(_dt.timedelta(hours=-9, minutes=-30)))
        self.patterns = [(p, as_date) for p, as_date in ((fmt.date_format, True), (fmt.timestamp_format, False)) if p]
        # Longer fields cannot match (month and day names are the widest parts).
        self.longest = max(len(sample.strftime(p)) for p, _ in self.patterns) + 8

    def text(self, value: str | None) -> str | None:
        if value is None or len(value) > self.longest:
            return value
        for pattern, as_date in self.patterns:
            try:
                parsed = _dt.datetime.strptime(value, pattern)
            except ValueError:
                continue
            return parsed.date().isoformat() if as_date else parsed.isoformat(sep=" ")
        return value


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
    """An Arrow array of ``values``; mixed or unsupported values fall back to text.

    Values given as text (``str``, or UTF-8 ``bytes``) for a typed column -- a driver
    passing on the server's text -- are parsed by Arrow when every one of them reads as
    the hinted type."""
    import pyarrow as pa

    if hint == "json":
        values = [json_text(v) for v in values]
    target = arrow_type(hint)
    errors = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, TypeError, ValueError)
    try:
        return pa.array(values, type=target, from_pandas=False)
    except errors:
        pass
    if target is not None and not pa.types.is_string(target):
        try:
            return pa.array(values, type=pa.string(), from_pandas=False).cast(target)
        except errors:
            pass
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


# Delimiters that pyarrow's writer would leave unquoted inside numbers, dates and times.
_UNSAFE_FOR_ARROW = " .-+:/"


def _arrow_writes(fmt: TableFormat) -> bool:
    """Whether pyarrow's CSV writer can write ``fmt`` (it quotes with ``"`` only, doubling
    it, and quotes strings but not numbers or dates)."""
    return fmt.quote == '"' and fmt.doubled_quotes and not fmt.delimiter.isalnum() and fmt.delimiter not in _UNSAFE_FOR_ARROW


def _specials(fmt: TableFormat) -> set[str]:
    """Characters that make a field need quotes in ``fmt``."""
    return {fmt.delimiter, fmt.quote, "\r", "\n", *((fmt.escape,) if fmt.escape else ())}


def _quoted(text: str, fmt: TableFormat) -> str:
    if fmt.escape:
        text = text.replace(fmt.escape, fmt.escape * 2)
    return fmt.quote + text.replace(fmt.quote, (fmt.escape or fmt.quote) + fmt.quote) + fmt.quote


def header_line(columns: Sequence[str], fmt: TableFormat) -> str:
    """The header line of a CSV/TSV file in ``fmt``'s dialect, line terminator included;
    a name is quoted only when it has to be."""
    specials = _specials(fmt)
    fields = (_quoted(name, fmt) if name in ("", fmt.null) or any(c in name for c in specials) else name for name in map(str, columns))
    return fmt.delimiter.join(fields) + fmt.line_terminator


def render_csv(arrays: Sequence[Any], fmt: TableFormat):
    """Arrow arrays (one per column, of equal length) as the lines of a CSV file in any
    dialect, computed column-wise with Arrow kernels. A field is quoted when it holds a
    special character or reads like NULL; NULL is the ``null`` text. Returns a buffer."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for array in arrays:
        text = array if pa.types.is_string(array.type) else array.cast(pa.string())
        need = pc.equal(text, fmt.null)
        for char in _specials(fmt):
            need = pc.or_(need, pc.match_substring(text, char))
        body = pc.replace_substring(text, fmt.escape, fmt.escape * 2) if fmt.escape else text
        body = pc.replace_substring(body, fmt.quote, (fmt.escape or fmt.quote) + fmt.quote)
        columns.append(pc.if_else(need, pc.binary_join_element_wise(fmt.quote, body, fmt.quote, ""), text))
    lines = pc.binary_join_element_wise(*columns, fmt.delimiter, null_handling="replace", null_replacement=fmt.null)
    lines = pc.binary_join_element_wise(lines, "", fmt.line_terminator)
    offsets = memoryview(lines.buffers()[1]).cast("i")
    return lines.buffers()[2][offsets[lines.offset] : offsets[lines.offset + len(lines)]]


class CsvSink(Sink):
    """CSV/TSV in any dialect. pyarrow's writer does the usual ones (``"`` quoting, any
    delimiter, NULL text and line end); other quote and escape characters go through
    :func:`render_csv`. The file is written in the format's encoding."""

    def __init__(self, path, columns, hints, fmt: TableFormat):
        super().__init__(path, columns, hints)
        import pyarrow.csv as pcsv

        self.format = fmt
        self._pcsv = pcsv
        self._options = None
        if _arrow_writes(fmt):
            self._options = pcsv.WriteOptions(
                include_header=False, delimiter=fmt.delimiter, quoting_style="needed", null_string=fmt.null, eol=fmt.line_terminator
            )
        self._fh = open_encoded(path, fmt.encoding)
        if fmt.header and self.columns:
            self._fh.write(header_line(self.columns, fmt).encode("utf-8"))

    def write(self, rows):
        import pyarrow as pa

        if not rows:
            return
        arrays = []
        for values, hint in zip(zip(*rows), self.hints):
            values = list(values)
            if self.format.formats_dates:
                formatted = _formatted_dates(values, self.format)
                if formatted is not None:
                    values, hint = formatted, None
            arrays.append(_csv_ready(_infer_array(values, hint)))
        if self._options is None:
            self._fh.write(render_csv(arrays, self.format))
            return
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


def _first_csv_record(path: Path, fmt: TableFormat) -> list[str] | None:
    # utf-8-sig reads UTF-8 with or without a byte order mark.
    encoding = "utf-8-sig" if fmt.utf8 else fmt.encoding
    try:
        with open(path, encoding=encoding, newline="") as fh:
            reader = csv.reader(fh, delimiter=fmt.delimiter, quotechar=fmt.quote, escapechar=fmt.escape, doublequote=fmt.doubled_quotes)
            return next(reader, None)
    except UnicodeDecodeError as exc:
        label = "UTF-8" if fmt.utf8 else fmt.encoding
        raise ValueError(f"{path.name} is not valid {label} ({exc.reason}); set encoding to the one the file was written in") from None


class CsvSource(Source):
    """Rows of a CSV/TSV file in any dialect, every field as text (NULL where the field
    is the dialect's ``null`` text, unquoted), read by pyarrow in blocks of
    :data:`BLOCK_SIZE` bytes and handed out in batches of at most ``batch_size`` rows,
    so memory stays bounded whatever the file's size."""

    def __init__(self, path: Path, fmt: TableFormat, batch_size: int):
        self.path, self.format, self.batch_size = path, fmt, max(1, batch_size)
        self.delimiter, self.header = fmt.delimiter, fmt.header
        first = _first_csv_record(path, fmt)
        self.empty = first is None
        self.width = len(first or [])
        self.columns = list(first) if self.header and first is not None else None
        self._names = self.columns or [f"c{i}" for i in range(self.width)]

    def record_batches(self) -> Iterator[Any]:
        """The rows as Arrow record batches of text columns; fields written in the
        dialect's date or timestamp pattern come out in ISO 8601."""
        import pyarrow as pa
        import pyarrow.csv as pcsv

        if self.empty:
            return
        fmt = self.format
        unique = [f"c{i}" for i in range(self.width)]
        dates = _DateReader(fmt) if fmt.formats_dates else None
        with open(self.path, "rb") as fh, self._utf8_errors():
            # One thread and 1 MiB blocks: bigger blocks or read-ahead threads multiply
            # the reader's memory without making it faster.
            reader = pcsv.open_csv(
                fh,
                read_options=pcsv.ReadOptions(
                    block_size=BLOCK_SIZE,
                    column_names=unique,
                    skip_rows=1 if self.header else 0,
                    use_threads=False,
                    encoding="utf8" if fmt.utf8 else fmt.encoding,
                ),
                parse_options=pcsv.ParseOptions(
                    delimiter=fmt.delimiter,
                    quote_char=fmt.quote,
                    double_quote=fmt.doubled_quotes,
                    escape_char=fmt.escape or False,
                    newlines_in_values=True,
                ),
                convert_options=pcsv.ConvertOptions(
                    column_types={name: pa.string() for name in unique},
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                    null_values=[fmt.null],
                ),
            )
            for batch in reader:
                for start in range(0, batch.num_rows, self.batch_size):
                    part = batch.slice(start, self.batch_size)
                    if dates is not None:
                        arrays = [pa.array([dates.text(v) for v in column.to_pylist()], pa.string()) for column in part.columns]
                        part = pa.RecordBatch.from_arrays(arrays, names=unique)
                    yield part

    @contextmanager
    def _utf8_errors(self) -> Iterator[None]:
        """pyarrow's "invalid UTF8 data" said in terms of the ``encoding`` option."""
        import pyarrow as pa

        try:
            yield
        except pa.ArrowInvalid as exc:
            if "UTF8" not in str(exc):
                raise
            raise ValueError(f"{self.path.name} is not valid UTF-8; set encoding to the one the file was written in (cp1252, latin-1, ...)") from None

    def batches(self):
        for batch in self.record_batches():
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


def write_plain_csv(source: CsvSource, target: Path) -> TableFormat:
    """Copy the rows of ``source`` to a new file ``target`` in the plain dialect (UTF-8,
    ``,``, ``"``, empty NULL, dates in ISO 8601), with a header line when the source has
    column names; returns the copy's format. For readers that know fewer dialects."""
    plain = TableFormat("csv", header=source.columns is not None)
    with open(target, "wb", buffering=BLOCK_SIZE) as fh:
        if source.columns is not None:
            fh.write(header_line(source.columns, plain).encode("utf-8"))
        for block in arrow_batches_as_csv(source.record_batches()):
            fh.write(block)
    return plain


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
