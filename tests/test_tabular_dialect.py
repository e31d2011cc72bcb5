"""The CSV dialect of tabular files: what TableFormat accepts, and rows written by a sink
read back unchanged by a source (and by an independent reader, Python's csv module)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest

from aetherflow.core.tabular import TableFormat, open_encoded, open_sink, open_source, table_format, utf8_blocks, write_plain_csv

COLUMNS = ["id", "label", "note", "amount", "day", "at", "blob"]
# NULL, the empty string and text that looks like NULL must stay apart in every dialect.
ROWS = [
    (1, "plain", None, Decimal("1.50"), dt.date(2024, 1, 2), dt.datetime(2024, 1, 2, 3, 4, 5), b"\x00\x01"),
    (2, "", "NULL", Decimal("-0.25"), None, None, None),
    (3, "semi;colon, comma", 'say "hi"', None, dt.date(1999, 12, 31), dt.datetime(1999, 12, 31, 23, 59, 59, 250000), b""),
    (4, "line\nbreak\r\nand CR", "it's \\back\\slash", Decimal("0.00"), dt.date(2000, 2, 29), dt.datetime(2000, 2, 29, 0, 0), None),
    (5, "Grüße € \u2013 \u201equotes\u201c", "N", Decimal("12345678.90"), None, dt.datetime(2024, 6, 30, 12, 0), b"\xff"),
]

DIALECTS = {
    "default": {},
    "semicolon": {"delimiter": ";"},
    "cp1252": {"delimiter": ";", "encoding": "cp1252"},
    "custom_null": {"null": "NULL"},
    "backslash_n": {"null": "\\N"},
    "bom": {"encoding": "utf-8-sig"},
    "crlf": {"line_terminator": "crlf"},
    "single_quote_escaped": {"quote": "'", "escape": "\\", "null": "<null>"},
    "pipe_doubled_single_quote": {"delimiter": "|", "quote": "'"},
    "tab": {"delimiter": "\t", "null": "\\N"},
}


def expected_text(row: tuple) -> tuple:
    """A row as the text a CSV file holds (the source reads every field as text)."""
    out = []
    for value in row:
        if value is None:
            out.append(None)
        elif isinstance(value, bytes):
            out.append("\\x" + value.hex())
        elif isinstance(value, dt.datetime):
            out.append(value.strftime("%Y-%m-%d %H:%M:%S.%f"))
        else:
            out.append(str(value))
    return tuple(out)


def write(path, fmt, columns=COLUMNS, rows=ROWS, hints=None):
    sink = open_sink(fmt, path, columns, hints)
    try:
        sink.write(list(rows))
    finally:
        sink.close()


def read(path, fmt, batch_size=1000):
    source = open_source(fmt, path, batch_size)
    try:
        return source.columns, [row for batch in source.batches() for row in batch]
    finally:
        source.close()


@pytest.mark.parametrize("name", DIALECTS)
def test_rows_round_trip_through_every_dialect(tmp_path, name):
    fmt = TableFormat("csv", **DIALECTS[name])
    path = tmp_path / "t.csv"
    write(path, fmt)
    columns, rows = read(path, fmt)
    assert columns == COLUMNS
    assert rows == [expected_text(r) for r in ROWS]


@pytest.mark.parametrize("name", [n for n in DIALECTS if DIALECTS[n].get("null", "") == ""])
def test_an_independent_reader_sees_the_same_fields(tmp_path, name):
    """Python's csv module, told the same dialect, reads what the sink wrote (it cannot
    tell NULL from '' when NULL is an empty field, so only the text is compared)."""
    fmt = TableFormat("csv", **DIALECTS[name])
    path = tmp_path / "t.csv"
    write(path, fmt)
    with open(path, encoding="utf-8-sig" if fmt.utf8 else fmt.encoding, newline="") as fh:
        records = list(csv.reader(fh, delimiter=fmt.delimiter, quotechar=fmt.quote, escapechar=fmt.escape, doublequote=fmt.doubled_quotes))
    assert records[0] == COLUMNS
    assert records[1:] == [["" if v is None else v for v in expected_text(r)] for r in ROWS]


def test_file_bytes_follow_the_dialect(tmp_path):
    path = tmp_path / "t.csv"
    write(path, TableFormat("csv", delimiter=";", encoding="cp1252", null="NULL", line_terminator="\r\n"), ["a", "b"], [("€", None), ("", "x;y")])
    assert path.read_bytes() == b'a;b\r\n"\x80";NULL\r\n"";"x;y"\r\n'

    write(path, TableFormat("csv", encoding="utf-8-sig"), ["a"], [("é",)])
    assert path.read_bytes() == b'\xef\xbb\xbfa\n"\xc3\xa9"\n'

    write(path, TableFormat("csv", quote="'", escape="\\", null="NIL"), ["a", "b", "c"], [("it's", None, ""), ("a\\b", "plain", "NIL")])
    assert path.read_bytes() == b"a,b,c\n'it\\'s',NIL,\n'a\\\\b',plain,'NIL'\n"


def test_dates_and_timestamps_use_their_patterns_both_ways(tmp_path):
    fmt = TableFormat("csv", delimiter=";", date_format="%d.%m.%Y", timestamp_format="%d.%m.%Y %H:%M")
    path = tmp_path / "t.csv"
    write(path, fmt, ["day", "at", "text"], [(dt.date(2024, 12, 31), dt.datetime(2024, 1, 2, 3, 4), "05.06.2007"), (None, None, "not a date")])
    assert path.read_text() == 'day;at;text\n"31.12.2024";"02.01.2024 03:04";"05.06.2007"\n;;"not a date"\n'
    # Reading, a field matching a pattern becomes ISO 8601 (what databases read); other text stays.
    _, rows = read(path, fmt)
    assert rows == [("2024-12-31", "2024-01-02 03:04:00", "2007-06-05"), (None, None, "not a date")]


def test_a_bom_is_skipped_when_reading_utf8_whatever_the_declared_flavour(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xef\xbb\xbfname,n\nx,1\n")
    for encoding in ("utf-8", "utf-8-sig"):
        assert read(path, TableFormat("csv", encoding=encoding)) == (["name", "n"], [("x", "1")])
    assert b"".join(utf8_blocks(path)) == b"name,n\nx,1\n"


def test_cp1252_text_is_read_and_reencoded_as_utf8(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("k;v\n1;Grüße €\n".encode("cp1252"))
    fmt = TableFormat("csv", delimiter=";", encoding="cp1252")
    assert read(path, fmt) == (["k", "v"], [("1", "Grüße €")])
    assert b"".join(utf8_blocks(path, "cp1252", block_size=3)) == "k;v\n1;Grüße €\n".encode()


def test_bad_bytes_and_missing_characters_are_clear_errors(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"a\n\x81\n")  # 0x81 is unassigned in cp1252
    with pytest.raises(ValueError, match=r"not valid cp1252: byte 0x81 near offset 2"):
        list(utf8_blocks(path, "cp1252"))
    path.write_bytes(b"\xe9t\xe9\nx\n")  # latin-1 text read as UTF-8: in the header line
    with pytest.raises(ValueError, match=r"not valid UTF-8 \(invalid continuation byte\); set encoding"):
        read(path, TableFormat("csv"))
    path.write_bytes(b"a\n" + b"fine\n" * 10_000 + b"\xe9t\xe9\n")  # in a row, beyond the header's first read
    with pytest.raises(ValueError, match="not valid UTF-8; set encoding"):
        read(path, TableFormat("csv"))
    with pytest.raises(ValueError, match=r"character '✓' \(U\+2713\) cannot be written in cp1252"):
        write(tmp_path / "out.csv", TableFormat("csv", encoding="cp1252"), ["a"], [("ok ✓",)])


def test_an_encoded_file_is_written_in_large_blocks_whatever_the_writes(tmp_path):
    path = tmp_path / "t.txt"
    with open_encoded(path, "cp1252") as fh:
        for char in "Grüße € " * 1000:
            fh.write(char.encode())  # multi-byte characters arrive in pieces across writes too
    assert path.read_bytes() == ("Grüße € " * 1000).encode("cp1252")


def test_a_plain_copy_is_what_every_reader_knows(tmp_path):
    src = tmp_path / "in.csv"
    src.write_bytes("id;day;name\n1;31.12.2024;Müller\n2;NULL;\n".encode("cp1252"))
    fmt = TableFormat("csv", delimiter=";", encoding="cp1252", null="NULL", date_format="%d.%m.%Y")
    plain = write_plain_csv(open_source(fmt, src, 10), tmp_path / "plain.csv")
    assert plain == TableFormat("csv")
    assert (tmp_path / "plain.csv").read_text(encoding="utf-8") == 'id,day,name\n"1","2024-12-31","Müller"\n"2",,""\n'


def test_source_batches_are_bounded_by_batch_size(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("n\n" + "".join(f"{i}\n" for i in range(2500)))
    source = open_source(TableFormat("csv"), path, 1000)
    assert [len(b) for b in source.batches()] == [1000, 1000, 500]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"delimiter": ";;"}, "delimiter must be one ASCII character"),
        ({"delimiter": "\\t"}, r'write a tab as "\\t"'),
        ({"delimiter": "§"}, "delimiter must be one ASCII character"),
        ({"quote": "\n"}, "quote must be one ASCII character other than a line break"),
        ({"delimiter": "'", "quote": "'"}, "must be different characters"),
        ({"escape": ",", "delimiter": ","}, "must be different characters"),
        ({"encoding": "cp-1252x"}, "unknown text encoding 'cp-1252x'"),
        ({"encoding": "base64"}, "unknown text encoding 'base64'"),
        ({"null": "a,b"}, "null must be text without line breaks, the delimiter"),
        ({"null": "\\N", "escape": "\\"}, "the escape character"),
        ({"line_terminator": "\r"}, "line_terminator must be"),
        ({"date_format": "dd.mm.yyyy"}, "date_format must be a strftime pattern"),
    ],
)
def test_bad_dialect_options_are_refused_naming_the_option(options, message):
    with pytest.raises(ValueError, match=message):
        TableFormat("csv", **options)


def test_dialect_values_are_normalised():
    fmt = table_format("tsv", False, encoding="CP1252", line_terminator="CRLF", escape='"', null=None, date_format="")
    normalised = (fmt.delimiter, fmt.encoding, fmt.line_terminator, fmt.escape, fmt.null, fmt.date_format, fmt.header)
    assert normalised == ("\t", "cp1252", "\r\n", None, "", None, False)
    assert TableFormat("csv", encoding="utf8").encoding == "utf-8" and TableFormat("csv", encoding="utf_8_sig").utf8


def test_dialect_options_belong_to_csv_and_tsv_only():
    with pytest.raises(ValueError, match="delimiter, encoding applies to csv and tsv files only, not to parquet"):
        TableFormat("parquet", delimiter=";", encoding="cp1252")
    assert TableFormat("jsonl").encoding == "utf-8"


def test_header_names_are_quoted_only_when_they_must_be(tmp_path):
    path = tmp_path / "t.csv"
    write(path, TableFormat("csv", delimiter=";"), ["plain", "semi;colon", 'q"uote', ""], [(1, 2, 3, 4)])
    assert io.StringIO(path.read_text()).readline() == 'plain;"semi;colon";"q""uote";""\n'
