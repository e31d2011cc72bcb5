"""db/mysql and db/sqlalchemy against a real MariaDB (tests/services/mariadb.py): the
types a warehouse holds (DECIMAL, DATETIME, BLOB, NULLs, utf8mb4 text), transactions,
streaming, extracts in every format and loads in every mode, with each DB-API driver
(mysqlclient and PyMySQL)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pyarrow.parquet as pq
import pytest

from aetherflow.core.connectors.builtin.db_sqlalchemy import MySQLConnector, SQLAlchemyConnector
from aetherflow.core.errors import ConnectorConfigError, ConnectorError, MissingDependencyError
from aetherflow.core.steps.base import STEP_SUCCESS
from aetherflow.core.steps.builtin.db import DbExtract, DbLoad
from tests.helpers import driver_fault

from .conftest import named

SECRET = "Zq7-distinct-S3cret"
TYPES = (
    "id INT PRIMARY KEY, amount DECIMAL(12,2), stamp DATETIME(6), day DATE, payload BLOB, label VARCHAR(200), note TEXT"
)
COLUMNS = ["id", "amount", "stamp", "day", "payload", "label", "note"]
ROWS = [
    (1, Decimal("1234567890.12"), dt.datetime(2024, 2, 29, 23, 59, 59, 123456), dt.date(2024, 2, 29), b"\x00\x01\xfe\xff", "naïve Grüße", "plain"),
    (2, None, None, None, None, None, None),
    (3, Decimal("-0.01"), dt.datetime(1970, 1, 1), dt.date(1000, 1, 1), b"", "", 'quote " comma , semi ; tab \t'),
    (4, Decimal("0.00"), dt.datetime(9999, 12, 31, 23, 59, 59, 999999), dt.date(9999, 12, 31), b"\\N", "emoji 😀 ✓ 中文", "line\nbreak\r\n"),
]


def fill(db, table: str = "src", rows=ROWS) -> None:
    db.execute(f"CREATE TABLE {table} ({TYPES}) CHARACTER SET utf8mb4")
    db.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)


def run(step_cls, ctx, **inputs):
    result = step_cls().run(ctx, step_cls.bind_inputs(inputs))
    assert result.status == STEP_SUCCESS
    return result.outputs


def test_the_warehouse_types_come_back_as_python_values(mysql):
    fill(mysql)
    columns, rows = mysql.fetchall("SELECT * FROM src ORDER BY id")
    assert columns == COLUMNS
    assert rows == ROWS
    assert mysql.fetchall("SELECT CHAR_LENGTH(label), LENGTH(label) FROM src WHERE id = 4")[1] == [(12, 21)]


def test_parameters_bind_by_position_or_by_name(mysql):
    assert mysql.fetchall("SELECT %s + %s AS s", [1, 2]) == (["s"], [(3,)])
    assert mysql.fetchall("SELECT :a + :b AS s, :a AS a", {"a": 40, "b": 2})[1] == [(42, 40)]
    # Without parameters a percent sign is just a character.
    assert mysql.fetchall("SELECT 'x%y' AS y, 'a%' LIKE 'b%' AS x")[1] == [("x%y", 0)]
    assert mysql.execute("CREATE TABLE p (s VARCHAR(9)); INSERT INTO p VALUES ('100%')") == 1
    assert mysql.fetchmany("SELECT s FROM p WHERE s LIKE '%\\%'")[1] == [("100%",)]
    assert mysql.fetchmany("SELECT 'a' LIKE :p AS x", {"p": "a%"})[1] == [(1,)]


def test_a_script_runs_every_statement_and_fails_on_any(mysql):
    assert mysql.execute("CREATE TABLE t (i INT); INSERT INTO t VALUES (1), (2); SELECT 1; INSERT INTO t VALUES (3)") == 1
    assert mysql.fetchall("SELECT SUM(i) FROM t")[1] == [(Decimal(6),)]
    with pytest.raises(ConnectorError, match=r"execute failed: .*nosuch' doesn't exist"):
        mysql.execute("INSERT INTO t VALUES (4); INSERT INTO nosuch VALUES (5)")
    assert mysql.fetchall("SELECT COUNT(*) FROM t")[1] == [(4,)]


def test_transactions_commit_or_roll_back_as_a_whole(mysql):
    mysql.execute("CREATE TABLE t (i INT PRIMARY KEY) ENGINE=InnoDB")
    with mysql.transaction():
        mysql.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(RuntimeError), mysql.transaction():
        mysql.execute("INSERT INTO t VALUES (2)")
        raise RuntimeError("abort")
    with pytest.raises(ConnectorError, match="Duplicate entry"):
        mysql.executemany("INSERT INTO t VALUES (%s)", [(3,), (4,), (1,)])
    assert mysql.fetchall("SELECT i FROM t")[1] == [(1,)]
    # Outside transaction() every statement commits at once (autocommit): another connection sees it.
    mysql.execute("INSERT INTO t VALUES (5)")
    other = named(MySQLConnector(config=mysql.config, options={}), "other")
    try:
        assert other.fetchall("SELECT i FROM t ORDER BY i")[1] == [(1,), (5,)]
    finally:
        other.close()


def test_isolation_level_applies_inside_transactions(mariadb_server, maria_database):
    db = named(MySQLConnector(config=mariadb_server.config(database=maria_database, isolation_level="read committed"), options={}), "my")
    try:
        with db.transaction():
            assert db.fetchall("SELECT @@session.tx_isolation")[1] == [("READ-COMMITTED",)]
        assert db.fetchall("SELECT @@autocommit")[1] == [(1,)]
    finally:
        db.close()


def test_results_stream_in_batches(mysql):
    mysql.execute("CREATE TABLE n (i INT PRIMARY KEY)")
    mysql.execute("INSERT INTO n SELECT seq FROM seq_1_to_25000")
    sizes = [len(rows) for _, rows in mysql.iter_batches("SELECT i FROM n ORDER BY i", batch_size=10_000)]
    assert sizes == [10_000, 10_000, 5_000]
    # Stopping early releases the connection for the next statement.
    batches = mysql.iter_batches("SELECT i FROM n ORDER BY i", batch_size=100)
    assert next(batches)[1][:2] == [(1,), (2,)]
    batches.close()
    assert mysql.fetchmany("SELECT i FROM n ORDER BY i DESC", max_rows=3)[1] == [(25000,), (24999,), (24998,)]


def test_csv_extract_writes_the_servers_text_and_loads_back(mysql, ctx_for):
    fill(mysql)
    ctx = ctx_for(my=mysql)
    out = run(DbExtract, ctx, resource="my", sql="SELECT * FROM src ORDER BY id", output="src.csv")
    assert out["rows"] == 4 and out["columns"] == COLUMNS
    lines = (ctx.workspace / "src.csv").read_text(encoding="utf-8").split("\n")
    assert lines[0] == "id,amount,stamp,day,payload,label,note"
    assert lines[1] == '1,1234567890.12,2024-02-29 23:59:59.123456,2024-02-29,"\\x0001feff","naïve Grüße","plain"'
    assert lines[2] == "2,,,,,,"
    assert lines[3] == '3,-0.01,1970-01-01 00:00:00.000000,1000-01-01,"\\x","","quote "" comma , semi ; tab \t"'

    mysql.execute(f"CREATE TABLE dst ({TYPES})")
    assert run(DbLoad, ctx, resource="my", table="dst", input="src.csv")["rows"] == 4
    loaded = mysql.fetchall("SELECT * FROM dst ORDER BY id")[1]
    # BLOBs travel as \\x hex text in CSV, as from PostgreSQL: loaded into a BLOB they stay that text.
    assert [row[:4] + row[5:] for row in loaded] == [row[:4] + row[5:] for row in ROWS]


def test_a_csv_dialect_and_tsv_through_mysql(mysql, ctx_for):
    fill(mysql)
    ctx = ctx_for(my=mysql)
    dialect = {"delimiter": ";", "encoding": "utf-8-sig", "null": "NULL", "date_format": "%d.%m.%Y"}
    run(DbExtract, ctx, resource="my", sql="SELECT id, amount, day, label FROM src WHERE id < 4 ORDER BY id", output="d.csv", **dialect)
    assert (ctx.workspace / "d.csv").read_bytes().decode("utf-8").split("\n")[:4] == [
        "\ufeffid;amount;day;label",
        '1;1234567890.12;"29.02.2024";"naïve Grüße"',
        "2;NULL;NULL;NULL",
        '3;-0.01;"01.01.1000";""',
    ]
    mysql.execute("CREATE TABLE d (id INT, amount DECIMAL(12,2), day DATE, label TEXT)")
    run(DbLoad, ctx, resource="my", table="d", input="d.csv", **dialect)
    assert mysql.fetchall("SELECT * FROM d ORDER BY id")[1] == [(r[0], r[1], r[3], r[5]) for r in ROWS[:3]]

    run(DbExtract, ctx, resource="my", sql="SELECT id, label, note FROM src ORDER BY id", output="t.tsv")
    run(DbLoad, ctx, resource="my", table="t", input="t.tsv", mode="replace")
    assert mysql.fetchall("SELECT * FROM t ORDER BY CAST(id AS INT)")[1] == [(str(r[0]), r[5], r[6]) for r in ROWS]


def test_parquet_and_jsonl_extracts_keep_the_types(mysql, ctx_for):
    fill(mysql)
    ctx = ctx_for(my=mysql)
    run(DbExtract, ctx, resource="my", sql="SELECT * FROM src ORDER BY id", output="src.parquet")
    table = pq.read_table(ctx.workspace / "src.parquet")
    # MySQL tells a DECIMAL's display size, which counts the sign: the precision is an upper bound.
    assert [str(t) for t in table.schema.types] == [
        "int32", "decimal128(13, 2)", "timestamp[us]", "date32[day]", "binary", "string", "string"
    ]
    assert [tuple(r.values()) for r in table.to_pylist()] == ROWS

    run(DbExtract, ctx, resource="my", sql="SELECT id, amount, stamp, label FROM src WHERE id = 1", output="one.jsonl")
    assert json.loads((ctx.workspace / "one.jsonl").read_text(encoding="utf-8")) == {
        "id": 1, "amount": 1234567890.12, "stamp": "2024-02-29T23:59:59.123456", "label": "naïve Grüße"
    }


def test_load_modes_create_truncate_and_replace_with_mysql_types(mysql, ctx_for):
    fill(mysql)
    ctx = ctx_for(my=mysql)
    run(DbExtract, ctx, resource="my", sql="SELECT * FROM src ORDER BY id", output="src.parquet")
    # append to a missing table creates it from the Parquet types (backquoted names, LONGTEXT, DATETIME(6)).
    assert run(DbLoad, ctx, resource="my", table="`new table`", input="src.parquet")["rows"] == 4
    assert mysql.fetchall("SELECT * FROM `new table` ORDER BY id")[1] == ROWS
    types = dict(mysql.fetchall("SELECT column_name, column_type FROM information_schema.columns WHERE table_name = 'new table'")[1])
    assert types == {"id": "int(11)", "amount": "decimal(13,2)", "stamp": "datetime(6)", "day": "date", "payload": "longblob",
                     "label": "longtext", "note": "longtext"}
    assert run(DbLoad, ctx, resource="my", table="`new table`", input="src.parquet", mode="truncate")["rows"] == 4
    assert run(DbLoad, ctx, resource="my", table="`new table`", input="src.parquet", mode="replace")["rows"] == 4
    assert mysql.fetchall("SELECT COUNT(*) FROM `new table`")[1] == [(4,)]


def test_a_failed_load_leaves_the_table_as_it_was(mysql, ctx_for):
    ctx = ctx_for(my=mysql)
    mysql.execute("CREATE TABLE t (i INT PRIMARY KEY, v VARCHAR(10)) ENGINE=InnoDB")
    mysql.execute("INSERT INTO t VALUES (0, 'kept')")
    lines = ["i,v"] + [f"{i},row{i}" for i in range(1, 25_001)] + ["25001,far too long for ten"]
    (ctx.workspace / "in.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ConnectorError, match=r"load t from 'in.csv' failed: .*(too long|Data too long)"):
        run(DbLoad, ctx, resource="my", table="t", input="in.csv")
    assert mysql.fetchall("SELECT * FROM t")[1] == [(0, "kept")]


def test_the_mysql_config_takes_keys_or_a_url(mariadb_server, maria_database):
    server = mariadb_server
    url = f"mariadb://{server.user}:{server.password}@{server.host}:{server.port}/{maria_database}"
    for config in ({"url": url}, {"url": f"mysql://nobody@{server.host}:{server.port}/x", "user": server.user,
                                   "password": server.password, "database": maria_database}):
        db = named(MySQLConnector(config=config, options={}), "my")
        try:
            assert db.fetchall("SELECT DATABASE(), @@character_set_client")[1] == [(maria_database, "utf8mb4")]
        finally:
            db.close()
    with pytest.raises(ConnectorConfigError, match="use db/sqlalchemy for other databases"):
        MySQLConnector(config={"url": "postgresql://u@h/d"}, options={}).execute("SELECT 1")
    with pytest.raises(ConnectorConfigError, match="no server given"):
        MySQLConnector(config={"user": "u"}, options={}).execute("SELECT 1")


def test_the_client_is_mysqlclient_when_installed_else_pymysql(mariadb_server):
    assert MySQLConnector(config=mariadb_server.config(), options={}).client() == "mysqldb"
    assert MySQLConnector(config=mariadb_server.config(client="pymysql"), options={}).client() == "pymysql"
    assert MySQLConnector(config={"url": "mysql+pymysql://u@h/d"}, options={}).client() == "pymysql"


# -- db/sqlalchemy ---------------------------------------------------------------------------


def test_sqlalchemy_url_reaches_mariadb_with_the_password_apart(mariadb_server, maria_database, ctx_for):
    server = mariadb_server
    url = f"mysql+pymysql://{server.user}@{server.host}:{server.port}/{maria_database}?charset=utf8mb4"
    db = named(SQLAlchemyConnector(config={"url": url, "password": server.password, "connect_args": {"connect_timeout": 5}}, options={}), "sa")
    try:
        fill(db)
        assert db.fetchall("SELECT * FROM src ORDER BY id")[1] == ROWS
        ctx = ctx_for(sa=db)
        run(DbExtract, ctx, resource="sa", sql="SELECT * FROM src ORDER BY id", output="src.parquet")
        assert run(DbLoad, ctx, resource="sa", table="copy", input="src.parquet")["rows"] == 4
        assert db.fetchall("SELECT * FROM copy ORDER BY id")[1] == ROWS
    finally:
        db.close()


def test_sqlalchemy_works_with_any_dialect_here_sqlite(tmp_path, ctx_for):
    db = named(SQLAlchemyConnector(config={"url": f"sqlite:///{tmp_path / 'x.db'}"}, options={}), "sa")
    try:
        db.execute("CREATE TABLE t (i INTEGER, s TEXT)")
        assert db.executemany("INSERT INTO t VALUES (:i, :s)", [{"i": i, "s": f"row {i}"} for i in range(2500)]) == 2500
        assert db.fetchall("SELECT COUNT(*), MAX(s) FROM t WHERE i >= :low", {"low": 10})[1] == [(2490, "row 999")]
        with pytest.raises(RuntimeError), db.transaction():
            db.execute("DELETE FROM t")
            raise RuntimeError("abort")
        ctx = ctx_for(sa=db)
        assert run(DbExtract, ctx, resource="sa", sql="SELECT * FROM t ORDER BY i", output="t.csv")["rows"] == 2500
        assert run(DbLoad, ctx, resource="sa", table='"t 2"', input="t.csv")["rows"] == 2500
        assert db.fetchall('SELECT COUNT(*), MIN(s) FROM "t 2"')[1] == [(2500, "row 0")]
    finally:
        db.close()


def test_a_missing_dialect_names_the_package_to_install():
    db = SQLAlchemyConnector(config={"url": "oracle+oracledb://scott:tiger@db.example/?service_name=XE"}, options={})
    with pytest.raises(MissingDependencyError) as info:
        db.execute("SELECT 1 FROM dual")
    assert "oracledb" in str(info.value) + (info.value.hint or "")
    db = SQLAlchemyConnector(config={"url": "nosuchdb://u@h/d"}, options={})
    with pytest.raises(MissingDependencyError, match="no SQLAlchemy dialect 'nosuchdb'"):
        db.execute("SELECT 1")


# -- secrets ---------------------------------------------------------------------------------


def test_mysql_errors_never_show_the_password(mariadb_server, maria_database):
    server = mariadb_server.config(database=maria_database)
    wrong = driver_fault(lambda c: c.execute("SELECT 1"), MySQLConnector(config={**server, "password": SECRET}, options={}), SECRET)
    assert "Access denied" in str(wrong)
    url = f"mysql://{server['user']}:{SECRET}@{server['host']}:{server['port']}/{maria_database}"
    driver_fault(lambda c: c.execute("SELECT 1"), MySQLConnector(config={"url": url}, options={}), SECRET)
    sa_url = f"mysql+pymysql://{server['user']}:{SECRET}@{server['host']}:{server['port']}/{maria_database}"
    driver_fault(lambda c: c.execute("SELECT 1"), SQLAlchemyConnector(config={"url": sa_url}, options={}), SECRET)
    # The server quotes a value a query got wrong: here the real password.
    echoed = driver_fault(
        lambda c: c.execute(f"SELECT * FROM `{mariadb_server.password}`"), MySQLConnector(config=server, options={}), mariadb_server.password
    )
    assert "doesn't exist" in str(echoed)
