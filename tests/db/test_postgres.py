"""``db/postgres`` against the real server: every connector call, COPY paths, threads."""

from __future__ import annotations

import csv
import json
import threading
from decimal import Decimal

import pyarrow.parquet as pq
import pytest

from aetherflow.core.connectors.builtin.db_postgres import PostgresConnector
from aetherflow.core.errors import ConnectorConfigError, ConnectorError

from .conftest import named


def test_execute_returns_rowcount_and_params_bind_both_styles(pg, table):
    assert pg.execute(f"CREATE TABLE {table} (id int, name text)") == -1
    assert pg.execute(f"INSERT INTO {table} VALUES (%s, %s), (%s, %s)", [1, "a", 2, "b"]) == 2
    assert pg.execute(f"UPDATE {table} SET name = %(name)s WHERE id >= %(low)s", {"name": "z", "low": 1}) == 2
    assert pg.fetchall(f"SELECT id, name FROM {table} WHERE name = %s ORDER BY id", ["z"]) == (["id", "name"], [(1, "z"), (2, "z")])


def test_script_without_params_runs_every_statement_and_reports_the_last(pg, table):
    count = pg.execute(f"CREATE TABLE {table} (id int); INSERT INTO {table} VALUES (1), (2), (3); DELETE FROM {table} WHERE id > 1")
    assert count == 2
    assert pg.fetchall(f"SELECT id FROM {table}")[1] == [(1,)]


def test_executemany_inserts_every_row_in_one_transaction(pg, table):
    pg.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v text)")
    assert pg.executemany(f"INSERT INTO {table} VALUES (%s, %s)", [(i, str(i)) for i in range(500)]) == 500
    with pytest.raises(ConnectorError, match="duplicate key"):
        pg.executemany(f"INSERT INTO {table} VALUES (%s, %s)", [(1000, "new"), (1, "dup")])
    assert pg.fetchall(f"SELECT count(*), max(id) FROM {table}")[1] == [(500, 499)]


def test_iter_batches_streams_in_batches_while_the_query_is_still_running(pg, pg_server):
    watcher = named(PostgresConnector(config=pg_server.config(), options={"application_name": "watcher"}), "watcher")
    reader = named(PostgresConnector(config=pg_server.config(), options={"application_name": "streamer"}), "reader")
    try:
        # generate_series in the select list produces rows one at a time (in FROM it
        # would be materialised by the server first).
        batches = reader.iter_batches("SELECT generate_series(1, 50000000) AS i, repeat('x', 100) AS pad", batch_size=1000)
        columns, first = next(batches)
        assert columns == ["i", "pad"] and [r[0] for r in first] == list(range(1, 1001))
        # The server is still producing the 50M-row result: nothing was materialised.
        _, state = watcher.fetchall("SELECT state FROM pg_stat_activity WHERE application_name = 'streamer'")
        assert state == [("active",)]
        assert [r[0] for r in next(batches)[1]][:2] == [1001, 1002]
        batches.close()
        assert reader.fetchall("SELECT 'usable'")[1] == [("usable",)]
    finally:
        watcher.close()
        reader.close()


def test_iter_batches_of_empty_result_yields_nothing_and_returning_streams(pg, table):
    pg.execute(f"CREATE TABLE {table} (id serial, v text)")
    assert list(pg.iter_batches(f"SELECT * FROM {table}")) == []
    got = list(pg.iter_batches(f"INSERT INTO {table} (v) SELECT 'x' FROM generate_series(1, 5) RETURNING id", batch_size=2))
    assert [len(rows) for _, rows in got] == [2, 2, 1]


def test_transaction_commits_rolls_back_and_nests(pg, table):
    pg.execute(f"CREATE TABLE {table} (id int)")
    with pg.transaction():
        pg.execute(f"INSERT INTO {table} VALUES (1)")
        with pg.transaction():
            pg.execute(f"INSERT INTO {table} VALUES (2)")
    with pytest.raises(RuntimeError):
        with pg.transaction():
            pg.execute(f"INSERT INTO {table} VALUES (3)")
            raise RuntimeError("abort")
    assert pg.fetchall(f"SELECT id FROM {table} ORDER BY id")[1] == [(1,), (2,)]


def test_connection_lost_inside_transaction_is_not_silently_replaced(pg, pg_server, table):
    pg.execute(f"CREATE TABLE {table} (id int)")
    killer = named(PostgresConnector(config=pg_server.config(), options={}), "killer")
    try:
        with pytest.raises(ConnectorError) as info:
            with pg.transaction():
                pg.execute(f"INSERT INTO {table} VALUES (1)")
                pid = pg.fetchall("SELECT pg_backend_pid()")[1][0][0]
                killer.execute("SELECT pg_terminate_backend(%s)", [pid])
                with pytest.raises(ConnectorError, match="terminat|closed"):
                    pg.execute(f"INSERT INTO {table} VALUES (2)")
                pg.execute(f"INSERT INTO {table} VALUES (3)")
        assert "lost inside a transaction" in str(info.value)
    finally:
        killer.close()
    # Outside the block the connector reconnects; nothing of the block was committed.
    assert pg.fetchall(f"SELECT count(*) FROM {table}")[1] == [(0,)]


def test_each_thread_gets_its_own_connection_and_close_closes_all(pg):
    pids: dict[str, set[int]] = {}

    def work(tag):
        pids[tag] = {pg.fetchall("SELECT pg_backend_pid()")[1][0][0] for _ in range(3)}

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(len(p) == 1 for p in pids.values())
    assert len(set().union(*pids.values())) == 3
    pg.close()
    pg.close()
    assert not pg.connected
    assert pg.fetchall("SELECT 1")[1] == [(1,)]


def test_options_reach_the_session(pg_server):
    connector = named(
        PostgresConnector(config=pg_server.config(sslmode="disable"), options={"application_name": "af-test", "statement_timeout": 1500}),
        "opts",
    )
    try:
        _, rows = connector.fetchall("SELECT current_setting('application_name'), current_setting('statement_timeout')")
        assert rows == [("af-test", "1500ms")]
    finally:
        connector.close()


def test_dsn_and_url_connect_and_config_keys_override_them(pg_server):
    url = pg_server.url()
    for config in ({"dsn": url}, {"url": url}, {"dsn": url.replace(pg_server.dbname, "postgres"), "dbname": pg_server.dbname}):
        connector = named(PostgresConnector(config=config, options={}), "viadsn")
        try:
            assert connector.fetchall("SELECT current_database()")[1] == [(pg_server.dbname,)]
        finally:
            connector.close()
    with pytest.raises(ConnectorConfigError, match="either dsn or url"):
        named(PostgresConnector(config={"dsn": url, "url": url}, options={}), "both").check()
    with pytest.raises(ConnectorConfigError, match="no server given"):
        named(PostgresConnector(config={}, options={}), "empty").check()


def test_copy_extract_csv_tsv_with_and_without_header(pg, tmp_path):
    sql = "SELECT i AS id, CASE WHEN i = 2 THEN NULL WHEN i = 3 THEN '' ELSE E'a\\tb,\"c\"\\n' || i END AS note FROM generate_series(1, %s) AS i"
    out = pg.export(sql, [3], path=tmp_path / "x.csv", format="csv")
    assert out == {"rows": 3, "columns": ["id", "note"]}
    assert (tmp_path / "x.csv").read_bytes() == b'id,note\n1,"a\tb,""c""\n1"\n2,\n3,""\n'
    out = pg.export(sql, [3], path=tmp_path / "x.tsv", format="tsv", header=False)
    assert out["columns"] == ["id", "note"]
    rows = list(csv.reader((tmp_path / "x.tsv").open(newline=""), delimiter="\t"))
    assert rows == [["1", 'a\tb,"c"\n1'], ["2", ""], ["3", ""]]
    assert (tmp_path / "x.tsv").read_bytes().splitlines()[-2:] == [b"2\t", b'3\t""']


def test_copy_extract_reports_progress_in_rows(pg, tmp_path):
    seen = []
    out = pg.export("SELECT i FROM generate_series(1, 200000) i", path=tmp_path / "p.csv", format="csv", progress=seen.append)
    assert out["rows"] == 200000 and sum(seen) == 200000


def test_extract_jsonl_and_parquet_keep_types(pg, table, tmp_path):
    pg.execute(f"""CREATE TABLE {table} (i int, n numeric(10,2), free numeric, t text, ts timestamptz, d date,
                                       b boolean, raw bytea, doc jsonb)""")
    pg.execute(f"""INSERT INTO {table} VALUES (1, 12.30, 7.5, 'é', '2024-05-06 07:08:09.123456+02', '2024-05-06', true,
                                             '\\x00ff', '{{"k": [1, null]}}'), (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)""")
    sql = f"SELECT * FROM {table} ORDER BY i"
    pg.export(sql, path=tmp_path / "x.jsonl", format="jsonl")
    first, second = [json.loads(line) for line in (tmp_path / "x.jsonl").read_text().splitlines()]
    assert first == {
        "i": 1,
        "n": 12.3,
        "free": 7.5,
        "t": "é",
        "ts": "2024-05-06T05:08:09.123456+00:00",
        "d": "2024-05-06",
        "b": True,
        "raw": "\\x00ff",
        "doc": {"k": [1, None]},
    }
    assert set(second.values()) == {None}
    pg.export(sql, path=tmp_path / "x.parquet", format="parquet", batch_size=1)
    table = pq.read_table(tmp_path / "x.parquet")
    types = {f.name: str(f.type) for f in table.schema}
    assert types == {
        "i": "int32",
        "n": "decimal128(10, 2)",
        "free": "string",
        "t": "string",
        "ts": "timestamp[us, tz=UTC]",
        "d": "date32[day]",
        "b": "bool",
        "raw": "binary",
        "doc": "string",
    }
    assert table.column("n").to_pylist() == [Decimal("12.30"), None]
    assert json.loads(table.column("doc").to_pylist()[0]) == {"k": [1, None]}


def test_load_csv_maps_header_names_to_columns_in_any_order(pg, table, tmp_path):
    pg.execute(f"CREATE TABLE {table} (id int, name text, note text)")
    path = tmp_path / "in.csv"
    path.write_text('note,id,name\n"",1,a\n,2,"b,\n"""\n')
    seen = []
    assert pg.load(table, path, format="csv", progress=seen.append) == 2
    assert sum(seen) > 0
    assert pg.fetchall(f"SELECT id, name, note FROM {table} ORDER BY id")[1] == [(1, "a", ""), (2, 'b,\n"', None)]


def test_load_headerless_tsv_appends_by_position(pg, table, tmp_path):
    pg.execute(f"CREATE TABLE {table} (id int, name text)")
    path = tmp_path / "in.tsv"
    path.write_text("1\tx\n2\ty\n")
    assert pg.load(table, path, format="tsv", header=False) == 2
    assert pg.load(table, path, format="tsv", header=False, mode="append") == 2
    assert pg.fetchall(f"SELECT count(*) FROM {table}")[1] == [(4,)]


def test_load_replace_creates_table_from_file_columns(pg, table, tmp_path):
    pg.export("SELECT 1::bigint AS id, 2.5::float8 AS f, 'x' AS s, true AS b, now() AS ts, '{\"a\":1}'::jsonb AS j",
              path=tmp_path / "src.parquet", format="parquet")
    pg.execute(f"CREATE TABLE {table} (unrelated int)")
    assert pg.load(table, tmp_path / "src.parquet", format="parquet", mode="replace") == 1
    _, types = pg.fetchall("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position", [table])
    assert types == [("id", "bigint"), ("f", "double precision"), ("s", "text"), ("b", "boolean"), ("ts", "timestamp with time zone"), ("j", "text")]
    (tmp_path / "src.jsonl").write_text('{"id": 1, "tags": ["a"], "meta": {"k": "v"}}\n{"id": 2, "tags": null}\n')
    assert pg.load(table, tmp_path / "src.jsonl", format="jsonl", mode="replace") == 2
    _, rows = pg.fetchall(f"SELECT id, tags, meta FROM {table} ORDER BY id")
    assert rows == [(1, ["a"], {"k": "v"}), (2, None, None)]
    (tmp_path / "src.csv").write_text("a,b\n1,\n")
    assert pg.load(table, tmp_path / "src.csv", format="csv", mode="replace") == 1
    assert pg.fetchall(f"SELECT a, b FROM {table}") == (["a", "b"], [("1", None)])


def test_load_truncate_replaces_rows_atomically(pg, table, tmp_path):
    pg.execute(f"CREATE TABLE {table} (id int)")
    pg.execute(f"INSERT INTO {table} SELECT generate_series(1, 10)")
    (tmp_path / "two.csv").write_text("id\n100\n200\n")
    assert pg.load(table, tmp_path / "two.csv", format="csv", mode="truncate") == 2
    assert pg.fetchall(f"SELECT id FROM {table} ORDER BY id")[1] == [(100,), (200,)]


def test_replace_without_header_is_refused(pg, table, tmp_path):
    (tmp_path / "raw.csv").write_text("1,2\n")
    with pytest.raises(ConnectorConfigError, match="needs the file's column names"):
        pg.load(table, tmp_path / "raw.csv", format="csv", header=False, mode="replace")


def test_copy_extract_accepts_trailing_comment_and_semicolon(pg, tmp_path):
    out = pg.export("SELECT 1 AS one; ", path=tmp_path / "a.csv", format="csv")
    assert out["rows"] == 1
    out = pg.export("SELECT 2 AS two -- the answer", path=tmp_path / "b.csv", format="csv")
    assert out == {"rows": 1, "columns": ["two"]} and (tmp_path / "b.csv").read_text() == "two\n2\n"


def test_extract_is_utf8_even_from_a_latin1_database(pg_server, tmp_path):
    import psycopg

    with psycopg.connect(pg_server.superuser_conninfo, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS latin")
        admin.execute(f"CREATE DATABASE latin OWNER {pg_server.user} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
    connector = named(PostgresConnector(config=pg_server.config(dbname="latin"), options={}), "latin")
    try:
        connector.execute("CREATE TABLE t (s text)")
        connector.execute("INSERT INTO t VALUES (%s)", ["café ÿ"])
        connector.export("SELECT s AS «name» FROM t", path=tmp_path / "l.csv", format="csv")
        assert (tmp_path / "l.csv").read_bytes().decode("utf-8") == "«name»\ncafé ÿ\n"
    finally:
        connector.close()
