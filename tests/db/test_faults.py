"""Failures against the real PostgreSQL: each names the resource, shows the server's
reason, carries no secret, and leaves no output file behind."""

from __future__ import annotations

import pytest

from aetherflow.core.connectors.builtin.db_postgres import PostgresConnector
from aetherflow.core.errors import ConnectorError, ConnectorTimeout
from aetherflow.core.steps.builtin.db import DbExtract, DbFetch, DbLoad
from tests.services import free_port
from tests.services.postgres import TEST_PASSWORD as SECRET

from .conftest import named

WRONG_SECRET = "S3cr3t-Pa55-xyz-Wr0ng"


def extract(ctx, resource, sql, output):
    return DbExtract().run(ctx, DbExtract.bind_inputs({"resource": resource, "sql": sql, "output": output}))


def leftovers(ctx):
    return sorted(p.name for p in ctx.workspace.rglob("*") if p.is_file())


def assert_clean_message(text: str, resource: str):
    assert f"resource {resource!r} (db/postgres)" in text
    assert SECRET not in text and WRONG_SECRET not in text
    assert "Pa55" not in text


def test_wrong_password_fails_naming_resource_without_the_password_or_a_file(pg_server, ctx_for):
    bad = named(PostgresConnector(config=pg_server.config(password=WRONG_SECRET), options={}), "warehouse")
    ctx = ctx_for(warehouse=bad)
    with pytest.raises(ConnectorError) as info:
        extract(ctx, "warehouse", "SELECT 1", "out/one.csv")
    text = str(info.value)
    assert_clean_message(text, "warehouse")
    assert "password authentication failed" in text
    assert leftovers(ctx) == []


def test_password_inside_a_dsn_never_shows_in_error_text(pg_server):
    # libpq quotes the offending token of a malformed URL: here that is the password.
    malformed = f"postgresql://{pg_server.user}:{SECRET}%zz@{pg_server.host}:{pg_server.port}/{pg_server.dbname}"
    wrong = f"postgresql://{pg_server.user}:{WRONG_SECRET}@{pg_server.host}:{pg_server.port}/{pg_server.dbname}"
    keyword = f"host={pg_server.host} port={pg_server.port} dbname=nowhere user={pg_server.user} password={SECRET}"
    for dsn in (malformed, wrong, keyword):
        connector = named(PostgresConnector(config={"dsn": dsn}, options={}), "dsn_db")
        with pytest.raises(ConnectorError) as info:
            connector.fetchall("SELECT 1")
        text = str(info.value)
        assert_clean_message(text, "dsn_db")
        assert "failed" in text
    url = named(PostgresConnector(config={"url": wrong}, options={}), "url_db")
    with pytest.raises(ConnectorError) as info:
        url.execute("SELECT 1")
    assert_clean_message(str(info.value), "url_db")


def test_connection_refused_names_resource_and_address(pg_server):
    port = free_port()
    connector = named(PostgresConnector(config=pg_server.config(port=port), options={"connect_timeout": 3}), "gone")
    with pytest.raises(ConnectorError) as info:
        connector.check()
    text = str(info.value)
    assert_clean_message(text, "gone")
    assert str(port) in text and "refused" in text.lower()


def test_sql_syntax_error_in_extract_shows_server_message_and_leaves_no_file(pg, ctx_for):
    ctx = ctx_for(pg=pg)
    for output in ("bad.csv", "bad.parquet", "bad.jsonl"):
        with pytest.raises(ConnectorError) as info:
            extract(ctx, "pg", "SELEC id FROM nowhere", output)
        text = str(info.value)
        assert_clean_message(text, "pg")
        assert 'syntax error at or near "SELEC"' in text
    assert leftovers(ctx) == []
    # The connection is still usable after the failure.
    assert pg.fetchall("SELECT 41 + 1")[1] == [(42,)]


def test_statement_timeout_becomes_connector_timeout(pg_server):
    connector = named(PostgresConnector(config=pg_server.config(), options={"statement_timeout": "200ms"}), "slow")
    try:
        with pytest.raises(ConnectorTimeout) as info:
            connector.execute("SELECT pg_sleep(5)")
        assert "statement timeout" in str(info.value)
        assert_clean_message(str(info.value), "slow")
    finally:
        connector.close()


class StopServerOnProgress:
    """A progress reporter that stops the PostgreSQL server the first time rows arrive."""

    def __init__(self, server):
        self.server = server
        self.seen = 0

    def __call__(self, description, total=None, unit=""):
        return self

    def advance(self, amount=1):
        self.seen += amount
        if self.server.running():
            self.server.stop("immediate")

    def close(self):
        pass


@pytest.mark.parametrize("output", ["big.csv", "big.parquet"])
def test_server_stopped_mid_extract_fails_cleanly_without_partial_file(killable_pg, ctx_for, output):
    connector = named(PostgresConnector(config=killable_pg.config(), options={}), "crashy")
    ctx = ctx_for(crashy=connector)
    stopper = StopServerOnProgress(killable_pg)
    ctx.progress_factory = stopper
    sql = "SELECT i, md5(i::text) AS h FROM generate_series(1, 3000000) AS i"
    try:
        with pytest.raises(ConnectorError) as info:
            DbExtract().run(ctx, DbExtract.bind_inputs({"resource": "crashy", "sql": sql, "output": output, "batch_size": 5000}))
        text = str(info.value)
        assert_clean_message(text, "crashy")
        assert f"extract to '{output}' failed" in text
        assert 0 < stopper.seen < 3_000_000
        assert leftovers(ctx) == []
        assert not killable_pg.running()
        # Once the server is back, the same connector reconnects on its next call.
        killable_pg.start()
        assert connector.fetchall("SELECT 1")[1] == [(1,)]
    finally:
        connector.close()


def test_failed_load_rolls_back_truncate_and_keeps_old_rows(pg, table, ctx_for, tmp_path):
    pg.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, name text)")
    pg.execute(f"INSERT INTO {table} VALUES (1, 'old'), (2, 'old')")
    bad = tmp_path / "workspace" / "bad.csv"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text("id,name\n10,new\n11,new\nnot-a-number,new\n")
    ctx = ctx_for(pg=pg)
    with pytest.raises(ConnectorError) as info:
        DbLoad().run(ctx, DbLoad.bind_inputs({"resource": "pg", "table": table, "input": "bad.csv", "mode": "truncate"}))
    assert 'invalid input syntax for type integer: "not-a-number"' in str(info.value)
    assert_clean_message(str(info.value), "pg")
    assert pg.fetchall(f"SELECT id, name FROM {table} ORDER BY id")[1] == [(1, "old"), (2, "old")]


def test_db_fetch_over_max_rows_says_to_use_db_extract(pg, ctx_for):
    ctx = ctx_for(pg=pg)
    with pytest.raises(Exception) as info:
        DbFetch().run(ctx, DbFetch.bind_inputs({"resource": "pg", "sql": "SELECT * FROM generate_series(1, 5000000)", "max_rows": 10}))
    assert "more than max_rows=10" in str(info.value) and "db_extract" in str(info.value)
    # The abandoned stream left the connection usable.
    assert pg.fetchall("SELECT 2")[1] == [(2,)]


# A password with a space, an apostrophe, a double quote, an at sign, a percent sign
# and a non-ASCII letter: every one of them breaks a naively built connection string.
TRICKY = "pa ss'w\"o@rd %é-Sec"
TRICKY_USER = "tricky_login"


@pytest.fixture(scope="module")
def tricky_role(pg_server):
    import psycopg
    from psycopg import sql

    with psycopg.connect(pg_server.superuser_conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(TRICKY_USER)))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(TRICKY_USER), sql.Literal(TRICKY)))
    yield TRICKY_USER
    with psycopg.connect(pg_server.superuser_conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(TRICKY_USER)))


def tricky_dsns(server, password: str) -> dict[str, str]:
    from urllib.parse import quote

    where = f"{server.host}:{server.port}/{server.dbname}"
    quoted = password.replace("\\", "\\\\").replace("'", "\\'")
    keywords = f"host={server.host} port={server.port} dbname={server.dbname} user={TRICKY_USER}"
    return {
        "url, password as typed": f"postgresql://{TRICKY_USER}:{password}@{where}",
        "url, password percent-encoded": f"postgresql://{TRICKY_USER}:{quote(password, safe='')}@{where}",
        "key=value, password as typed": f"{keywords} password={password}",
        "key=value, password last and as typed": f"password={password} {keywords}",
        "key=value, password quoted": f"{keywords} password='{quoted}'",
    }


def test_a_password_with_spaces_and_quotes_connects_in_every_dsn_form(pg_server, tricky_role):
    forms = {**tricky_dsns(pg_server, TRICKY), "config keys": None}
    for form, dsn in forms.items():
        config = {"dsn": dsn} if dsn else pg_server.config(user=TRICKY_USER, password=TRICKY)
        connector = named(PostgresConnector(config=config, options={}), "tricky")
        try:
            assert connector.fetchall("SELECT current_user")[1] == [(TRICKY_USER,)], form
        finally:
            connector.close()


def test_a_wrong_password_with_spaces_never_shows_in_errors(pg_server, tricky_role):
    wrong = "wr ong'pa\"ss@w %é-Sec"
    pieces = [piece for piece in wrong.split() if len(piece) >= 3] + ["ong'pa", "ss@w"]
    for form, dsn in tricky_dsns(pg_server, wrong).items():
        connector = named(PostgresConnector(config={"dsn": dsn}, options={}), "tricky")
        with pytest.raises(ConnectorError) as info:
            connector.fetchall("SELECT 1")
        text = str(info.value)
        assert "password authentication failed" in text, (form, text)
        for piece in pieces:
            assert piece not in text, (form, piece, text)
