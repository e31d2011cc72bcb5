"""100,000 rows of mixed types survive database -> CSV -> DuckDB -> Parquet -> database
unchanged, driven through the db_extract / db_load steps."""

from __future__ import annotations

import csv

from aetherflow.core.steps.builtin.db import DbExtract, DbLoad

from .conftest import named

ROWS = 100_000

PG_COLUMNS = """
    id bigint PRIMARY KEY,
    amount numeric(18,4),
    label text,
    created timestamptz,
    day date,
    flag boolean,
    doc jsonb,
    blob bytea
"""

# Every kind of awkward text: tabs, newlines, CR, quotes, commas, backslashes, unicode,
# the empty string and NULL (which must stay different).
PG_SOURCE = f"""
INSERT INTO src
SELECT i,
       CASE WHEN i % 13 = 0 THEN NULL ELSE round((i * 12345.6789 / 7 - 40000)::numeric, 4) END,
       CASE i % 6
         WHEN 0 THEN NULL
         WHEN 1 THEN ''
         WHEN 2 THEN E'tab\\there\\nnew "quoted", line\\r\\nend'
         WHEN 3 THEN 'ünïcødé ✓ 日本語 ' || i
         WHEN 4 THEN E'back\\\\slash ''single'' ;|' || i
         ELSE 'plain ' || i
       END,
       CASE WHEN i % 17 = 0 THEN NULL
            ELSE timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute 1.000001 second' END,
       CASE WHEN i % 19 = 0 THEN NULL ELSE date '1999-12-31' + (i % 20000) END,
       CASE WHEN i % 7 = 0 THEN NULL ELSE i % 2 = 0 END,
       CASE WHEN i % 11 = 0 THEN NULL
            ELSE jsonb_build_object('i', i, 's', E'x"y\\\\z\\n', 'list', jsonb_build_array(1, 'two', null)) END,
       CASE WHEN i % 5 = 0 THEN NULL ELSE decode(md5(i::text), 'hex') END
FROM generate_series(1, {ROWS}) AS i
"""

# DuckDB has no bytea text form matching PostgreSQL's, so the blob travels as its
# PostgreSQL text form (\\x...) in a VARCHAR; every other column keeps its type.
DUCK_PG_TABLE = """
CREATE TABLE mid (
    id BIGINT, amount DECIMAL(18,4), label VARCHAR, created TIMESTAMPTZ,
    day DATE, flag BOOLEAN, doc VARCHAR, blob VARCHAR
)
"""


def test_postgres_csv_duckdb_parquet_postgres_keeps_100k_mixed_rows_identical(pg, duck, ctx_for, tmp_path):
    pg.execute("DROP TABLE IF EXISTS src; DROP TABLE IF EXISTS dst")
    pg.execute(f"CREATE TABLE src ({PG_COLUMNS}); CREATE TABLE dst ({PG_COLUMNS})")
    pg.execute(PG_SOURCE)
    duck.execute(DUCK_PG_TABLE)
    ctx = ctx_for(pg=pg, duck=duck)

    csv_out = DbExtract().run(ctx, DbExtract.bind_inputs({"resource": "pg", "sql": "SELECT * FROM src ORDER BY id", "output": "stage/src.csv"}))
    assert csv_out.outputs["rows"] == ROWS
    assert csv_out.outputs["columns"] == ["id", "amount", "label", "created", "day", "flag", "doc", "blob"]

    loaded = DbLoad().run(ctx, DbLoad.bind_inputs({"resource": "duck", "table": "mid", "input": "stage/src.csv", "mode": "truncate"}))
    assert loaded.outputs["rows"] == ROWS

    parquet_out = DbExtract().run(ctx, DbExtract.bind_inputs({"resource": "duck", "sql": "SELECT * FROM mid", "output": "stage/mid.parquet"}))
    assert parquet_out.outputs["rows"] == ROWS

    back = DbLoad().run(ctx, DbLoad.bind_inputs({"resource": "pg", "table": "dst", "input": "stage/mid.parquet"}))
    assert back.outputs["rows"] == ROWS

    _, missing = pg.fetchall("SELECT count(*) FROM (SELECT * FROM src EXCEPT ALL SELECT * FROM dst) AS d")
    _, extra = pg.fetchall("SELECT count(*) FROM (SELECT * FROM dst EXCEPT ALL SELECT * FROM src) AS d")
    assert (missing[0][0], extra[0][0]) == (0, 0)
    digest = "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM {} AS t"
    assert pg.fetchall(digest.format("src"))[1] == pg.fetchall(digest.format("dst"))[1]
    # The awkward values really were in the data.
    _, nulls = pg.fetchall("SELECT count(*) FILTER (WHERE label IS NULL), count(*) FILTER (WHERE label = '') FROM dst")
    assert nulls[0][0] > 0 and nulls[0][1] > 0
    pg.execute("DROP TABLE src; DROP TABLE dst")


def _sqlite_rows():
    labels = ["", 'tab\there\nnew "quoted", line\r\nend', "ünïcødé ✓ 日本語 ", "back\\slash 'single' ;|", "plain "]
    for i in range(1, ROWS + 1):
        label = None if i % 6 == 0 else labels[i % 6 - 1] + ("" if i % 6 == 1 else str(i))
        yield (
            i,
            None if i % 13 == 0 else i * 12345.6789 / 7 - 40000,
            label,
            None if i % 17 == 0 else f"2024-01-01T{i % 24:02d}:{i % 60:02d}:{i % 60:02d}.{i:06d}+00:00",
            None if i % 19 == 0 else f"20{i % 30:02d}-{i % 12 + 1:02d}-{i % 28 + 1:02d}",
            None if i % 7 == 0 else i % 2,
            None if i % 11 == 0 else f'{{"i": {i}, "s": "x\\"y\\\\z"}}',
        )


SQLITE_TABLE = "(id INTEGER PRIMARY KEY, amount REAL, label TEXT, created TEXT, day TEXT, flag INTEGER, doc TEXT)"
DUCK_SQLITE_TABLE = "CREATE TABLE mid (id BIGINT, amount DOUBLE, label VARCHAR, created VARCHAR, day VARCHAR, flag BIGINT, doc VARCHAR)"


def test_sqlite_csv_duckdb_parquet_sqlite_keeps_100k_mixed_rows_identical(lite, duck, ctx_for):
    lite.execute(f"CREATE TABLE src {SQLITE_TABLE}")
    lite.execute(f"CREATE TABLE dst {SQLITE_TABLE}")
    assert lite.executemany("INSERT INTO src VALUES (?, ?, ?, ?, ?, ?, ?)", _sqlite_rows()) == ROWS
    duck.execute(DUCK_SQLITE_TABLE)
    ctx = ctx_for(lite=lite, duck=duck)

    extracted = DbExtract().run(
        ctx,
        DbExtract.bind_inputs(
            {"resource": "lite", "sql": "SELECT * FROM src ORDER BY id", "output": "src.csv", "batch_size": 7000}
        ),
    )
    assert extracted.outputs["rows"] == ROWS
    assert DbLoad().run(ctx, DbLoad.bind_inputs({"resource": "duck", "table": "mid", "input": "src.csv"})).outputs["rows"] == ROWS
    assert DbExtract().run(ctx, DbExtract.bind_inputs({"resource": "duck", "sql": "SELECT * FROM mid", "output": "mid.parquet"})).outputs["rows"] == ROWS
    assert DbLoad().run(ctx, DbLoad.bind_inputs({"resource": "lite", "table": "dst", "input": "mid.parquet"})).outputs["rows"] == ROWS

    source = lite.fetchall("SELECT * FROM src ORDER BY id")
    target = lite.fetchall("SELECT * FROM dst ORDER BY id")
    assert target == source
    # Types were kept too, not only the text: REAL stays REAL, NULL stays NULL.
    _, types = lite.fetchall("SELECT DISTINCT typeof(amount), typeof(flag), typeof(label) FROM dst ORDER BY 1, 2, 3")
    assert ("real", "integer", "text") in types


def test_sqlite_csv_writes_null_as_empty_field_and_empty_string_quoted(lite, ctx_for, tmp_path):
    lite.execute("CREATE TABLE t (a TEXT, b TEXT)")
    lite.executemany("INSERT INTO t VALUES (?, ?)", [(None, ""), ("x,y", 'q"q')])
    ctx = ctx_for(lite=lite)
    DbExtract().run(ctx, DbExtract.bind_inputs({"resource": "lite", "sql": "SELECT * FROM t", "output": "t.csv"}))
    text = (tmp_path / "workspace" / "t.csv").read_text()
    assert text == 'a,b\n,""\n"x,y","q""q"\n'
    assert list(csv.reader(text.splitlines()))[1:] == [["", ""], ["x,y", 'q"q']]


def test_duckdb_connector_round_trips_through_its_own_files(duck, tmp_path):
    duck.execute(
        "CREATE TABLE t AS SELECT range AS id, CASE WHEN range % 3 = 0 THEN NULL WHEN range % 3 = 1 THEN '' ELSE 'v' || range END AS s FROM range(1000)"
    )
    for fmt in ("csv", "tsv", "jsonl", "parquet"):
        out = tmp_path / f"t.{fmt}"
        assert duck.export("SELECT * FROM t", path=out, format=fmt)["rows"] == 1000
        copy = named(type(duck)(config={"path": str(tmp_path / f"{fmt}.duckdb")}, options={}), "copy")
        try:
            copy.execute("CREATE TABLE t (id BIGINT, s VARCHAR)")
            assert copy.load("t", out, format=fmt) == 1000
            assert copy.fetchall("SELECT * FROM t ORDER BY id") == duck.fetchall("SELECT * FROM t ORDER BY id"), fmt
        finally:
            copy.close()
