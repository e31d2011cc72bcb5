"""PostgreSQL URLs as users write them: SQLAlchemy's ``postgresql+psycopg2://`` is
accepted, another database's URL is refused by ``resolve``, and ``--show`` masks only
the password inside a URL."""

from __future__ import annotations

from tests.helpers import base_env, run_cli, write_flow

FLOW = """
version: 1
flow: {{id: urls}}
resources:
  dw:
    kind: db
    driver: postgres
    config: {{{key}: "{url}"}}
jobs:
  - id: a
    steps: [{{id: s, type: db_fetch, inputs: {{resource: dw, sql: "select current_database() as db"}}}}]
"""


def test_a_sqlalchemy_url_resolves_checks_and_runs(tmp_path, pg_server):
    url = pg_server.url().replace("postgresql://", "postgresql+psycopg2://")
    flow = write_flow(tmp_path / "flow.yaml", FLOW.format(key="url", url=url))
    env = base_env(tmp_path)
    checked = run_cli("resolve", flow, "--check", "--json", env=env)
    assert checked.exit_code == 0, checked.output
    (row,) = checked.json["resources"]
    assert row["check"]["ok"] is True, row["check"]
    assert row["config"]["url"] == f"postgresql://{pg_server.user}:***@{pg_server.host}:{pg_server.port}/{pg_server.dbname}"
    shown = run_cli("resolve", flow, "--show", env=env)
    assert shown.exit_code == 0, shown.output
    assert f"postgresql://{pg_server.user}:***@{pg_server.host}:{pg_server.port}/{pg_server.dbname}" in shown.stdout
    assert pg_server.password not in shown.output + checked.output
    result = run_cli("run", flow, "--json", env=env)
    assert result.exit_code == 0, result.output
    assert result.json["jobs"][0]["steps"][0]["outputs"]["rows"] == [[pg_server.dbname]]
    assert pg_server.password not in result.output


def test_a_dsn_keeps_its_host_visible_and_its_password_masked(tmp_path, pg_server):
    dsn = f"host={pg_server.host} port={pg_server.port} dbname={pg_server.dbname} user={pg_server.user} password={pg_server.password}"
    flow = write_flow(tmp_path / "flow.yaml", FLOW.format(key="dsn", url=dsn))
    result = run_cli("resolve", flow, "--check", "--json", env=base_env(tmp_path))
    assert result.exit_code == 0, result.output
    (row,) = result.json["resources"]
    assert row["check"]["ok"] is True
    assert row["config"]["dsn"] == f"host={pg_server.host} port={pg_server.port} dbname={pg_server.dbname} user={pg_server.user} password=***"


def test_another_databases_url_is_refused_by_resolve_with_the_fix(tmp_path):
    flow = write_flow(tmp_path / "flow.yaml", FLOW.format(key="url", url="mysql+pymysql://etl:pw@db.internal/dw"))
    result = run_cli("resolve", flow, env=base_env(tmp_path))
    assert result.exit_code == 2, result.output
    assert f"{flow}:7:14 at resources.dw.config.url" in result.output
    assert "a mysql:// URL is not a PostgreSQL one; write postgresql://user@host:port/dbname" in result.output
