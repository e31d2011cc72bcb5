"""CSV dialects through db_extract and db_load on PostgreSQL and DuckDB: each dialect's
file is written by one database, loaded into both, and every value comes back equal."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from aetherflow.core.connectors.families.db import DatabaseConnector
from aetherflow.core.errors import ConnectorError, StepInputError
from aetherflow.core.steps.base import STEP_SUCCESS
from aetherflow.core.steps.builtin.db import DbExtract, DbLoad

COLUMNS = ["id", "amount", "label", "day", "stamp"]
PG_TYPES = "id integer PRIMARY KEY, amount numeric(12,2), label text, day date, stamp timestamp"
DUCK_TYPES = "id INTEGER, amount DECIMAL(12,2), label VARCHAR, day DATE, stamp TIMESTAMP"

# Text every dialect must carry: its own delimiter and quote characters, line breaks, a
# backslash, characters cp1252 has (but not latin-1: the euro sign, curly quotes), the
# empty string and text that reads like a NULL token -- all apart from NULL itself.
ROWS = [
    (1, Decimal("1.50"), "plain", dt.date(2024, 12, 31), dt.datetime(2024, 1, 2, 3, 4, 5, 250000)),
    (2, None, "", None, None),
    (3, Decimal("-0.01"), "NULL", dt.date(1999, 1, 1), dt.datetime(1999, 12, 31, 23, 59, 59)),
    (4, Decimal("12345678.90"), "semi;colon, comma|pipe\ttab", dt.date(2000, 2, 29), dt.datetime(2000, 2, 29, 12, 0)),
    (5, Decimal("0.00"), 'say "hi" and \'bye\'', dt.date(2024, 6, 1), dt.datetime(2024, 6, 1, 0, 0, 0, 1)),
    (6, Decimal("7.00"), "line\nbreak\r\nand back\\slash", dt.date(1970, 1, 1), dt.datetime(1970, 1, 1)),
    (7, Decimal("99.99"), "Grüße \u20ac \u201equoted\u201c \u2013 naïve", dt.date(2038, 1, 19), dt.datetime(2038, 1, 19, 3, 14, 7)),
    (8, None, None, None, None),
    (9, Decimal("3.00"), "N", dt.date(2001, 9, 9), dt.datetime(2001, 9, 9, 1, 46, 40)),
]

DIALECTS = {
    "semicolon": {"delimiter": ";"},
    "cp1252": {"delimiter": ";", "encoding": "cp1252"},
    "custom_null": {"null": "NULL"},
    "utf8_bom": {"encoding": "utf-8-sig"},
    "crlf_pipe": {"delimiter": "|", "line_terminator": "crlf", "null": "\\N"},
    "single_quote_backslash_escape": {"quote": "'", "escape": "\\", "null": "<null>"},
    "german_dates": {"delimiter": ";", "encoding": "cp1252", "date_format": "%d.%m.%Y", "timestamp_format": "%d.%m.%Y %H:%M:%S.%f"},
}


def check_bytes(name: str, data: bytes) -> None:
    """What the file of each dialect must look like, byte for byte where it matters."""
    first = data.split(b"\n", 1)[0]
    if name == "utf8_bom":
        assert data.startswith(b"\xef\xbb\xbfid,amount,label,day,stamp\n")
    else:
        assert not data.startswith(b"\xef\xbb\xbf")
    if name in ("cp1252", "german_dates"):
        assert first == b"id;amount;label;day;stamp"
        assert b"Gr\xfc\xdfe \x80 \x84quoted\x93 \x96 na\xefve" in data
        data.decode("cp1252")
    else:
        assert "Grüße €".encode() in data
    if name == "custom_null":
        assert b"\n8,NULL,NULL,NULL,NULL\n" in data and b',"NULL",' in data
    if name == "crlf_pipe":
        assert first == b"id|amount|label|day|stamp\r" and b"\r\n8|\\N|\\N|\\N|\\N\r\n" in data
    if name == "single_quote_backslash_escape":
        assert b"'say \"hi\" and \\'bye\\''" in data and b"8,<null>,<null>,<null>,<null>" in data
    if name == "german_dates":
        assert b"31.12.2024" in data and b"02.01.2024 03:04:05.250000" in data


def run(step_cls, ctx, **inputs):
    result = step_cls().run(ctx, step_cls.bind_inputs(inputs))
    assert result.status == STEP_SUCCESS
    return result.outputs


@pytest.fixture
def pg_tables(pg):
    """``(source, target)``: PostgreSQL tables of the test, the source filled with ROWS."""
    suffix = uuid.uuid4().hex[:8]
    source, target = f"dialect_src_{suffix}", f"dialect_dst_{suffix}"
    pg.execute(f"CREATE TABLE {source} ({PG_TYPES}); CREATE TABLE {target} ({PG_TYPES})")
    pg.executemany(f"INSERT INTO {source} VALUES (%s, %s, %s, %s, %s)", ROWS)
    yield source, target
    pg.execute(f"DROP TABLE {source}; DROP TABLE {target}")


def rows_of(db: DatabaseConnector, table: str) -> list[tuple]:
    return db.fetchall(f"SELECT {', '.join(COLUMNS)} FROM {table} ORDER BY id")[1]


@pytest.mark.parametrize("name", DIALECTS)
def test_postgres_file_loads_into_postgres_and_duckdb_unchanged(pg, duck, pg_tables, ctx_for, name):
    dialect = DIALECTS[name]
    source, target = pg_tables
    ctx = ctx_for(pg=pg, duck=duck)
    out = run(DbExtract, ctx, resource="pg", sql=f"SELECT * FROM {source} ORDER BY id", output="out.csv", **dialect)
    assert out["rows"] == len(ROWS) and out["columns"] == COLUMNS
    check_bytes(name, (ctx.workspace / "out.csv").read_bytes())

    assert run(DbLoad, ctx, resource="pg", table=target, input="out.csv", **dialect)["rows"] == len(ROWS)
    assert rows_of(pg, target) == ROWS

    duck.execute(f"CREATE TABLE landed ({DUCK_TYPES})")
    assert run(DbLoad, ctx, resource="duck", table="landed", input="out.csv", **dialect)["rows"] == len(ROWS)
    assert rows_of(duck, "landed") == ROWS


@pytest.mark.parametrize("name", DIALECTS)
def test_duckdb_file_loads_into_postgres_and_duckdb_unchanged(pg, duck, pg_tables, ctx_for, name):
    dialect = DIALECTS[name]
    _, target = pg_tables
    ctx = ctx_for(pg=pg, duck=duck)
    duck.execute(f"CREATE TABLE src ({DUCK_TYPES})")
    duck.executemany("INSERT INTO src VALUES (?, ?, ?, ?, ?)", ROWS)
    out = run(DbExtract, ctx, resource="duck", sql="SELECT * FROM src ORDER BY id", output="out.csv", **dialect)
    assert out["rows"] == len(ROWS) and out["columns"] == COLUMNS
    check_bytes(name, (ctx.workspace / "out.csv").read_bytes())

    assert run(DbLoad, ctx, resource="pg", table=target, input="out.csv", **dialect)["rows"] == len(ROWS)
    assert rows_of(pg, target) == ROWS

    duck.execute(f"CREATE TABLE landed ({DUCK_TYPES})")
    assert run(DbLoad, ctx, resource="duck", table="landed", input="out.csv", mode="truncate", **dialect)["rows"] == len(ROWS)
    assert rows_of(duck, "landed") == ROWS


def test_duckdb_creates_typed_columns_from_a_cp1252_file_with_german_dates(duck, ctx_for):
    ctx = ctx_for(duck=duck)
    (ctx.workspace / "in.csv").write_bytes("id;day;name\n1;31.12.2024;Müller €\n2;;\n".encode("cp1252"))
    run(DbLoad, ctx, resource="duck", table="people", input="in.csv", delimiter=";", encoding="cp1252", date_format="%d.%m.%Y")
    assert duck.fetchall("SELECT typeof(day), * FROM people ORDER BY id")[1] == [
        ("DATE", 1, dt.date(2024, 12, 31), "Müller €"),
        ("DATE", 2, None, None),
    ]


def test_postgres_uses_copy_for_every_dialect_without_date_patterns(pg, pg_tables, ctx_for, monkeypatch):
    """The native paths stay in use: only date patterns send PostgreSQL extracts through
    the generic streamed path."""
    source, _ = pg_tables
    ctx = ctx_for(pg=pg)
    generic = []
    original = DatabaseConnector._export

    def spy(self, *args, **kwargs):
        generic.append(args[3])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DatabaseConnector, "_export", spy)
    for name, dialect in DIALECTS.items():
        run(DbExtract, ctx, resource="pg", sql=f"SELECT * FROM {source}", output=f"{name}.csv", **dialect)
    assert [fmt.date_format for fmt in generic] == ["%d.%m.%Y"]


def test_a_bad_dialect_fails_before_the_query_runs(pg, ctx_for):
    ctx = ctx_for(pg=pg)
    with pytest.raises(StepInputError, match=r"step type 'db_extract': unknown text encoding 'cp-1252'"):
        run(DbExtract, ctx, resource="pg", sql="SELECT pg_sleep(30)", output="x.csv", encoding="cp-1252")
    with pytest.raises(StepInputError, match=r"step type 'db_load': delimiter applies to csv and tsv files only, not to parquet"):
        run(DbLoad, ctx, resource="pg", table="t", input="x.parquet", delimiter=";")


def test_characters_an_encoding_lacks_fail_the_extract_and_leave_no_file(pg, ctx_for):
    ctx = ctx_for(pg=pg)
    with pytest.raises(ConnectorError, match=r"character '✓' \(U\+2713\) cannot be written in cp1252"):
        run(DbExtract, ctx, resource="pg", sql="SELECT 'ok ✓' AS v", output="x.csv", encoding="cp1252")
    assert list(ctx.workspace.iterdir()) == []
