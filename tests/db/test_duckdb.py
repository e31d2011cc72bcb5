"""``db/duckdb``: connector calls, threads, settings and the native COPY / read_* paths."""

from __future__ import annotations

import json
import threading

import pyarrow.parquet as pq
import pytest

from aetherflow.core.connectors.builtin.db_duckdb import DuckDBConnector
from aetherflow.core.errors import ConnectorError

from .conftest import named


def duckdb_at(path, **options):
    return named(DuckDBConnector(config={"path": str(path)}, options=options), "duck")


def test_execute_fetchall_params_and_scripts(duck):
    assert duck.execute("CREATE TABLE t (id BIGINT, name VARCHAR); INSERT INTO t VALUES (1, 'a'), (2, 'b')") == 2
    assert duck.execute("UPDATE t SET name = ? WHERE id = ?", ["z", 2]) == 1
    assert duck.fetchall("SELECT * FROM t WHERE name = $name ORDER BY id", {"name": "z"}) == (["id", "name"], [(2, "z")])
    assert duck.executemany("INSERT INTO t VALUES (?, ?)", [(3, "c"), (4, "d")]) == 2
    assert [len(rows) for _, rows in duck.iter_batches("SELECT * FROM range(25)", batch_size=10)] == [10, 10, 5]


def test_transaction_rolls_back_on_error_and_threads_use_their_own_connection(duck):
    duck.execute("CREATE TABLE t (v INTEGER)")
    with pytest.raises(ValueError):
        with duck.transaction():
            duck.execute("INSERT INTO t VALUES (1)")
            raise ValueError("undo")
    seen = []

    def work(i):
        with duck.transaction():
            duck.execute("INSERT INTO t VALUES (?)", [i])
        seen.append(id(duck.connect()))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(v for (v,) in duck.fetchall("SELECT v FROM t")[1]) == [0, 1, 2]
    assert len(set(seen)) == 3


def test_memory_database_is_shared_between_threads():
    memory = named(DuckDBConnector(config={"path": ":memory:"}, options={}), "mem")
    memory.execute("CREATE TABLE t AS SELECT 1 AS v")
    result = []
    thread = threading.Thread(target=lambda: result.append(memory.fetchall("SELECT v FROM t")[1]))
    thread.start()
    thread.join()
    assert result == [[(1,)]]
    memory.close()


def test_settings_apply_read_only_refuses_writes_and_bad_extension_is_named(tmp_path):
    path = tmp_path / "nested" / "s.duckdb"
    writer = duckdb_at(path, settings={"threads": 1, "memory_limit": "256MB"})
    writer.execute("CREATE TABLE t (v INTEGER)")
    assert writer.fetchall("SELECT current_setting('threads')")[1] == [(1,)]
    writer.close()
    reader = named(DuckDBConnector(config={"path": str(path), "read_only": True}, options={}), "ro")
    with pytest.raises(ConnectorError, match="read-only"):
        reader.execute("INSERT INTO t VALUES (1)")
    reader.close()
    bad = duckdb_at(tmp_path / "x.duckdb", extensions=["no_such_extension_xyz"])
    with pytest.raises(ConnectorError, match="extension 'no_such_extension_xyz' could not be loaded"):
        bad.check()


def test_export_uses_copy_for_every_format_with_params(duck, tmp_path):
    sql = "SELECT range AS id, CASE WHEN range = 1 THEN NULL WHEN range = 2 THEN '' ELSE 'a,\"b\"' END AS s FROM range(?)"
    seen = []
    for fmt in ("csv", "tsv", "jsonl", "parquet"):
        out = duck.export(sql, [3], path=tmp_path / f"x.{fmt}", format=fmt, progress=seen.append)
        assert out == {"rows": 3, "columns": ["id", "s"]}
    assert seen == [3, 3, 3, 3]
    assert (tmp_path / "x.csv").read_text() == 'id,s\n0,"a,""b"""\n1,\n2,""\n'
    assert (tmp_path / "x.tsv").read_text().splitlines()[1] == '0\t"a,""b"""'
    assert [json.loads(line)["s"] for line in (tmp_path / "x.jsonl").read_text().splitlines()] == ['a,"b"', None, ""]
    assert pq.read_table(tmp_path / "x.parquet").column("s").to_pylist() == ['a,"b"', None, ""]
    duck.export(sql, [0], path=tmp_path / "empty.csv", format="csv", header=False)
    assert (tmp_path / "empty.csv").read_text() == ""


def test_load_modes_and_csv_by_header_name(duck, tmp_path):
    (tmp_path / "in.csv").write_text('name,id\n"",1\n,2\n"x\ny",3\n')
    duck.execute("CREATE TABLE t (id INTEGER, name VARCHAR)")
    assert duck.load("t", tmp_path / "in.csv", format="csv") == 3
    assert duck.fetchall("SELECT * FROM t ORDER BY id")[1] == [(1, ""), (2, None), (3, "x\ny")]
    assert duck.load("t", tmp_path / "in.csv", format="csv", mode="truncate") == 3
    assert duck.fetchall("SELECT count(*) FROM t")[1] == [(3,)]
    assert duck.load("t", tmp_path / "in.csv", format="csv", mode="replace") == 3
    assert duck.fetchall("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 't' ORDER BY ordinal_position")[1] == [
        ("name", "VARCHAR"),
        ("id", "BIGINT"),
    ]
    (tmp_path / "raw.tsv").write_text("7\tseven\n")
    duck.execute("CREATE TABLE r (id INTEGER, name VARCHAR)")
    assert duck.load("r", tmp_path / "raw.tsv", format="tsv", header=False) == 1
    assert duck.fetchall("SELECT * FROM r")[1] == [(7, "seven")]


def test_failed_load_leaves_table_unchanged(duck, tmp_path):
    duck.execute("CREATE TABLE t (id INTEGER)")
    duck.execute("INSERT INTO t VALUES (1)")
    (tmp_path / "bad.csv").write_text("id\n2\nnot-a-number\n")
    with pytest.raises(ConnectorError) as info:
        duck.load("t", tmp_path / "bad.csv", format="csv", mode="truncate")
    assert "resource 'duck' (db/duckdb): load t from 'bad.csv' failed" in str(info.value)
    assert duck.fetchall("SELECT id FROM t")[1] == [(1,)]


def test_export_accepts_a_query_ending_in_a_comment(duck, tmp_path):
    out = duck.export("SELECT 42 AS answer -- why", path=tmp_path / "a.csv", format="csv")
    assert out == {"rows": 1, "columns": ["answer"]} and (tmp_path / "a.csv").read_text() == "answer\n42\n"
