"""The database steps end to end through `aetherflow run`, as a user runs them."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT, base_env, run_cli, write_flow
from tests.services.postgres import TEST_PASSWORD as SECRET

PG_FLOW = """
version: 1
flow:
  id: pg_to_sqlite
resources:
  warehouse:
    kind: db
    driver: postgres
    config:
      host: "{{ env.PGHOST }}"
      port: "{{ env.PGPORT }}"
      dbname: "{{ env.PGDATABASE }}"
      user: "{{ env.PGUSER }}"
      password: "{{ env.PG_PASSWORD }}"
    options: {application_name: cli-test, statement_timeout: 30s}
  mart:
    kind: db
    driver: sqlite3
    config: {path: "{{ env.AETHERFLOW_WORK_ROOT }}/mart.sqlite"}
jobs:
  - id: move
    steps:
      - id: probe
        type: db_fetch
        inputs:
          resource: warehouse
          sql: "SELECT count(*) AS n, sum(i)::numeric AS total FROM generate_series(1, %s) AS i"
          params: [2500]
        outputs: {has_data: "{{ result.rows[0][0] > 0 }}"}
      - id: dump
        type: db_extract
        inputs:
          resource: warehouse
          sql: "SELECT i AS id, 'row ' || i AS label, now() AS at FROM generate_series(1, 2500) AS i"
          output: dump/rows.tsv
      - id: load
        type: db_load
        inputs: {resource: mart, table: rows, input: "{{ steps.dump.outputs.path }}", mode: replace}
      - id: count
        type: db_fetch
        inputs: {resource: mart, sql: "SELECT count(*), min(label), max(CAST(id AS INTEGER)) FROM rows"}
"""


def pg_env(tmp_path, server, password=None):
    return base_env(
        tmp_path,
        PGHOST=server.host,
        PGPORT=str(server.port),
        PGDATABASE=server.dbname,
        PGUSER=server.user,
        PG_PASSWORD=password or server.password,
    )


def test_sample_flow_moves_duckdb_table_to_sqlite_and_reruns(tmp_path):
    env = base_env(tmp_path)
    for _ in range(2):
        result = run_cli("run", ROOT / "sample_flows" / "duckdb_to_sqlite.yaml", "--json", env=env)
        assert result.exit_code == 0, result.output
        [job] = result.json["jobs"]
        assert job["outputs"]["extracted"] == 10000
        assert job["outputs"]["loaded"] == 10000 and job["outputs"]["matches"] is True
    assert (tmp_path / "work" / "duckdb_to_sqlite" / "mart.sqlite").is_file()


def test_postgres_to_sqlite_flow_through_the_cli(tmp_path, pg_server):
    flow = write_flow(tmp_path / "flow.yaml", PG_FLOW)
    result = run_cli("run", flow, "--json", env=pg_env(tmp_path, pg_server))
    assert result.exit_code == 0, result.output
    steps = {s["id"]: s for s in result.json["jobs"][0]["steps"]}
    assert steps["probe"]["outputs"]["rows"] == [[2500, 3126250]]
    dump = steps["dump"]["outputs"]
    assert dump["rows"] == 2500 and dump["columns"] == ["id", "label", "at"] and dump["path"].endswith("dump/rows.tsv")
    assert steps["load"]["outputs"] == {"rows": 2500}
    assert steps["count"]["outputs"]["rows"] == [[2500, "row 1", 2500]]
    assert SECRET not in result.output


def test_wrong_password_fails_the_run_naming_the_resource_and_hiding_the_secret(tmp_path, pg_server):
    flow = write_flow(tmp_path / "flow.yaml", PG_FLOW)
    result = run_cli("run", flow, "--json", env=pg_env(tmp_path, pg_server, password=SECRET + "-wrong"))
    assert result.exit_code == 1
    doc = result.json
    assert doc["status"] == "FAILED"
    probe = doc["jobs"][0]["steps"][0]
    assert probe["status"] == "FAILED"
    assert "resource 'warehouse' (db/postgres)" in probe["error"] and "password authentication failed" in probe["error"]
    assert SECRET not in result.output
    assert not list((tmp_path / "work").rglob("rows.tsv"))


def test_resolve_check_connects_to_postgres(tmp_path, pg_server):
    flow = write_flow(tmp_path / "flow.yaml", PG_FLOW)
    ok = run_cli("resolve", flow, "--check", "--json", env=pg_env(tmp_path, pg_server))
    assert ok.exit_code == 0, ok.output
    checks = {r["name"]: r["check"] for r in ok.json["resources"]}
    assert checks["warehouse"]["ok"] is True
    bad = run_cli("resolve", flow, "--check", "--json", env=pg_env(tmp_path, pg_server, password="nope-" + SECRET))
    assert bad.exit_code == 1
    warehouse = {r["name"]: r for r in bad.json["resources"]}["warehouse"]
    assert warehouse["check"]["ok"] is False and "password authentication failed" in warehouse["check"]["error"]
    assert SECRET not in bad.output


def test_importing_database_modules_imports_no_driver():
    code = (
        "import sys\n"
        "import aetherflow.core.connectors.builtin.db_postgres, aetherflow.core.connectors.builtin.db_duckdb\n"
        "import aetherflow.core.connectors.builtin.db_sqlite3, aetherflow.core.steps.builtin.db\n"
        "print(sorted(m for m in ('psycopg', 'duckdb', 'pyarrow', 'sqlite3') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
