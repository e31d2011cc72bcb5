"""A database driver written as a plugin against the public ``db`` family: Python's
sqlite3 module behind ``DatabaseConnector``, registered as ``db/myplug``. It imports
only ``aetherflow.core.api``; everything else (transactions, streaming, extract and
load in every file format) comes from the family."""

import sqlite3

from aetherflow.core.api import DatabaseConnector, Field, register_connector


@register_connector(kind="db", driver="myplug")
class PluginDatabase(DatabaseConnector):
    """SQLite through the public db family (a test plugin)."""

    paramstyle = "qmark (?) with a list"
    placeholder = "?"
    config_schema = {
        "path": Field(str, required=True, help="database file"),
        "password": Field(str, secret=True, help="not used by SQLite; here to prove it is scrubbed"),
    }
    options_schema = {"timeout_seconds": Field(float, default=5.0, help="how long to wait for a lock")}

    def _open(self, first):
        # Autocommit (isolation_level=None): the family brackets transactions itself.
        return sqlite3.connect(self.cfg("path"), timeout=self.opt("timeout_seconds"), isolation_level=None, check_same_thread=False)

    def _is_timeout(self, exc):
        return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)
