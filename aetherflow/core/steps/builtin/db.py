"""Database steps: ``db_execute``, ``db_fetch``, ``db_extract``, ``db_load``.

They work with any connector of the ``db`` family (:class:`DatabaseConnector`, built-in
or plugin):
the steps decide what to do, the connector decides how (a driver's native COPY, or
the generic streamed path).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ...atomic import atomic_path
from ...connectors.families.db import DEFAULT_BATCH_SIZE, LOAD_MODES, DatabaseConnector
from ...errors import StepError, StepInputError
from ...tabular import DIALECT_OPTIONS, FORMATS, TableFormat, format_from_path, json_value, table_format
from ..base import STEP_SUCCESS, Input, Step, StepResult, resource_connector

_RESOURCE = Input(str, required=True, resource=True, help="name of a db resource")
_PARAMS = Input((list, dict), help="query parameters: a list for positional placeholders, a mapping for named ones")
# validate warns about a template rendered into `sql`; this input says it is intended.
_ALLOW_SQL_TEMPLATE = Input(bool, default=False, help="a template in `sql` is intended (quote names with | sql_identifier): no warning")


def database(ctx, name: str) -> DatabaseConnector:
    """The connector of resource ``name``, which must be a database connector."""
    return resource_connector(ctx, name, lambda c: isinstance(c, DatabaseConnector), "a database connector")


#: The CSV/TSV dialect inputs, shared by the steps that read or write such files.
CSV_DIALECT_INPUTS = {name: Input(str, help=help) for name, help in DIALECT_OPTIONS.items()}


def file_format(where: str, path: Path, values: dict[str, Any]) -> TableFormat:
    """The format of file ``path`` from step inputs (or a block of them): ``format``
    (default: from the extension), ``header`` and the CSV dialect inputs. ``where``
    names the step (and block) in error messages."""
    name = values.get("format") or format_from_path(path)
    if name is None:
        raise StepInputError(f"{where}: cannot tell the format of {path.name!r} from its extension; set 'format' to one of {', '.join(FORMATS)}")
    header = values.get("header")
    try:
        return table_format(name, True if header is None else header, **{key: values.get(key) for key in DIALECT_OPTIONS})
    except ValueError as exc:
        raise StepInputError(f"{where}: {exc}") from None


def _file_digest(path: Path) -> tuple[int, str]:
    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256")
    return path.stat().st_size, digest.hexdigest()


class DbExecute(Step):
    type = "db_execute"
    summary = "Run a SQL statement (or a script without parameters) on a database"
    inputs = {
        "resource": _RESOURCE,
        "sql": Input(str, help="the SQL to run (give sql or sql_file)"),
        "sql_file": Input(str, help="a file holding the SQL, relative to the job workspace"),
        "params": _PARAMS,
        "allow_sql_template": _ALLOW_SQL_TEMPLATE,
    }
    outputs = ("rowcount",)

    def run(self, ctx, inputs):
        sql, sql_file = inputs["sql"], inputs["sql_file"]
        if (sql is None) == (sql_file is None):
            raise StepInputError("step type 'db_execute': give exactly one of 'sql' and 'sql_file'")
        if sql_file is not None:
            path = ctx.path(sql_file, what="sql_file")
            try:
                sql = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise StepError(f"sql_file {str(path)!r} does not exist") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise StepError(f"cannot read sql_file {str(path)!r}: {exc}") from None
        if not sql.strip():
            raise StepInputError("step type 'db_execute': the SQL is empty")
        rowcount = database(ctx, inputs["resource"]).execute(sql, inputs["params"])
        return StepResult(STEP_SUCCESS, {"rowcount": rowcount})


class DbFetch(Step):
    type = "db_fetch"
    summary = "Run a query and return its (small) result as outputs"
    inputs = {
        "resource": _RESOURCE,
        "sql": Input(str, required=True, help="the query"),
        "params": _PARAMS,
        "allow_sql_template": _ALLOW_SQL_TEMPLATE,
        "max_rows": Input(int, default=10_000, help="more rows than this fails the step (use db_extract for big results)"),
    }
    outputs = ("columns", "rows", "row_count")

    def run(self, ctx, inputs):
        max_rows = inputs["max_rows"]
        if max_rows < 0:
            raise StepInputError(f"step type 'db_fetch': input 'max_rows' must be 0 or more, not {max_rows}")
        db = database(ctx, inputs["resource"])
        columns, rows = db.fetchmany(inputs["sql"], inputs["params"], max_rows=max_rows + 1)
        if len(rows) > max_rows:
            raise StepError(
                f"the query returned more than max_rows={max_rows} rows; db_fetch keeps results in the run's "
                "outputs, so raise max_rows for a slightly bigger result or use db_extract to stream it to a file"
            )
        values = [[json_value(v) for v in row] for row in rows]
        return StepResult(STEP_SUCCESS, {"columns": columns, "rows": values, "row_count": len(values)})


class DbExtract(Step):
    type = "db_extract"
    summary = "Stream a query's result to a csv, tsv, jsonl or parquet file (atomic write)"
    inputs = {
        "resource": _RESOURCE,
        "sql": Input(str, required=True, help="the query"),
        "output": Input(str, required=True, help="file to write, relative to the job workspace"),
        "params": _PARAMS,
        "allow_sql_template": _ALLOW_SQL_TEMPLATE,
        "format": Input(str, choices=FORMATS, help="file format; default from the output's extension"),
        "header": Input(bool, default=True, help="write a header line (csv, tsv)"),
        "batch_size": Input(int, default=DEFAULT_BATCH_SIZE, help="rows fetched per round trip on the generic path"),
        **CSV_DIALECT_INPUTS,
    }
    outputs = ("path", "rows", "bytes", "sha256", "columns")

    def run(self, ctx, inputs):
        if inputs["batch_size"] < 1:
            raise StepInputError(f"step type 'db_extract': input 'batch_size' must be at least 1, not {inputs['batch_size']}")
        db = database(ctx, inputs["resource"])
        output = ctx.path(inputs["output"], what="output")
        fmt = file_format(f"step type {self.type!r}", output, inputs)
        bar = ctx.progress(f"extract {inputs['resource']} -> {output.name}", unit="rows")
        try:
            with atomic_path(output) as partial:
                result = db.export(
                    inputs["sql"],
                    inputs["params"],
                    path=partial,
                    format=fmt,
                    progress=bar.advance,
                    batch_size=inputs["batch_size"],
                )
                size, sha256 = _file_digest(partial)
        finally:
            bar.close()
        outputs: dict[str, Any] = {
            "path": str(output),
            "rows": result["rows"],
            "bytes": size,
            "sha256": sha256,
            "columns": list(result["columns"]),
        }
        ctx.logger.info("db_extract.written", extra={"resource": inputs["resource"], "rows": result["rows"], "bytes": size, "format": fmt.name})
        return StepResult(STEP_SUCCESS, outputs)


class DbLoad(Step):
    type = "db_load"
    summary = "Load a csv, tsv, jsonl or parquet file into a table, in one transaction"
    inputs = {
        "resource": _RESOURCE,
        "table": Input(str, required=True, help="target table, used as written in SQL (schema.table allowed)"),
        "input": Input(str, required=True, help="file to load, relative to the job workspace"),
        "format": Input(str, choices=FORMATS, help="file format; default from the input's extension"),
        "header": Input(bool, default=True, help="the file starts with a header line (csv, tsv)"),
        "mode": Input(
            str,
            default="append",
            choices=LOAD_MODES,
            help="append, truncate (empty the table first) or replace (drop and create it from the file's columns)",
        ),
        **CSV_DIALECT_INPUTS,
    }
    outputs = ("rows",)

    def run(self, ctx, inputs):
        db = database(ctx, inputs["resource"])
        path = ctx.path(inputs["input"], what="input")
        fmt = file_format(f"step type {self.type!r}", path, inputs)
        if not path.is_file():
            raise StepError(f"input file {str(path)!r} does not exist")
        bar = ctx.progress(f"load {path.name} -> {inputs['resource']}.{inputs['table']}", unit="rows")
        try:
            rows = db.load(inputs["table"], path, format=fmt, mode=inputs["mode"], progress=bar.advance)
        finally:
            bar.close()
        ctx.logger.info("db_load.loaded", extra={"resource": inputs["resource"], "table": inputs["table"], "rows": rows, "mode": inputs["mode"]})
        return StepResult(STEP_SUCCESS, {"rows": rows})
