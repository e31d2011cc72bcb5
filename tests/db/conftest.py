"""Fixtures for the database tests: connectors to the session's PostgreSQL and MariaDB
(``pg_server`` and ``mariadb_server`` in tests/services/plugin.py) and to embedded
SQLite / DuckDB files in the test's temp dir."""

from __future__ import annotations

import re

import pytest

from aetherflow.core.connectors.builtin.db_duckdb import DuckDBConnector
from aetherflow.core.connectors.builtin.db_postgres import PostgresConnector
from aetherflow.core.connectors.builtin.db_sqlalchemy import MySQLConnector
from aetherflow.core.connectors.builtin.db_sqlite3 import SQLiteConnector
from tests.helpers import step_context


@pytest.fixture(params=["mysqlclient", "pymysql"])
def mysql(request, mariadb_server, maria_database):
    """A db/mysql connector to the test's database, once with each DB-API driver."""
    connector = named(MySQLConnector(config=mariadb_server.config(database=maria_database, client=request.param), options={}), "my")
    yield connector
    connector.close()


def named(connector, name):
    connector.name = name
    return connector


@pytest.fixture
def pg(pg_server):
    connector = named(PostgresConnector(config=pg_server.config(), options={}), "pg")
    yield connector
    connector.close()


@pytest.fixture
def lite(tmp_path):
    connector = named(SQLiteConnector(config={"path": str(tmp_path / "lite.db")}, options={}), "lite")
    yield connector
    connector.close()


@pytest.fixture
def duck(tmp_path):
    connector = named(DuckDBConnector(config={"path": str(tmp_path / "duck.duckdb")}, options={}), "duck")
    yield connector
    connector.close()


@pytest.fixture
def table(request, pg):
    """A table name unique to the test, dropped afterwards from PostgreSQL."""
    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:50]
    pg.execute(f"DROP TABLE IF EXISTS {name}")
    yield name
    pg.execute(f"DROP TABLE IF EXISTS {name}")


@pytest.fixture
def ctx_for(tmp_path):
    """``ctx_for(**connectors)``: a step context whose workspace is ``tmp_path/workspace``."""

    def build(**connectors):
        return step_context(tmp_path, connectors=connectors)

    return build
