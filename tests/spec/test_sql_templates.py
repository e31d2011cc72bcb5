"""Templates rendered into SQL text: validate warns, params are the way, identifiers are quoted."""

from __future__ import annotations

import sqlite3

import pytest

from aetherflow.core.errors import TemplateError
from aetherflow.core.templating import ENGINE
from tests.helpers import run_cli, write_flow

FLOW = """
version: 1
flow: {{id: sqlt}}
resources:
  mart: {{kind: db, driver: sqlite3, config: {{path: "{db}"}}}}
jobs:
  - id: a
    steps:
      - id: q
        type: {step}
        inputs:
          resource: mart
          sql: "{sql}"{extra}
"""


def flow_text(tmp_path, sql, step="db_fetch", extra=""):
    return write_flow(tmp_path / "flow.yaml", FLOW.format(db=tmp_path / "mart.sqlite", step=step, sql=sql, extra=extra))


@pytest.mark.parametrize("step, extra", [("db_fetch", ""), ("db_execute", ""), ("db_extract", "\n          output: out.csv")])
def test_validate_warns_when_a_template_renders_into_sql(tmp_path, step, extra):
    flow = flow_text(tmp_path, "SELECT * FROM orders WHERE day = '{{ env.DAY }}'", step, extra)
    result = run_cli("validate", flow)
    assert result.exit_code == 0, result.output
    assert f"{flow}:12:" in result.stderr and "jobs[0].steps[0].inputs.sql" in result.stderr
    assert "warning: a template renders values into the SQL text" in result.stderr
    assert "params" in result.stderr and "sql_identifier" in result.stderr
    assert "1 warning" in result.stdout
    document = run_cli("validate", flow, "--json").json
    assert document["ok"] is True and document["errors"] == []
    [warning] = document["warnings"]
    assert warning["path"] == "jobs[0].steps[0].inputs.sql" and warning["line"] == 12


def test_params_quoted_identifiers_and_the_opt_out_do_not_warn(tmp_path):
    for sql, extra in [
        ("SELECT * FROM orders WHERE day = ?", "\n          params: ['{{ env.DAY }}']"),
        ("SELECT * FROM {{ env.TABLE | sql_identifier }}", ""),
        ("SELECT {{ ['t', 'a b'] | sql_identifier }} FROM t", ""),
        ("SELECT * FROM t {{ env.WHERE }}", "\n          allow_sql_template: true"),
    ]:
        result = run_cli("validate", flow_text(tmp_path, sql, extra=extra))
        assert result.exit_code == 0, result.output
        assert "warning" not in result.output, (sql, result.output)


def test_sql_identifier_quotes_names_and_qualified_names():
    assert ENGINE.render('{{ "orders" | sql_identifier }}', {}) == '"orders"'
    assert ENGINE.render("{{ 'a\"b' | sql_identifier }}", {}) == '"a""b"'
    assert ENGINE.render("{{ ['sales', 'Order Lines'] | sql_identifier }}", {}) == '"sales"."Order Lines"'
    for bad in ("''", "'a\\x00b'", "[]", "5"):
        with pytest.raises(TemplateError):
            ENGINE.render("{{ " + bad + " | sql_identifier }}", {})


def test_a_quoted_identifier_cannot_break_out_of_the_sql(tmp_path, cli_env):
    db = tmp_path / "mart.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute('CREATE TABLE "odd ""name" (x)')
        conn.execute('INSERT INTO "odd ""name" VALUES (1)')
        conn.execute("CREATE TABLE keep (x)")
    flow = flow_text(tmp_path, "SELECT count(*) FROM {{ env.TABLE | sql_identifier }}", extra="\n          allow_sql_template: true")
    result = run_cli("run", flow, "--json", env={**cli_env, "TABLE": 'odd "name'})
    assert result.exit_code == 0, result.output
    assert result.json["jobs"][0]["steps"][0]["outputs"]["rows"] == [[1]]
    hostile = run_cli("run", flow, "--json", env={**cli_env, "TABLE": 'keep"; DROP TABLE keep; --'})
    assert hostile.exit_code == 1
    assert "no such table" in hostile.json["jobs"][0]["steps"][0]["error"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM keep").fetchone() == (0,)
