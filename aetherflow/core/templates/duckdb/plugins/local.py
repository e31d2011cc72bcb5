"""This project's own connector and step, written against the public API only.

Listed in the flow's ``plugins:``; ``aetherflow connectors list`` and ``aetherflow steps
list`` show them when that flow's plugins are loaded (AETHERFLOW_PLUGIN_PATHS=plugins).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from aetherflow.core.api import (
    STEP_SUCCESS,
    DatabaseConnector,
    Field,
    Input,
    Step,
    StepError,
    StepResult,
    register_connector,
    register_step,
)


@register_connector(kind="db", driver="local_sqlite")
class LocalSQLite(DatabaseConnector):
    """The shop's SQLite database, through the db family.

    A new database driver needs only ``_open``, returning a DB-API connection: put
    your database's client in place of sqlite3 and every db_* step works with it.
    """

    paramstyle = "qmark (?) with a list"
    config_schema = {"path": Field(str, required=True, help="database file; created with its folder when missing")}
    options_schema = {"timeout_seconds": Field(float, default=5.0, help="how long a statement waits for a lock")}

    def _open(self, first):
        path = Path(self.cfg("path")).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        return sqlite3.connect(path, timeout=self.opt("timeout_seconds"), isolation_level=None, check_same_thread=False)


@register_step()
class ExpectRows(Step):
    """Fail the job when a table has fewer rows than expected."""

    type = "local.expect_rows"
    summary = "Count a table's rows; fewer than min_rows fails the step"
    inputs = {
        "resource": Input(str, required=True, resource=True, help="a db resource"),
        "table": Input(str, required=True, help="the table to count"),
        "min_rows": Input(int, default=1, help="fewer rows than this fails the step"),
    }
    outputs = ("rows",)

    def run(self, ctx, inputs):
        _, rows = ctx.connectors[inputs["resource"]].fetchall(f"select count(*) from {inputs['table']}")
        count = rows[0][0]
        if count < inputs["min_rows"]:
            raise StepError(f"{inputs['table']} has {count} rows, expected at least {inputs['min_rows']}")
        ctx.logger.info("rows.counted", extra={"table": inputs["table"], "rows": count})
        return StepResult(STEP_SUCCESS, {"rows": count})
