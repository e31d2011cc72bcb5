"""A step's timeout_seconds cancels its PostgreSQL query on the server."""

from __future__ import annotations

import psycopg

from tests.helpers import run_cli, write_flow

from .test_cli_flows import pg_env

PG_SLEEP = """
version: 1
flow:
  id: pg_timeout
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
    options: {application_name: timeout-test}
jobs:
  - id: query
    steps:
      - {id: connect, type: db_fetch, inputs: {resource: warehouse, sql: "select 1"}}
      - id: nap
        type: db_execute
        timeout_seconds: 1
        inputs: {resource: warehouse, sql: "select pg_sleep(30)"}
"""


def test_a_postgres_query_over_its_timeout_is_cancelled_on_the_server(tmp_path, pg_server):
    flow = write_flow(tmp_path / "flow.yaml", PG_SLEEP)
    result = run_cli("run", flow, "--json", env=pg_env(tmp_path, pg_server))
    assert result.exit_code == 1, result.output
    _, step = result.json["jobs"][0]["steps"]
    assert step["status"] == "FAILED"
    assert step["error"].startswith("step 'nap' timed out after 1s (timeout_seconds: 1); it stopped with: ")
    assert "canceling statement due to user request" in step["error"]  # the server's own word
    assert step["duration_ms"] < 5000
    with psycopg.connect(pg_server.superuser_conninfo, autocommit=True) as conn:
        active = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()"
        ).fetchone()[0]
    assert active == 0
