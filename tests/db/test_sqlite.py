"""``db/sqlite3``: connector calls, scripts, threads, options and the generic file paths."""

from __future__ import annotations

import json
import sqlite3
import threading

import pyarrow.parquet as pq
import pytest

from aetherflow.core.connectors.builtin.db_sqlite3 import SQLiteConnector, split_statements
from aetherflow.core.errors import ConnectorError, ConnectorTimeout

from .conftest import named


def sqlite(path, **options):
    return named(SQLiteConnector(config={"path": str(path)}, options=options), "lite")


def test_split_statements_keeps_semicolons_inside_strings_and_triggers():
    script = """CREATE TABLE t (a TEXT);
    INSERT INTO t VALUES ('x;y');
    CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET a = a || ';'; END;
    -- trailing comment"""
    parts = split_statements(script)
    assert len(parts) == 4 and "'x;y'" in parts[1] and parts[2].strip().endswith("END;")


def test_execute_fetchall_and_both_param_styles(lite):
    assert lite.execute("CREATE TABLE t (id INTEGER, name TEXT)") == -1
    assert lite.execute("INSERT INTO t VALUES (?, ?)", [1, "a"]) == 1
    assert lite.execute("INSERT INTO t VALUES (:id, :name)", {"id": 2, "name": "b"}) == 1
    assert lite.fetchall("SELECT * FROM t WHERE id > ? ORDER BY id", [0]) == (["id", "name"], [(1, "a"), (2, "b")])


def test_script_runs_all_statements_and_a_failing_script_leaves_no_open_transaction(lite):
    assert lite.execute("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('a;b'); INSERT INTO t VALUES ('c');") == 1
    with pytest.raises(ConnectorError, match="no such table"):
        lite.execute("BEGIN; INSERT INTO t VALUES ('lost'); INSERT INTO missing VALUES (1); COMMIT;")
    assert not lite.connect().in_transaction
    assert lite.fetchall("SELECT v FROM t ORDER BY v")[1] == [("a;b",), ("c",)]


def test_executemany_transaction_and_iter_batches(lite):
    lite.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    assert lite.executemany("INSERT INTO t VALUES (?)", ([i] for i in range(2500))) == 2500
    with pytest.raises(ConnectorError, match="UNIQUE"):
        lite.executemany("INSERT INTO t VALUES (?)", [[5000], [1]])
    with pytest.raises(KeyError):
        with lite.transaction():
            lite.execute("DELETE FROM t")
            raise KeyError("undo")
    sizes = [len(rows) for _, rows in lite.iter_batches("SELECT id FROM t ORDER BY id", batch_size=1000)]
    assert sizes == [1000, 1000, 500]
    assert list(lite.iter_batches("SELECT id FROM t WHERE id < 0")) == []


def test_memory_database_is_shared_by_threads_file_database_gets_a_connection_per_thread(tmp_path):
    memory = named(SQLiteConnector(config={"path": ":memory:"}, options={}), "mem")
    memory.execute("CREATE TABLE t (v INTEGER)")
    filed = sqlite(tmp_path / "f.db")
    filed.execute("CREATE TABLE t (v INTEGER)")
    connections = set()

    def work(i):
        memory.execute("INSERT INTO t VALUES (?)", [i])
        filed.execute("INSERT INTO t VALUES (?)", [i])
        connections.add(id(filed.connect()))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert memory.fetchall("SELECT count(*) FROM t")[1] == [(4,)]
    assert filed.fetchall("SELECT count(*) FROM t")[1] == [(4,)]
    assert len(connections) == 4
    memory.close()
    filed.close()


def test_read_only_refuses_writes_and_pragmas_apply(tmp_path):
    path = tmp_path / "sub" / "ro.db"
    writer = sqlite(path, pragmas={"journal_mode": "wal", "foreign_keys": True})
    writer.execute("CREATE TABLE t (v INTEGER)")
    assert writer.fetchall("PRAGMA journal_mode")[1] == [("wal",)]
    assert writer.fetchall("PRAGMA foreign_keys")[1] == [(1,)]
    writer.close()
    reader = named(SQLiteConnector(config={"path": str(path), "read_only": True}, options={}), "ro")
    with pytest.raises(ConnectorError, match="readonly"):
        reader.execute("INSERT INTO t VALUES (1)")
    reader.close()


def test_lock_held_by_another_writer_becomes_timeout(tmp_path):
    path = tmp_path / "busy.db"
    first = sqlite(path)
    first.execute("CREATE TABLE t (v INTEGER)")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        second = sqlite(path, timeout_seconds=0.1)
        with pytest.raises(ConnectorTimeout, match="resource 'lite' .*locked"):
            second.execute("INSERT INTO t VALUES (1)")
        second.close()
    finally:
        blocker.close()
        first.close()


def test_missing_directory_for_read_only_file_names_the_path(tmp_path):
    missing = tmp_path / "nope" / "x.db"
    connector = named(SQLiteConnector(config={"path": str(missing), "read_only": True}, options={}), "ro")
    with pytest.raises(ConnectorError) as info:
        connector.check()
    assert "resource 'ro' (db/sqlite3)" in str(info.value) and str(missing) in str(info.value)


def test_export_every_format_and_load_it_back(lite, tmp_path):
    lite.execute("CREATE TABLE t (id INTEGER, r REAL, s TEXT, b BLOB)")
    lite.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", [(1, 0.1, "x\ty", b"\x00\x01"), (2, None, "", None), (3, 1e20, None, b"")])
    for fmt in ("csv", "tsv", "jsonl", "parquet"):
        out = tmp_path / f"t.{fmt}"
        assert lite.export("SELECT * FROM t ORDER BY id", path=out, format=fmt, batch_size=2) == {"rows": 3, "columns": ["id", "r", "s", "b"]}
    assert (tmp_path / "t.csv").read_text() == 'id,r,s,b\n1,0.1,"x\ty","\\x0001"\n2,,"",\n3,1e+20,,"\\x"\n'
    assert json.loads((tmp_path / "t.jsonl").read_text().splitlines()[0]) == {"id": 1, "r": 0.1, "s": "x\ty", "b": "\\x0001"}
    assert pq.read_table(tmp_path / "t.parquet").to_pylist()[0] == {"id": 1, "r": 0.1, "s": "x\ty", "b": b"\x00\x01"}
    assert lite.load("p", tmp_path / "t.parquet", format="parquet", mode="replace") == 3
    assert lite.fetchall("SELECT * FROM p ORDER BY id")[1] == lite.fetchall("SELECT * FROM t ORDER BY id")[1]
    assert lite.load("c", tmp_path / "t.tsv", format="tsv", mode="replace") == 3
    assert lite.fetchall("SELECT s FROM c ORDER BY id")[1] == [("x\ty",), ("",), (None,)]


def test_parquet_schema_comes_from_first_batch_and_type_change_is_reported(lite, tmp_path):
    lite.execute("CREATE TABLE t (v)")
    lite.executemany("INSERT INTO t VALUES (?)", [(1,), (2,), ("three",)])
    with pytest.raises(ConnectorError, match="column 'v' changed type after row 2"):
        lite.export("SELECT v FROM t ORDER BY rowid", path=tmp_path / "v.parquet", format="parquet", batch_size=2)
    # A column NULL in the whole first batch becomes text and keeps later values.
    lite.execute("CREATE TABLE n (v)")
    lite.executemany("INSERT INTO n VALUES (?)", [(None,), (5,)])
    lite.export("SELECT v FROM n ORDER BY rowid", path=tmp_path / "n.parquet", format="parquet", batch_size=1)
    assert pq.read_table(tmp_path / "n.parquet").column("v").to_pylist() == [None, "5"]


def test_load_jsonl_with_missing_keys_and_refuses_unknown_keys(lite, tmp_path):
    lite.execute("CREATE TABLE t (id INTEGER, tags TEXT)")
    (tmp_path / "a.jsonl").write_text('{"id": 1, "tags": ["x", 1]}\n\n{"id": 2}\n')
    assert lite.load("t", tmp_path / "a.jsonl", format="jsonl") == 2
    assert lite.fetchall("SELECT * FROM t ORDER BY id")[1] == [(1, '["x",1]'), (2, None)]
    (tmp_path / "b.jsonl").write_text('{"id": 3}\n{"id": 4, "oops": 1}\n')
    with pytest.raises(ConnectorError, match="line 2 has keys the first record does not have: oops"):
        lite.load("t", tmp_path / "b.jsonl", format="jsonl")
    assert lite.fetchall("SELECT count(*) FROM t")[1] == [(2,)]
