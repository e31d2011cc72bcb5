"""db/postgres errors never show a password, against the real server (see
tests/test_driver_errors_scrubbed.py)."""

from __future__ import annotations

from aetherflow.core.connectors.builtin.db_postgres import PostgresConnector
from tests.helpers import driver_fault
from tests.services import free_port

SECRET = "Zq7-distinct-S3cret"


def connect(connector):
    connector.execute("SELECT 1")


def make(**config) -> PostgresConnector:
    return PostgresConnector(config=config, options={"connect_timeout": 5})


def test_postgres_errors_never_show_the_password(pg_server):
    server = pg_server.config()
    wrong = driver_fault(connect, make(**{**server, "password": SECRET}), SECRET)
    assert "password authentication failed" in str(wrong)
    driver_fault(connect, make(**{**server, "port": free_port(), "password": SECRET}), SECRET)
    driver_fault(connect, make(dsn=f"host={server['host']} port=notaport user={server['user']} password={SECRET}"), SECRET)
    # libpq quotes a malformed URL whole, password included.
    quoted = driver_fault(connect, make(url=f"postgresql://{server['user']}:{SECRET}@[::1"), SECRET)
    assert "postgresql://" in str(quoted)
    # The server quotes a value a query got wrong: here the real password.
    echoed = driver_fault(lambda c: c.execute(f"SELECT '{pg_server.password}'::int"), make(**server), pg_server.password)
    assert "invalid input syntax" in str(echoed)
