"""Excel reports: ``excel_fill``, ``excel_validate_template`` and ``excel_read``.

``excel_fill`` opens a template workbook with openpyxl, sets named cells, writes rows
(a query's result or a CSV/Parquet/JSON Lines file, read in batches) into a sheet at a
start cell or into a named table that grows or shrinks to fit, and saves the result
under a temporary name renamed into place. Everything else in the template -- styles,
formulas, column widths, other sheets, defined names -- is kept as openpyxl keeps it.

``excel_read`` turns a sheet (or a range of it) into a tabular file with
python-calamine, a Rust reader several times faster than openpyxl, which stays the
fallback. ``excel_validate_template`` checks that a template has the sheets, named
cells and tables a flow needs and lists everything missing at once; ``excel_fill``
runs the same check before it writes anything.

openpyxl and python-calamine form the optional ``excel`` group, imported on first use.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import math
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from ...atomic import atomic_path
from ...errors import MissingDependencyError, StepError, StepInputError, suggest
from ...tabular import FORMATS, json_text, open_sink, open_source
from ..base import STEP_SUCCESS, Input, Step, StepResult
from .db import CSV_DIALECT_INPUTS, database, file_format

#: Rows and columns of one worksheet (Excel 2007 and later).
MAX_ROWS = 1_048_576
MAX_COLUMNS = 16_384
#: Characters one cell holds.
MAX_CELL_TEXT = 32_767
BATCH_SIZE = 10_000
_INSTALL = "pip install 'aetherflow[excel]' (or: pip install openpyxl python-calamine)"
_EXACT_INT = 2**53  # larger integers lose digits as Excel numbers (doubles)
_WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")

_INT = re.compile(r"-?(?:0|[1-9][0-9]{0,14})")
_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?")
_CONTROL = re.compile(r"[\000-\010\013\014\016-\037]")  # what the xlsx XML cannot hold


def _openpyxl():
    try:
        import openpyxl
    except ImportError:
        raise MissingDependencyError("the Excel steps need openpyxl, which is not installed", hint=f"install it: {_INSTALL}") from None
    return openpyxl


# -- the template ---------------------------------------------------------------------------------


@dataclass
class Template:
    """A loaded workbook and what a flow can address in it."""

    path: Path
    workbook: Any
    names: dict[str, tuple[str, str]]  # defined name -> (sheet, reference)
    tables: dict[str, tuple[str, Any]]  # table name -> (sheet, openpyxl Table)

    @property
    def sheets(self) -> list[str]:
        return list(self.workbook.sheetnames)


def _workbook_path(ctx, value: str, what: str, *, must_exist: bool) -> Path:
    path = ctx.path(value, what=what)
    if path.suffix.lower() not in _WORKBOOK_SUFFIXES:
        raise StepInputError(f"{what} {path.name!r} is not an Excel workbook (.xlsx or .xlsm)")
    if must_exist and not path.is_file():
        raise StepError(f"{what} {str(path)!r} does not exist", retryable=False)
    return path


def load_template(path: Path) -> Template:
    openpyxl = _openpyxl()
    try:
        workbook = openpyxl.load_workbook(path, keep_vba=path.suffix.lower() == ".xlsm", keep_links=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds (zip, XML, KeyError) for a bad file
        raise StepError(f"cannot open workbook {str(path)!r}: {type(exc).__name__}: {exc}", retryable=False) from None
    names: dict[str, tuple[str, str]] = {}
    for name, defined in workbook.defined_names.items():
        names.update(_destinations(name, defined))
    tables: dict[str, tuple[str, Any]] = {}
    for sheet in workbook.worksheets:
        for name, defined in getattr(sheet, "defined_names", {}).items():
            for local, place in _destinations(name, defined).items():
                names.setdefault(local, place)
        for name in sheet.tables:
            tables[name] = (sheet.title, sheet.tables[name])
    return Template(path, workbook, names, tables)


def _destinations(name: str, defined) -> dict[str, tuple[str, str]]:
    found = list(defined.destinations)
    if len(found) != 1:
        return {}  # a formula or a union of ranges: not a place to write a value
    return {name: found[0]}


def missing_parts(template: Template, sheets=(), cells=(), tables=()) -> list[str]:
    """What the template lacks, one entry per kind, each name with a suggestion."""
    problems = []
    for kind, wanted, known in (
        ("sheets", sheets, template.sheets),
        ("named cells", [c for c in cells if "!" not in str(c)], list(template.names)),
        ("tables", tables, list(template.tables)),
    ):
        missing = [f"{str(w)!r}{suggest(str(w), known)}" for w in dict.fromkeys(wanted) if str(w) not in known]
        if missing:
            problems.append(f"{kind} {', '.join(missing)}")
    for ref in cells:
        if "!" in str(ref):
            sheet, _, coordinate = str(ref).rpartition("!")
            sheet = sheet.strip("'")
            if sheet not in template.sheets:
                problems.append(f"sheet {sheet!r} of cell {ref!r}{suggest(sheet, template.sheets)}")
            elif not _is_cell(coordinate):
                problems.append(f"{coordinate!r} in {ref!r} is not a cell reference such as B2")
    return problems


def _is_cell(text: str) -> bool:
    return re.fullmatch(r"\$?[A-Za-z]{1,3}\$?[0-9]{1,7}", text) is not None


def require_parts(template: Template, sheets=(), cells=(), tables=()) -> None:
    problems = missing_parts(template, sheets, cells, tables)
    if problems:
        found = f"it has sheets {template.sheets}, named cells {sorted(template.names)}, tables {sorted(template.tables)}"
        raise StepError(f"template {template.path.name!r} is missing " + "; ".join(problems), hint=found, retryable=False)


def _cell(template: Template, ref: str):
    """The cell a defined name or a ``Sheet!B2`` reference points to."""
    if ref in template.names:
        sheet, coordinate = template.names[ref]
    else:
        sheet, _, coordinate = ref.rpartition("!")
        sheet = sheet.strip("'")
    if ":" in coordinate:
        raise StepError(f"named cell {ref!r} refers to the range {sheet}!{coordinate}, not to one cell", retryable=False)
    return template.workbook[sheet][coordinate.replace("$", "")]


# -- values -------------------------------------------------------------------------------------------


def cell_value(value: Any) -> Any:
    """``value`` as something an Excel cell stores faithfully.

    Numbers, booleans, dates and times stay native; a timezone-aware datetime is written
    in UTC (Excel has no zones); integers beyond 2**53 and NaN/infinity become text (a
    double would change them); bytes become ``\\x`` and hex digits, lists and mappings
    JSON, anything else its text."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        return value if -_EXACT_INT <= value <= _EXACT_INT else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return value if value.is_finite() else str(value)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            return value.astimezone(_dt.UTC).replace(tzinfo=None)
        return value
    if isinstance(value, (_dt.date, _dt.time, _dt.timedelta)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, (dict, list, tuple)):
        return json_text(value)
    return str(value)


def infer_text(value: str | None) -> Any:
    """A CSV field as the number or date it spells, else the text itself. Codes with
    leading zeros (``00123``) and numbers of more than 15 digits stay text."""
    if value is None or not value:
        return value
    first = value[0]
    if first.isdigit() or first == "-":
        if _INT.fullmatch(value):
            return int(value)
        if _FLOAT.fullmatch(value):
            return float(value)
        if len(value) == 10 and _DATE.fullmatch(value):
            try:
                return _dt.date.fromisoformat(value)
            except ValueError:
                return value
        if _DATETIME.fullmatch(value):
            try:
                return _dt.datetime.fromisoformat(value)
            except ValueError:
                return value
    return value


def _store(cell, value: Any, where: str) -> None:
    """Put a data value in a cell: text is always text (a leading ``=`` never makes a
    formula), and what a cell cannot hold is an error naming the cell."""
    value = cell_value(value)
    if isinstance(value, str):
        if len(value) > MAX_CELL_TEXT:
            raise StepError(f"{where}: a text of {len(value)} characters does not fit in a cell (at most {MAX_CELL_TEXT})", retryable=False)
        if _CONTROL.search(value):
            raise StepError(f"{where}: the text holds control characters that an Excel file cannot store", retryable=False)
        cell.value = value
        cell.data_type = "s"
        return
    cell.value = value


def _named_value(cell, value: Any) -> Any:
    """A value for a named cell: an ISO date or datetime string becomes a date when the
    template formats the cell as a date (templates render to text)."""
    if isinstance(value, str) and cell.is_date:
        parsed = infer_text(value)
        if isinstance(parsed, (_dt.date, _dt.datetime)):
            return parsed
    return value


# -- rows from a query or a file ---------------------------------------------------------------------


@dataclass
class Rows:
    columns: list[str]
    batches: Iterator[list[tuple]]
    close: Any = None


def _query_rows(ctx, block: dict[str, Any]) -> Rows:
    db = database(ctx, block["resource"])
    stream = db.iter_batches(block["sql"], block.get("params"), BATCH_SIZE, yield_empty=True)
    first = next(stream, None)
    columns = first[0] if first is not None else []

    def batches():
        if first is not None and first[1]:
            yield first[1]
        for _, rows in stream:
            yield rows

    return Rows(list(columns), batches(), stream.close)


def _file_rows(ctx, block: dict[str, Any], where: str) -> Rows:
    path = ctx.path(block["input"], what=f"{where}.input")
    if not path.is_file():
        raise StepError(f"{where}: input file {str(path)!r} does not exist", retryable=False)
    fmt = file_format(f"step type 'excel_fill': {where}", path, block)
    source = open_source(fmt, path, BATCH_SIZE)
    columns = source.columns or [f"column_{i + 1}" for i in range(source.width)]
    infer = fmt.delimited and block.get("csv_types", "infer") == "infer"

    def batches():
        for rows in source.batches():
            yield [tuple(infer_text(v) for v in row) for row in rows] if infer else rows

    return Rows(list(columns), batches(), source.close)


# -- writing a block ----------------------------------------------------------------------------------

_BLOCK_KEYS = (
    "sheet", "start_cell", "table", "write_header", "resource", "sql", "params", "input", "format", "header", "csv_types", *CSV_DIALECT_INPUTS,
)


def read_blocks(value: Any) -> list[dict[str, Any]]:
    """The ``data`` input as a list of checked blocks."""
    blocks = [value] if isinstance(value, dict) else value
    if not isinstance(blocks, list):
        raise StepInputError("step type 'excel_fill': input 'data' must be a mapping or a list of mappings")
    for index, block in enumerate(blocks):
        where = f"data[{index}]"
        if not isinstance(block, dict):
            raise StepInputError(f"step type 'excel_fill': {where} must be a mapping")
        for key in block:
            if key not in _BLOCK_KEYS:
                raise StepInputError(f"step type 'excel_fill': unknown key {key!r} in {where}{suggest(str(key), _BLOCK_KEYS)}")
        if ("table" in block) == ("sheet" in block):
            raise StepInputError(f"step type 'excel_fill': {where} needs exactly one target: 'table' (a named table) or 'sheet' (with start_cell)")
        if "table" in block and ("start_cell" in block or "write_header" in block):
            raise StepInputError(f"step type 'excel_fill': {where}: a table keeps its own header row and place; start_cell and write_header are for sheets")
        if ("sql" in block) == ("input" in block) or (("sql" in block) != ("resource" in block)):
            raise StepInputError(f"step type 'excel_fill': {where} needs exactly one source: resource with sql, or input (a file)")
        if block.get("csv_types", "infer") not in ("infer", "text"):
            raise StepInputError(f"step type 'excel_fill': {where}.csv_types must be 'infer' or 'text'")
        if "input" in block:
            file_format(f"step type 'excel_fill': {where}", Path(str(block["input"])), block)  # the dialect, checked before any work
    return blocks


class _Writer:
    """Writes rows into a rectangle of one sheet, each row styled like the template's
    first data row, refusing to pass the sheet's last row."""

    def __init__(self, sheet, top: int, left: int, width: int, where: str):
        self.sheet, self.top, self.left, self.width, self.where = sheet, top, left, width, where
        self.row = top
        if left + width - 1 > MAX_COLUMNS:
            raise StepError(f"{where}: {width} columns from column {left} pass the sheet's last column ({MAX_COLUMNS})", retryable=False)
        self.styles = [sheet.cell(row=top, column=left + i)._style for i in range(width)]

    def write(self, rows: list[tuple]) -> None:
        sheet, left, width, styles = self.sheet, self.left, self.width, self.styles
        if self.row + len(rows) - 1 > MAX_ROWS:
            raise StepError(
                f"{self.where}: the data needs rows up to {self.row + len(rows) - 1:,} of sheet {sheet.title!r}, "
                f"but a sheet holds at most {MAX_ROWS:,} rows",
                hint="filter or split the data (one sheet per part), or deliver it as CSV or Parquet",
                retryable=False,
            )
        for values in rows:
            if len(values) != width:
                raise StepError(f"{self.where}: a row has {len(values)} values, the target {width} columns", retryable=False)
            r = self.row
            for i, value in enumerate(values):
                cell = sheet.cell(row=r, column=left + i)
                cell._style = styles[i]  # openpyxl's way to share a style: a copy of the style ids
                _store(cell, value, f"{self.where} cell {cell.coordinate}")
            self.row += 1

    @property
    def written(self) -> int:
        return self.row - self.top


def _fill_sheet(template: Template, block: dict[str, Any], rows: Rows, where: str) -> int:
    from openpyxl.utils.cell import column_index_from_string, coordinate_from_string

    sheet = template.workbook[block["sheet"]]
    try:
        letters, top = coordinate_from_string(str(block.get("start_cell", "A1")).replace("$", ""))
    except ValueError:
        raise StepInputError(f"{where}.start_cell {block.get('start_cell')!r} is not a cell reference such as B2") from None
    left = column_index_from_string(letters)
    width = len(rows.columns)
    if block.get("write_header", True):
        header = _Writer(sheet, top, left, width, where)
        header.write([tuple(rows.columns)])
        top += 1
    writer = _Writer(sheet, top, left, width, where)
    for batch in rows.batches:
        writer.write(batch)
    return writer.written


def _fill_table(template: Template, block: dict[str, Any], rows: Rows, where: str, log) -> int:
    from openpyxl.utils.cell import get_column_letter, range_boundaries

    sheet_name, table = template.tables[block["table"]]
    sheet = template.workbook[sheet_name]
    left, top, right, bottom = range_boundaries(table.ref)
    if table.totalsRowCount:
        raise StepError(
            f"{where}: table {table.displayName!r} has a totals row, which filling does not move",
            hint="switch the totals row off and put the totals beside or above the table (SUBTOTAL(109, Table[column]) works anywhere)",
            retryable=False,
        )
    width = right - left + 1
    names = [str(c.name) for c in table.tableColumns] if table.tableColumns else []
    if len(rows.columns) != width:
        raise StepError(
            f"{where}: table {table.displayName!r} has {width} columns {names}, the data {len(rows.columns)} {rows.columns}",
            retryable=False,
        )
    if [n.lower() for n in names] != [c.lower() for c in rows.columns]:
        log.warning("excel_fill.column_names_differ", extra={"table": table.displayName, "table_columns": names, "data_columns": rows.columns})
    limit = _first_filled_row_below(sheet, bottom, left, right)
    writer = _Writer(sheet, top + 1, left, width, where)
    for batch in rows.batches:
        if limit is not None and writer.row + len(batch) > limit:
            raise StepError(
                f"{where}: table {table.displayName!r} would grow over row {limit} of sheet {sheet.title!r}, which is not empty",
                hint="leave the rows below a table empty: put totals above it, beside it or on another sheet",
                retryable=False,
            )
        writer.write(batch)
    count = writer.written
    for r in range(top + 1 + count, bottom + 1):  # the template's own rows beyond the data
        for c in range(left, right + 1):
            sheet.cell(row=r, column=c).value = None
    last = top + max(count, 1)  # a table keeps at least one (empty) data row
    table.ref = f"{get_column_letter(left)}{top}:{get_column_letter(right)}{last}"
    if table.autoFilter is not None:
        table.autoFilter.ref = table.ref
    return count


def _first_filled_row_below(sheet, bottom: int, left: int, right: int) -> int | None:
    for row in sheet.iter_rows(min_row=bottom + 1, max_row=max(sheet.max_row, bottom + 1), min_col=left, max_col=right):
        if any(cell.value is not None for cell in row):
            return row[0].row
    return None


# -- the steps --------------------------------------------------------------------------------------


class ExcelFill(Step):
    type = "excel_fill"
    summary = "Fill an Excel template: named cells, rows from a query or a file into a sheet or a table (atomic write)"
    inputs = {
        "template": Input(str, help="the template workbook (.xlsx or .xlsm); without one a new workbook is streamed (write-only)"),
        "output": Input(str, required=True, help="the workbook to write (same kind as the template)"),
        "cells": Input(dict, help="named cell (or Sheet!B2) -> value"),
        "data": Input(
            (list, dict),
            help=(
                "blocks: {table: NAME | sheet: NAME, start_cell, write_header} with {resource, sql, params} "
                "or {input, format, header, csv_types, and the CSV dialect: delimiter, encoding, null, ...}"
            ),
        ),
    }
    outputs = ("path", "rows", "sheets", "bytes")

    def run(self, ctx, inputs):
        output = _workbook_path(ctx, inputs["output"], "output", must_exist=False)
        cells = inputs.get("cells") or {}
        blocks = read_blocks(inputs.get("data") or [])
        if inputs.get("template") is None:
            return _fill_new_workbook(ctx, blocks, cells, output)
        template_path = _workbook_path(ctx, inputs["template"], "template", must_exist=True)
        if (template_path.suffix.lower() == ".xlsm") != (output.suffix.lower() == ".xlsm"):
            raise StepInputError(f"step type 'excel_fill': a {template_path.suffix} template is written as {template_path.suffix}, not {output.suffix}")
        template = load_template(template_path)
        require_parts(
            template,
            sheets=[b["sheet"] for b in blocks if "sheet" in b],
            cells=list(cells),
            tables=[b["table"] for b in blocks if "table" in b],
        )
        for ref, value in cells.items():
            cell = _cell(template, str(ref))
            _store(cell, _named_value(cell, value), f"cell {ref!r}")

        total = 0
        bar = ctx.progress(f"fill {output.name}", unit="rows")
        try:
            for index, block in enumerate(blocks):
                where = f"data[{index}]"
                rows = _query_rows(ctx, block) if "sql" in block else _file_rows(ctx, block, where)
                counted = _counted(rows, bar.advance)
                try:
                    if "table" in block:
                        written = _fill_table(template, block, counted, where, ctx.logger)
                    else:
                        written = _fill_sheet(template, block, counted, where)
                finally:
                    if rows.close is not None:
                        rows.close()
                ctx.logger.info("excel_fill.block", extra={"block": where, "target": block.get("table") or block["sheet"], "rows": written})
                total += written
            with atomic_path(output) as partial:
                try:
                    template.workbook.save(partial)
                except OSError as exc:
                    raise StepError(f"cannot write {str(output)!r}: {exc.strerror}") from None
        finally:
            bar.close()
        size = output.stat().st_size
        ctx.logger.info("excel_fill.written", extra={"path": str(output), "rows": total, "bytes": size})
        return StepResult(STEP_SUCCESS, {"path": str(output), "rows": total, "sheets": template.sheets, "bytes": size})


def _fill_new_workbook(ctx, blocks: list[dict[str, Any]], cells: dict[str, Any], output: Path) -> StepResult:
    """Without a template: a new workbook in openpyxl's write-only mode, where each row
    goes to a temporary file as it is appended, so memory stays flat whatever the row
    count. Rows can only be appended: blocks fill sheets top to bottom."""
    if cells:
        raise StepInputError("step type 'excel_fill': 'cells' needs a template (a new workbook has no named cells)")
    if output.suffix.lower() != ".xlsx":
        raise StepInputError("step type 'excel_fill': a new workbook is written as .xlsx")
    for index, block in enumerate(blocks):
        if "table" in block:
            raise StepInputError(f"step type 'excel_fill': data[{index}] fills table {block['table']!r}, which needs a template")
    openpyxl = _openpyxl()
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.utils.cell import column_index_from_string, coordinate_from_string

    workbook = openpyxl.Workbook(write_only=True)
    sheets: dict[str, list[Any]] = {}  # name -> [worksheet, next row]
    total = 0
    bar = ctx.progress(f"fill {output.name}", unit="rows")
    try:
        for index, block in enumerate(blocks):
            where = f"data[{index}]"
            name = block["sheet"]
            if name not in sheets:
                sheets[name] = [workbook.create_sheet(name), 1]
            state = sheets[name]
            letters, top = coordinate_from_string(str(block.get("start_cell", "A1")).replace("$", ""))
            if top < state[1]:
                raise StepInputError(
                    f"step type 'excel_fill': {where}.start_cell {block.get('start_cell')!r} is above row {state[1]}, where sheet "
                    f"{name!r} continues; without a template rows can only be appended"
                )
            for _ in range(top - state[1]):
                state[0].append([])
            state[1] = top
            pad = [None] * (column_index_from_string(letters) - 1)
            rows = _query_rows(ctx, block) if "sql" in block else _file_rows(ctx, block, where)

            def append(values, _state=state, _pad=pad, _where=where):
                if _state[1] > MAX_ROWS:
                    raise StepError(
                        f"{_where}: the data needs row {_state[1]:,} of sheet {_state[0].title!r}, but a sheet holds at most {MAX_ROWS:,} rows",
                        hint="filter or split the data (one sheet per part), or deliver it as CSV or Parquet",
                        retryable=False,
                    )
                line = list(_pad)
                for value in values:
                    cell = WriteOnlyCell(_state[0])
                    _store(cell, value, f"{_where} row {_state[1]}")
                    line.append(cell)
                _state[0].append(line)
                _state[1] += 1

            written = 0
            try:
                if block.get("write_header", True):
                    append(rows.columns)
                for batch in rows.batches:
                    for values in batch:
                        append(values)
                    written += len(batch)
                    bar.advance(len(batch))
            finally:
                if rows.close is not None:
                    rows.close()
            ctx.logger.info("excel_fill.block", extra={"block": where, "target": name, "rows": written})
            total += written
        if not sheets:
            workbook.create_sheet("Sheet1")
        with atomic_path(output) as partial:
            workbook.save(partial)
    except BaseException:
        _discard(workbook)
        raise
    finally:
        bar.close()
    size = output.stat().st_size
    ctx.logger.info("excel_fill.written", extra={"path": str(output), "rows": total, "bytes": size, "write_only": True})
    return StepResult(STEP_SUCCESS, {"path": str(output), "rows": total, "sheets": list(sheets) or ["Sheet1"], "bytes": size})


def _discard(workbook) -> None:
    """Finish a write-only workbook that will not be delivered. Its sheets stream into
    open temporary files until the workbook is saved; left to the garbage collector,
    they are closed at some random later moment. Saving into a throwaway directory
    closes and removes them now, through openpyxl's own path."""
    with tempfile.TemporaryDirectory(prefix="aetherflow-excel-") as scratch:
        try:
            workbook.save(Path(scratch) / "discarded.xlsx")
        except Exception:  # noqa: BLE001 - the error that stopped the fill is the one to report
            pass


def _counted(rows: Rows, advance) -> Rows:
    """The same rows, reporting their progress."""

    def batches():
        for batch in rows.batches:
            yield batch
            advance(len(batch))

    return Rows(rows.columns, batches())


class ExcelValidateTemplate(Step):
    type = "excel_validate_template"
    summary = "Check that an Excel template has the sheets, named cells and tables a flow needs"
    inputs = {
        "template": Input(str, required=True, help="the template workbook (.xlsx or .xlsm)"),
        "sheets": Input(list, default=[], help="sheet names that must exist"),
        "cells": Input(list, default=[], help="named cells (or Sheet!B2 references) that must exist"),
        "tables": Input(list, default=[], help="named tables that must exist"),
    }
    outputs = ("path", "sheets", "cells", "tables")

    def run(self, ctx, inputs):
        path = _workbook_path(ctx, inputs["template"], "template", must_exist=True)
        template = load_template(path)
        require_parts(template, inputs["sheets"], inputs["cells"], inputs["tables"])
        return StepResult(
            STEP_SUCCESS,
            {"path": str(path), "sheets": template.sheets, "cells": sorted(template.names), "tables": sorted(template.tables)},
        )


# -- reading ------------------------------------------------------------------------------------------


_RANGE = re.compile(r"\$?([A-Za-z]{1,3})\$?([0-9]*)(?::\$?([A-Za-z]{1,3})\$?([0-9]*))?")


def _parse_range(text: str | None, origin: tuple[int, int]) -> tuple[int, int, int | None, int | None]:
    """``(first row, first column, last row, last column)``, 1-based; None: to the end.
    A range may be open at the bottom (``A3:F``); without one, reading starts at the
    first used cell (``origin``)."""
    if not text:
        return origin[0], origin[1], None, None
    from openpyxl.utils.cell import column_index_from_string

    match = _RANGE.fullmatch(text.strip())
    if match is None:
        raise StepInputError(f"step type 'excel_read': range {text!r} is not a cell range such as A1:D100 or A3:F")
    first_col, first_row, last_col, last_row = match.groups()
    top = int(first_row) if first_row else 1
    left = column_index_from_string(first_col.upper())
    right = column_index_from_string(last_col.upper()) if last_col else None
    bottom = int(last_row) if last_row else None
    if top < 1 or (bottom is not None and bottom < top) or (right is not None and right < left):
        raise StepInputError(f"step type 'excel_read': range {text!r} is empty or reversed")
    return top, left, bottom, right


def _calamine_rows(path: Path, sheet: str | None) -> tuple[str, tuple[int, int], Iterator[list[Any]]]:
    """The sheet's name, its first used cell (row, column) and its rows from A1
    (python-calamine), empty cells as None."""
    from python_calamine import CalamineWorkbook

    workbook = CalamineWorkbook.from_path(str(path))
    name = sheet if sheet is not None else workbook.sheet_names[0]
    if name not in workbook.sheet_names:
        raise StepError(f"workbook {path.name!r} has no sheet {name!r}{suggest(name, workbook.sheet_names)}", retryable=False)
    data = workbook.get_sheet_by_name(name)

    def rows():
        if data.start is None:
            return  # an empty sheet
        (top, left), right = data.start, data.end[1]
        lines = data.iter_rows()
        first = next(lines, None)
        if first is None:
            return
        # Where iter_rows starts is not documented: the versions measured start at row 1
        # but at the first used column. A first row left empty means it started at row 1
        # (the first used row has a value); a full-width row means it started at column A.
        if not (top > 0 and all(v == "" for v in first)):
            for _ in range(top):
                yield []
        pad = [] if len(first) == right + 1 else [None] * left
        for line in itertools.chain([first], lines):
            yield pad + [None if v == "" else v for v in line]

    origin = (data.start[0] + 1, data.start[1] + 1) if data.start is not None else (1, 1)
    return name, origin, rows()


def _openpyxl_rows(path: Path, sheet: str | None) -> tuple[str, tuple[int, int], Iterator[list[Any]]]:
    openpyxl = _openpyxl()
    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    name = sheet if sheet is not None else workbook.sheetnames[0]
    if name not in workbook.sheetnames:
        workbook.close()
        raise StepError(f"workbook {path.name!r} has no sheet {name!r}{suggest(name, workbook.sheetnames)}", retryable=False)

    worksheet = workbook[name]

    def rows():
        try:
            for line in worksheet.iter_rows(min_row=1, min_col=1, values_only=True):
                yield list(line)
        finally:
            workbook.close()

    return name, (worksheet.min_row, worksheet.min_column), rows()


def _cut(rows: Iterator[list[Any]], bounds: tuple[int, int, int | None, int | None]) -> Iterator[list[Any]]:
    top, left, bottom, right = bounds
    for number, line in enumerate(rows, 1):
        if number < top:
            continue
        if bottom is not None and number > bottom:
            break
        yield line[left - 1 : right] if right is not None else line[left - 1 :]


def _column_names(values: list[Any]) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    for index, value in enumerate(values, 1):
        base = f"column_{index}" if value is None or str(value).strip() == "" else str(value).strip()
        name, n = base, 2
        while name in seen:
            name, n = f"{base}_{n}", n + 1
        seen.add(name)
        names.append(name)
    return names


def _text_number(value: Any) -> Any:
    """Whole numbers read back as integers (every number in a workbook is a double)."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= _EXACT_INT:
        return int(value)
    return value


class ExcelRead(Step):
    type = "excel_read"
    summary = "Read a sheet (or a range) of a workbook into a csv, tsv, jsonl or parquet file (atomic write)"
    inputs = {
        "input": Input(str, required=True, help="the workbook to read (.xlsx, .xlsm; .xls and .ods with python-calamine)"),
        "output": Input(str, required=True, help="the file to write; its extension picks the format unless format is given"),
        "sheet": Input(str, help="sheet name (default: the first sheet)"),
        "range": Input(str, help="cells to read, such as A3:F or B2:D100 (default: the whole sheet)"),
        "header": Input(bool, default=True, help="the first row read holds the column names"),
        "format": Input(str, choices=FORMATS, help="output format; default from the output's extension"),
        "engine": Input(str, default="auto", choices=("auto", "calamine", "openpyxl"), help="auto: python-calamine, else openpyxl"),
        **CSV_DIALECT_INPUTS,
    }
    outputs = ("path", "rows", "columns", "sheet", "engine", "bytes")

    def run(self, ctx, inputs):
        source = ctx.path(inputs["input"], what="input")
        if not source.is_file():
            raise StepError(f"input workbook {str(source)!r} does not exist", retryable=False)
        output = ctx.path(inputs["output"], what="output")
        # The file written always starts with the column names; input 'header' is about the sheet.
        fmt = file_format(f"step type {self.type!r}", output, {**inputs, "header": True})
        engine, (sheet, origin, lines) = self._open(source, inputs["sheet"], inputs["engine"], ctx.logger)
        bounds = _parse_range(inputs.get("range"), origin)
        rows = _cut(lines, bounds)
        first = next(rows, None)
        if first is None:
            raise StepError(f"sheet {sheet!r} of {source.name!r} has no cells in {inputs.get('range') or 'it'}", retryable=False)
        width = len(first)
        if inputs["header"]:
            columns, pending = _column_names(first), []
        else:
            columns, pending = [f"column_{i + 1}" for i in range(width)], [first]
        convert = _text_number if fmt.name != "parquet" else (lambda v: v)
        count = 0
        bar = ctx.progress(f"read {source.name}:{sheet}", unit="rows")
        try:
            with atomic_path(output) as partial:
                sink = open_sink(fmt, partial, columns)
                try:
                    batch: list[tuple] = []
                    for line in itertools.chain(pending, rows):
                        if not any(v is not None for v in line):
                            continue  # an empty row inside the range
                        line = (line + [None] * width)[:width]
                        batch.append(tuple(convert(v) for v in line))
                        if len(batch) >= BATCH_SIZE:
                            sink.write(batch)
                            count += len(batch)
                            bar.advance(len(batch))
                            batch = []
                    if batch:
                        sink.write(batch)
                        count += len(batch)
                        bar.advance(len(batch))
                finally:
                    sink.close()
        except ValueError as exc:  # a column whose values change type (Parquet)
            raise StepError(f"cannot write {output.name!r} from sheet {sheet!r}: {exc}", retryable=False) from None
        finally:
            bar.close()
        size = output.stat().st_size
        ctx.logger.info("excel_read.written", extra={"path": str(output), "rows": count, "sheet": sheet, "engine": engine})
        return StepResult(
            STEP_SUCCESS, {"path": str(output), "rows": count, "columns": columns, "sheet": sheet, "engine": engine, "bytes": size}
        )

    @staticmethod
    def _open(path: Path, sheet: str | None, engine: str, log) -> tuple[str, tuple[str, tuple[int, int], Iterator[list[Any]]]]:
        if engine in ("auto", "calamine"):
            try:
                return "calamine", _calamine_rows(path, sheet)
            except ImportError:
                if engine == "calamine":
                    raise MissingDependencyError("engine 'calamine' needs python-calamine, which is not installed", hint=f"install it: {_INSTALL}") from None
            except StepError:
                raise
            except Exception as exc:  # noqa: BLE001 - calamine's own errors for a file it cannot parse
                if engine == "calamine":
                    raise StepError(f"python-calamine cannot read {path.name!r}: {exc}", retryable=False) from None
                log.warning("excel_read.fallback", extra={"path": str(path), "reason": str(exc)})
        if path.suffix.lower() not in _WORKBOOK_SUFFIXES:
            raise StepError(f"openpyxl reads .xlsx and .xlsm only, not {path.name!r}", hint=f"install python-calamine: {_INSTALL}", retryable=False)
        return "openpyxl", _openpyxl_rows(path, sheet)
