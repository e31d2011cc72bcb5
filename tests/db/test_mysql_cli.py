"""MariaDB -> CSV -> PostgreSQL through `aetherflow run`, as a user runs it: 200,000 rows
with NULLs, decimals, datetimes, BLOBs and utf8mb4 text arrive with every value equal."""

from __future__ import annotations

from itertools import zip_longest

from aetherflow.core.connectors.builtin.db_sqlalchemy import MySQLConnector
from tests.helpers import base_env, run_cli, write_flow

from .conftest import named

ROWS = 200_000

FLOW = """
version: 1
flow:
  id: maria_to_pg
resources:
  shop:
    kind: db
    driver: mysql
    config:
      host: "{{ env.MY_HOST }}"
      port: "{{ env.MY_PORT }}"
      user: "{{ env.MY_USER }}"
      password: "{{ env.MY_PASSWORD }}"
      database: "{{ env.MY_DATABASE }}"
  warehouse:
    kind: db
    driver: postgres
    config: {url: "{{ env.PG_URL }}"}
jobs:
  - id: move
    steps:
      - id: dump
        type: db_extract
        inputs:
          resource: shop
          sql: SELECT id, amount, stamp, day, payload, label, note FROM orders ORDER BY id
          output: orders.csv
      - id: load
        type: db_load
        inputs: {resource: warehouse, table: "{{ env.PG_TABLE }}", input: "{{ steps.dump.outputs.path }}"}
"""

# Every 7th amount, 11th stamp, 13th label ... is NULL; text with emoji, CJK, quotes, commas,
# line breaks and backslashes; BLOBs with every byte value; datetimes with microseconds.
FILL = f"""
CREATE TABLE orders (id INT PRIMARY KEY, amount DECIMAL(14,4), stamp DATETIME(6), day DATE, payload BLOB,
                     label VARCHAR(100), note TEXT) CHARACTER SET utf8mb4;
INSERT INTO orders
SELECT seq,
       IF(seq % 7 = 0, NULL, (CAST(seq AS SIGNED) - 100000) * 1.0001),
       IF(seq % 11 = 0, NULL, TIMESTAMP('1999-12-31 23:59:59') + INTERVAL seq * 7919 SECOND + INTERVAL seq MICROSECOND),
       IF(seq % 17 = 0, NULL, DATE('2024-02-29') - INTERVAL seq % 9000 DAY),
       IF(seq % 5 = 0, NULL, UNHEX(CONCAT(HEX(seq % 256), '00FF5C0A'))),
       IF(seq % 13 = 0, NULL, CONCAT('näme ', seq, ' 😀 中文 "q", ;')),
       CASE seq % 4 WHEN 0 THEN '' WHEN 1 THEN CONCAT('line\\nbreak\\r\\n\\\\ ', seq) WHEN 2 THEN 'NULL' ELSE NULL END
FROM seq_1_to_{ROWS};
"""


def test_200k_rows_from_mariadb_through_csv_into_postgres_are_equal(tmp_path, mariadb_server, maria_database, pg_server, pg, table):
    mariadb_server.admin(f"USE `{maria_database}`;{FILL}")
    pg.execute(
        f"CREATE TABLE {table} (id integer PRIMARY KEY, amount numeric(14,4), stamp timestamp(6), day date, payload bytea, label text, note text)"
    )
    env = base_env(
        tmp_path, MY_HOST=mariadb_server.host, MY_PORT=str(mariadb_server.port), MY_USER=mariadb_server.user,
        MY_PASSWORD=mariadb_server.password, MY_DATABASE=maria_database, PG_URL=pg_server.url(), PG_TABLE=table,
    )
    result = run_cli("run", write_flow(tmp_path / "flow.yaml", FLOW), "--json", env=env, timeout=600)
    assert result.exit_code == 0, result.output
    steps = {s["id"]: s["outputs"] for s in result.json["jobs"][0]["steps"]}
    assert steps["dump"]["rows"] == ROWS and steps["load"] == {"rows": ROWS}
    assert mariadb_server.password not in result.output and pg_server.password not in result.output

    my = named(MySQLConnector(config=mariadb_server.config(database=maria_database), options={}), "my")
    columns = "id, amount, stamp, day, payload, label, note"
    try:
        compared = 0
        batches = zip_longest(my.iter_batches(f"SELECT {columns} FROM orders ORDER BY id"), pg.iter_batches(f"SELECT {columns} FROM {table} ORDER BY id"))
        for mine, theirs in batches:
            assert mine[1] == [(*row[:4], None if row[4] is None else bytes(row[4]), *row[5:]) for row in theirs[1]]
            compared += len(mine[1])
        assert compared == ROWS
        nulls = pg.fetchall(f"SELECT count(*) - count(amount), count(*) - count(stamp), count(*) - count(label), count(*) - count(note) FROM {table}")
        assert nulls[1] == [(ROWS // 7, ROWS // 11, ROWS // 13, ROWS // 4)]
    finally:
        my.close()
