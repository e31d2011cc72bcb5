"""The db_* steps called directly: inputs, outputs, atomic files, JSON-safe values."""

from __future__ import annotations

import hashlib
import json

import pytest

from aetherflow.core.errors import ConnectorError, StepError, StepInputError
from aetherflow.core.steps.base import STEP_SUCCESS
from aetherflow.core.steps.builtin.db import DbExecute, DbExtract, DbFetch, DbLoad
from aetherflow.core.steps.registry import get_step


def run(step_cls, ctx, **inputs):
    result = step_cls().run(ctx, step_cls.bind_inputs(inputs))
    assert result.status == STEP_SUCCESS
    json.dumps(result.outputs)  # outputs are always JSON-serialisable
    return result.outputs


def test_step_types_are_registered_with_the_spec_inputs_and_outputs():
    dialect = {"delimiter", "quote", "escape", "encoding", "null", "line_terminator", "date_format", "timestamp_format"}
    table = {
        "db_execute": ({"resource", "sql", "sql_file", "params", "allow_sql_template"}, ("rowcount",)),
        "db_fetch": ({"resource", "sql", "params", "allow_sql_template", "max_rows"}, ("columns", "rows", "row_count")),
        "db_extract": (
            {"resource", "sql", "output", "params", "allow_sql_template", "format", "header", "batch_size"} | dialect,
            ("path", "rows", "bytes", "sha256", "columns"),
        ),
        "db_load": ({"resource", "table", "input", "format", "header", "mode"} | dialect, ("rows",)),
    }
    for name, (inputs, outputs) in table.items():
        cls = get_step(name)
        assert set(cls.inputs) == inputs and cls.outputs == outputs
    assert DbFetch.inputs["max_rows"].default == 10_000 and DbLoad.inputs["mode"].default == "append"
    assert DbExtract.inputs["header"].default is True


def test_db_execute_runs_sql_or_a_workspace_sql_file(lite, ctx_for):
    ctx = ctx_for(lite=lite)
    assert run(DbExecute, ctx, resource="lite", sql="CREATE TABLE t (v INTEGER)") == {"rowcount": -1}
    (ctx.workspace / "sql").mkdir()
    (ctx.workspace / "sql" / "fill.sql").write_text("INSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2), (3);\n")
    assert run(DbExecute, ctx, resource="lite", sql_file="sql/fill.sql") == {"rowcount": 2}
    assert run(DbExecute, ctx, resource="lite", sql="DELETE FROM t WHERE v > ?", params=[1]) == {"rowcount": 2}


def test_db_execute_input_mistakes_are_reported(lite, ctx_for, tmp_path):
    ctx = ctx_for(lite=lite)
    with pytest.raises(StepInputError, match="exactly one of 'sql' and 'sql_file'"):
        run(DbExecute, ctx, resource="lite")
    with pytest.raises(StepInputError, match="exactly one of"):
        run(DbExecute, ctx, resource="lite", sql="SELECT 1", sql_file="x.sql")
    with pytest.raises(StepError, match="does not exist"):
        run(DbExecute, ctx, resource="lite", sql_file="missing.sql")
    with pytest.raises(StepError, match="escapes the job workspace"):
        run(DbExecute, ctx, resource="lite", sql_file="../outside.sql")
    with pytest.raises(StepInputError, match="input 'params'"):
        DbExecute.bind_inputs({"resource": "lite", "sql": "SELECT 1", "params": "oops"})


def test_non_database_resource_is_refused_by_name(ctx_for):
    class Files:
        kind, driver = "fs", "local"

    with pytest.raises(StepError, match=r"resource 'share' \(fs/local\) is not a database connector"):
        run(DbFetch, ctx_for(share=Files()), resource="share", sql="SELECT 1")


def test_db_fetch_converts_postgres_values_to_json(pg, ctx_for):
    ctx = ctx_for(pg=pg)
    sql = """SELECT 12.50::numeric AS n, 10::numeric AS whole, 0.1234567890123456789::numeric AS precise,
                    timestamptz '2024-02-03 04:05:06+00' AS ts, date '2024-02-03' AS d, '\\x0aff'::bytea AS raw,
                    '{"a": [1, 2.5]}'::jsonb AS doc, 'e5e5e5e5-0000-4000-8000-000000000000'::uuid AS id,
                    interval '90 minutes' AS span, 'NaN'::float8 AS nan, NULL AS nothing"""
    out = run(DbFetch, ctx, resource="pg", sql=sql)
    assert out["columns"] == ["n", "whole", "precise", "ts", "d", "raw", "doc", "id", "span", "nan", "nothing"]
    assert out["rows"] == [[12.5, 10, "0.1234567890123456789", "2024-02-03T04:05:06+00:00", "2024-02-03", "\\x0aff",
                            {"a": [1, 2.5]}, "e5e5e5e5-0000-4000-8000-000000000000", 5400.0, "nan", None]]
    assert out["row_count"] == 1


def test_db_fetch_allows_exactly_max_rows_and_refuses_more(lite, ctx_for):
    ctx = ctx_for(lite=lite)
    lite.execute("CREATE TABLE t (v INTEGER)")
    lite.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(5)])
    assert run(DbFetch, ctx, resource="lite", sql="SELECT v FROM t ORDER BY v", max_rows=5)["row_count"] == 5
    assert run(DbFetch, ctx, resource="lite", sql="SELECT v FROM t WHERE v < 0") == {"columns": ["v"], "rows": [], "row_count": 0}
    with pytest.raises(StepError, match="more than max_rows=4 rows.*use db_extract"):
        run(DbFetch, ctx, resource="lite", sql="SELECT v FROM t", max_rows=4)


def test_db_extract_outputs_describe_the_file_and_format_follows_extension(duck, ctx_for):
    ctx = ctx_for(duck=duck)
    advanced = []

    class Bar:
        def advance(self, n=1):
            advanced.append(n)

        def close(self):
            advanced.append("closed")

    ctx.progress_factory = lambda description, total=None, unit="": Bar()
    for name, first in (("out/a.csv", b"id,"), ("out/a.tsv", b"id\t"), ("out/a.jsonl", b'{"id":'), ("out/a.parquet", b"PAR1")):
        out = run(DbExtract, ctx, resource="duck", sql="SELECT range AS id, 'x' AS v FROM range(5)", output=name)
        path = ctx.workspace / name
        assert out["path"] == str(path) and out["rows"] == 5 and out["columns"] == ["id", "v"]
        assert out["bytes"] == path.stat().st_size
        assert out["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert path.read_bytes().startswith(first)
    assert advanced.count("closed") == 4 and sum(n for n in advanced if n != "closed") == 20
    out = run(DbExtract, ctx, resource="duck", sql="SELECT 1 AS one", output="plain.txt", format="csv", header=False)
    assert (ctx.workspace / "plain.txt").read_text() == "1\n"
    assert sorted(p.name for p in ctx.workspace.rglob("*.part-*")) == []


def test_db_extract_refuses_unknown_extension_and_escaping_output(lite, ctx_for):
    ctx = ctx_for(lite=lite)
    with pytest.raises(StepInputError, match="cannot tell the format of 'x.dat'.*csv, tsv, jsonl, parquet"):
        run(DbExtract, ctx, resource="lite", sql="SELECT 1", output="x.dat")
    with pytest.raises(StepError, match="escapes the job workspace"):
        run(DbExtract, ctx, resource="lite", sql="SELECT 1", output="../../x.csv")
    with pytest.raises(StepInputError, match="expected one of"):
        DbExtract.bind_inputs({"resource": "lite", "sql": "SELECT 1", "output": "x.csv", "format": "xlsx"})


def test_db_extract_failure_keeps_the_previous_file_and_leaves_no_partial(lite, ctx_for):
    ctx = ctx_for(lite=lite)
    run(DbExtract, ctx, resource="lite", sql="SELECT 1 AS a", output="keep.csv")
    before = (ctx.workspace / "keep.csv").read_bytes()
    with pytest.raises(ConnectorError, match="resource 'lite' .*no such table: nope"):
        run(DbExtract, ctx, resource="lite", sql="SELECT * FROM nope", output="keep.csv")
    assert (ctx.workspace / "keep.csv").read_bytes() == before
    assert [p.name for p in ctx.workspace.iterdir()] == ["keep.csv"]


def test_db_load_modes_from_a_workspace_file(pg, table, ctx_for):
    ctx = ctx_for(pg=pg)
    (ctx.workspace / "rows.csv").write_text("id,name\n1,a\n2,b\n")
    pg.execute(f"CREATE TABLE {table} (id int, name text)")
    assert run(DbLoad, ctx, resource="pg", table=table, input="rows.csv") == {"rows": 2}
    assert run(DbLoad, ctx, resource="pg", table=table, input="rows.csv", mode="append") == {"rows": 2}
    assert pg.fetchall(f"SELECT count(*) FROM {table}")[1] == [(4,)]
    assert run(DbLoad, ctx, resource="pg", table=table, input="rows.csv", mode="truncate") == {"rows": 2}
    assert pg.fetchall(f"SELECT count(*) FROM {table}")[1] == [(2,)]
    assert run(DbLoad, ctx, resource="pg", table=table, input="rows.csv", mode="replace") == {"rows": 2}
    assert pg.fetchall(f"SELECT id, name FROM {table} ORDER BY id") == (["id", "name"], [("1", "a"), ("2", "b")])
    with pytest.raises(StepError, match="input file .*nothing.csv' does not exist"):
        run(DbLoad, ctx, resource="pg", table=table, input="nothing.csv")
    with pytest.raises(StepInputError, match="expected one of 'append', 'truncate', 'replace'"):
        DbLoad.bind_inputs({"resource": "pg", "table": table, "input": "rows.csv", "mode": "upsert"})
