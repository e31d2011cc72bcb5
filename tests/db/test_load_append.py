"""db_load with the default mode (append) into a table that does not exist creates it
from the file's columns, on every database driver; an existing table is appended to."""

from __future__ import annotations

import pytest

from aetherflow.core.errors import ConnectorConfigError
from aetherflow.core.steps.builtin.db import DbLoad

CSV = "id,name\n1,ada\n2,grace\n"


def _load(ctx, resource, table, source, **inputs):
    return DbLoad().run(ctx, DbLoad.bind_inputs({"resource": resource, "table": table, "input": source, **inputs}))


@pytest.mark.parametrize("driver", ["lite", "duck", "pg"])
def test_append_creates_a_missing_table_then_appends(driver, request, ctx_for, tmp_path):
    connector = request.getfixturevalue(driver)
    table = f"append_target_{driver}"
    connector.execute(f"DROP TABLE IF EXISTS {table}")
    try:
        ctx = ctx_for(**{driver: connector})
        (ctx.workspace / "people.csv").write_text(CSV)
        assert not connector.table_exists(table)
        assert _load(ctx, driver, table, "people.csv").outputs["rows"] == 2
        assert connector.table_exists(table)
        assert _load(ctx, driver, table, "people.csv").outputs["rows"] == 2
        columns, rows = connector.fetchall(f"SELECT id, name FROM {table} ORDER BY id, name")
        assert columns == ["id", "name"]
        assert [(str(i), n) for i, n in rows] == [("1", "ada"), ("1", "ada"), ("2", "grace"), ("2", "grace")]
    finally:
        connector.execute(f"DROP TABLE IF EXISTS {table}")


@pytest.mark.parametrize("driver", ["lite", "duck", "pg"])
def test_a_headerless_file_cannot_create_the_table(driver, request, ctx_for):
    connector = request.getfixturevalue(driver)
    ctx = ctx_for(**{driver: connector})
    (ctx.workspace / "rows.tsv").write_text("1\tada\n")
    with pytest.raises(ConnectorConfigError, match="the table does not exist, and creating it needs the file's column names"):
        _load(ctx, driver, "never_created", "rows.tsv", header=False)
    assert not connector.table_exists("never_created")


def test_postgres_table_lookup_reads_names_as_sql_does(pg):
    pg.execute('CREATE SCHEMA IF NOT EXISTS "Load Test"')
    pg.execute('CREATE TABLE IF NOT EXISTS "Load Test"."Mixed Case" (id int)')
    try:
        assert pg.table_exists('"Load Test"."Mixed Case"')
        assert not pg.table_exists('"Load Test".mixed_case')
        with pg.transaction():
            # Looking up a missing table inside a transaction does not abort it.
            assert not pg.table_exists("no_such_table_here")
            pg.execute('INSERT INTO "Load Test"."Mixed Case" VALUES (1)')
        assert pg.fetchall('SELECT count(*) FROM "Load Test"."Mixed Case"')[1] == [(1,)]
    finally:
        pg.execute('DROP SCHEMA "Load Test" CASCADE')
