"""``excel_fill``, ``excel_validate_template`` and ``excel_read`` called directly, each
result read back by an independent reader (python-calamine) or by openpyxl for what
only it sees (styles, widths, table ranges)."""

from __future__ import annotations

import builtins
import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook
from python_calamine import CalamineWorkbook

from aetherflow.core.connectors.builtin.db_duckdb import DuckDBConnector
from aetherflow.core.errors import MissingDependencyError, StepError, StepInputError
from tests.helpers import run_step, step_context

from .conftest import NOTES, build_template


@pytest.fixture
def ctx(tmp_path):
    context = step_context(tmp_path)
    build_template(context.workspace / "template.xlsx")
    (context.workspace / "orders.csv").write_text(
        "id,customer,amount,ordered_at\n"
        "1,Zoë,10.5,2024-05-01 10:00:00\n"
        '2,"=HYPERLINK(""http://x"")",20,2024-05-01T11:30:00\n'
        "3,00123,,\n",
        encoding="utf-8",
    )
    return context


def sheet_rows(path: Path, sheet: str) -> list[list]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()


def fill(ctx, **inputs):
    inputs.setdefault("template", "template.xlsx")
    inputs.setdefault("output", "out/report.xlsx")
    return run_step("excel_fill", ctx, **inputs)


# -- excel_fill -------------------------------------------------------------------------------------


def test_fill_grows_the_table_sets_named_cells_and_keeps_the_rest_of_the_template(ctx):
    result = fill(ctx, cells={"report_date": "2024-05-01", "region": "EMEA"}, data={"table": "Orders", "input": "orders.csv"})
    out = Path(result.outputs["path"])
    assert result.outputs["rows"] == 3
    assert result.outputs["sheets"] == ["Summary", "Data", "Notes", "Raw"]
    assert result.outputs["bytes"] == out.stat().st_size

    assert sheet_rows(out, "Data") == [
        ["id", "customer", "amount", "ordered_at"],
        [1.0, "Zoë", 10.5, dt.datetime(2024, 5, 1, 10, 0)],
        [2.0, '=HYPERLINK("http://x")', 20.0, dt.datetime(2024, 5, 1, 11, 30)],
        [3.0, "00123", "", ""],
    ]
    summary = sheet_rows(out, "Summary")
    assert summary[1][:2] == ["Report date", dt.date(2024, 5, 1)]  # a date, as the cell is formatted
    assert summary[2][:2] == ["Region", "EMEA"]

    wb = load_workbook(out)
    data = wb["Data"]
    assert data.tables["Orders"].ref == "A1:D4"
    assert data["B3"].data_type == "s"  # text from the data never becomes a formula
    assert [data[f"C{r}"].number_format for r in (2, 3, 4)] == ["#,##0.00"] * 3  # the template row's styles
    assert data["B4"].font.italic and data["A1"].font.bold
    assert data.column_dimensions["B"].width == 30 and data.freeze_panes == "A2"
    assert wb["Summary"]["B5"].value == "=SUM(Orders[amount])"
    assert wb["Summary"].column_dimensions["A"].width == 24
    assert set(wb.defined_names) == {"report_date", "region", "total"}
    notes = wb["Notes"]
    assert [[c.value for c in row] for row in notes.iter_rows()] == NOTES
    assert [str(r) for r in notes.merged_cells.ranges] == ["A1:C1"] and notes["A1"].font.bold


def test_fill_with_fewer_rows_than_the_template_clears_its_sample_rows(ctx):
    (ctx.workspace / "empty.csv").write_text("id,customer,amount,ordered_at\n")
    out = Path(fill(ctx, data=[{"table": "Orders", "input": "empty.csv"}]).outputs["path"])
    wb = load_workbook(out)
    assert wb["Data"].tables["Orders"].ref == "A1:D2"  # one empty data row, as Excel requires
    assert [c.value for c in wb["Data"][2]] == [None] * 4


def test_fill_a_sheet_at_a_start_cell_with_and_without_header(ctx):
    result = fill(ctx, data=[
        {"sheet": "Raw", "start_cell": "B3", "input": "orders.csv", "csv_types": "text"},
        {"sheet": "Raw", "start_cell": "H1", "input": "orders.csv", "write_header": False},
    ])
    assert result.outputs["rows"] == 6
    wb = CalamineWorkbook.from_path(result.outputs["path"])
    raw = wb.get_sheet_by_name("Raw").to_python(skip_empty_area=False)
    assert raw[2][1:5] == ["id", "customer", "amount", "ordered_at"]
    assert raw[3][1:5] == ["1", "Zoë", "10.5", "2024-05-01 10:00:00"]  # csv_types: text keeps the text
    assert raw[0][7:11] == [1.0, "Zoë", 10.5, dt.datetime(2024, 5, 1, 10, 0)]


def test_fill_from_a_query_keeps_types_and_writes_the_header_of_an_empty_result(ctx):
    db = DuckDBConnector(config={"path": str(ctx.workspace / "w.duckdb")}, options={})
    db.name = "warehouse"
    ctx.connectors = {"warehouse": db}
    db.execute("create table t as select 1::bigint as id, 'Ann' as customer, 12.34::decimal(12,2) as amount, timestamp '2024-05-01 08:00' as ordered_at")
    try:
        out = fill(ctx, data=[
            {"table": "Orders", "resource": "warehouse", "sql": "select * from t"},
            {"sheet": "Raw", "resource": "warehouse", "sql": "select id, customer from t where id < 0"},
        ]).outputs["path"]
    finally:
        db.close()
    assert sheet_rows(out, "Data")[1] == [1.0, "Ann", 12.34, dt.datetime(2024, 5, 1, 8, 0)]
    assert sheet_rows(out, "Raw") == [["id", "customer"]]


def test_missing_sheets_names_and_tables_are_listed_together_before_anything_is_written(ctx):
    with pytest.raises(StepError) as caught:
        fill(ctx, cells={"report_day": "x", "Summary!ZZ": 1}, data=[{"table": "Order", "input": "orders.csv"}, {"sheet": "Rawdata", "input": "orders.csv"}])
    message = str(caught.value)
    assert "template 'template.xlsx' is missing sheets 'Rawdata'" in message
    assert "named cells 'report_day' (did you mean 'report_date'?)" in message
    assert "tables 'Order' (did you mean 'Orders'?)" in message
    assert "'ZZ' in 'Summary!ZZ' is not a cell reference" in message
    assert not (ctx.workspace / "out").exists()


def test_validate_template_lists_what_the_template_has(ctx):
    result = run_step(
        "excel_validate_template", ctx, template="template.xlsx", sheets=["Summary", "Data"], cells=["report_date", "Notes!B3"], tables=["Orders"]
    )
    assert result.outputs["tables"] == ["Orders"]
    assert result.outputs["cells"] == ["region", "report_date", "total"]
    with pytest.raises(StepError, match="missing sheets 'Pivot'; tables 'Returns'"):
        run_step("excel_validate_template", ctx, template="template.xlsx", sheets=["Pivot"], tables=["Returns"])


def test_the_row_limit_of_a_sheet_is_a_clear_error(ctx):
    with pytest.raises(StepError, match=r"rows up to 1,048,577 of sheet 'Raw', but a sheet holds at most 1,048,576 rows"):
        fill(ctx, data={"sheet": "Raw", "start_cell": "A1048574", "input": "orders.csv"})
    assert not (ctx.workspace / "out" / "report.xlsx").exists()


def test_a_table_may_not_grow_over_cells_below_it(ctx):
    wb = load_workbook(ctx.workspace / "template.xlsx")
    wb["Data"]["C4"] = "=SUM(C2:C3)"
    wb.save(ctx.workspace / "template.xlsx")
    with pytest.raises(StepError, match="would grow over row 4 of sheet 'Data', which is not empty"):
        fill(ctx, data={"table": "Orders", "input": "orders.csv"})


def test_data_of_another_width_than_the_table_is_an_error(ctx):
    (ctx.workspace / "narrow.csv").write_text("id,customer\n1,a\n")
    with pytest.raises(StepError, match=r"table 'Orders' has 4 columns \['id', 'customer', 'amount', 'ordered_at'\], the data 2"):
        fill(ctx, data={"table": "Orders", "input": "narrow.csv"})


def test_text_a_cell_cannot_hold_is_an_error_naming_the_cell(ctx):
    (ctx.workspace / "bad.csv").write_text("id,customer,amount,ordered_at\n1,bell\x07,1,\n")
    with pytest.raises(StepError, match="data\\[0\\] cell B2: the text holds control characters"):
        fill(ctx, data={"table": "Orders", "input": "bad.csv"})


@pytest.mark.parametrize(("block", "message"), [
    ({"table": "Orders"}, "exactly one source"),
    ({"input": "orders.csv"}, "exactly one target"),
    ({"table": "Orders", "sheet": "Raw", "input": "orders.csv"}, "exactly one target"),
    ({"table": "Orders", "start_cell": "B2", "input": "orders.csv"}, "a table keeps its own header row"),
    ({"sheet": "Raw", "input": "orders.csv", "colums": 1}, "unknown key 'colums'"),
    ({"sheet": "Raw", "sql": "select 1", "input": "orders.csv"}, "exactly one source"),
])
def test_malformed_data_blocks_are_input_errors(ctx, block, message):
    with pytest.raises(StepInputError, match=message):
        fill(ctx, data=[block])


def test_a_macro_template_is_written_as_a_macro_workbook(ctx):
    with pytest.raises(StepInputError, match="is not an Excel workbook"):
        fill(ctx, output="out/report.csv")
    (ctx.workspace / "template.xlsm").write_bytes((ctx.workspace / "template.xlsx").read_bytes())
    with pytest.raises(StepInputError, match="a .xlsm template is written as .xlsm"):
        fill(ctx, template="template.xlsm", output="out/report.xlsx")


def test_without_openpyxl_the_error_says_what_to_install(ctx, monkeypatch):
    real_import = builtins.__import__

    def no_openpyxl(name, *args, **kwargs):
        if name == "openpyxl" or name.startswith("openpyxl."):
            raise ImportError("No module named 'openpyxl'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openpyxl)
    with pytest.raises(MissingDependencyError) as caught:
        fill(ctx, data={"table": "Orders", "input": "orders.csv"})
    assert "aetherflow[excel]" in caught.value.hint


def test_fill_reads_a_csv_in_its_own_dialect(ctx):
    """A cp1252 export with semicolons, German dates, decimal text and a NULL token."""
    (ctx.workspace / "orders_de.csv").write_bytes(
        "id;customer;amount;ordered_at\n1;Zoë €;10.5;01.05.2024 10:00\n2;NULL;20;\n3;'a;b';NULL;02.05.2024 11:30\n".encode("cp1252")
    )
    dialect = {"delimiter": ";", "quote": "'", "encoding": "cp1252", "null": "NULL", "timestamp_format": "%d.%m.%Y %H:%M"}
    result = fill(ctx, data={"table": "Orders", "input": "orders_de.csv", **dialect})
    assert sheet_rows(Path(result.outputs["path"]), "Data") == [
        ["id", "customer", "amount", "ordered_at"],
        [1.0, "Zoë €", 10.5, dt.datetime(2024, 5, 1, 10, 0)],
        [2.0, "", 20.0, ""],
        [3.0, "a;b", "", dt.datetime(2024, 5, 2, 11, 30)],
    ]
    with pytest.raises(StepInputError, match=r"data\[0\]: unknown text encoding 'cp-1252'"):
        fill(ctx, data={"table": "Orders", "input": "orders_de.csv", "encoding": "cp-1252"})


# -- excel_read -------------------------------------------------------------------------------------


@pytest.fixture
def workbook(ctx):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Export"
    ws["B2"] = "Orders export (do not edit)"
    ws.append([])
    for row in (
        [None, "id", "name", "name", None, "paid_on"],
        [None, 1, "Zoë", "a", 10.5, dt.date(2024, 5, 1)],
        [None, 2, None, "b", 20, dt.date(2024, 5, 2)],
        [None, None, None, None, None, None],
        [None, 3, "Ann", "c", -1.25, None],
    ):
        ws.append(row)
    wb.create_sheet("Other")["A1"] = "x"
    wb.save(ctx.workspace / "export.xlsx")
    return "export.xlsx"


@pytest.mark.parametrize("engine", ["calamine", "openpyxl"])
def test_read_a_range_into_csv_with_both_engines(ctx, workbook, engine):
    result = run_step("excel_read", ctx, input=workbook, output=f"{engine}.csv", sheet="Export", range="B4:F", engine=engine)
    assert result.outputs["engine"] == engine
    assert result.outputs["rows"] == 3  # the empty row inside the range is skipped
    assert result.outputs["columns"] == ["id", "name", "name_2", "column_4", "paid_on"]
    lines = Path(result.outputs["path"]).read_text().splitlines()
    midnight = "" if engine == "calamine" else " 00:00:00.000000"  # openpyxl cannot tell a date from midnight
    assert lines[1:3] == [f'1,"Zoë","a",10.5,2024-05-01{midnight}', f'2,,"b",20,2024-05-02{midnight}']
    assert lines[3].startswith('3,"Ann","c",-1.25,')


def test_read_writes_csv_in_the_dialect_asked_for(ctx, workbook):
    dialect = {"delimiter": ";", "encoding": "utf-8-sig", "null": "NULL", "line_terminator": "crlf", "date_format": "%d.%m.%Y"}
    result = run_step("excel_read", ctx, input=workbook, output="de.csv", range="B4:F8", engine="calamine", **dialect)
    data = Path(result.outputs["path"]).read_bytes()
    assert data.decode("utf-8") == (
        "\ufeffid;name;name_2;column_4;paid_on\r\n"
        '1;"Zoë";"a";10.5;"01.05.2024"\r\n'
        '2;NULL;"b";20;"02.05.2024"\r\n'
        '3;"Ann";"c";-1.25;NULL\r\n'
    )
    with pytest.raises(StepInputError, match="step type 'excel_read': delimiter applies to csv and tsv files only, not to parquet"):
        run_step("excel_read", ctx, input=workbook, output="x.parquet", delimiter=";")


def test_read_without_a_range_starts_at_the_first_used_cell(ctx, workbook):
    result = run_step("excel_read", ctx, input=workbook, output="all.jsonl", header=False)
    assert result.outputs["sheet"] == "Export"
    first = Path(result.outputs["path"]).read_text().splitlines()[0]
    assert first.startswith('{"column_1":"Orders export (do not edit)"')


def test_read_into_parquet_keeps_types(ctx, workbook):
    result = run_step("excel_read", ctx, input=workbook, output="out.parquet", range="B4:F8")
    table = pq.read_table(result.outputs["path"])
    assert table.column("paid_on").to_pylist() == [dt.date(2024, 5, 1), dt.date(2024, 5, 2), None]
    assert table.column("column_4").to_pylist() == [10.5, 20.0, -1.25]


def test_read_an_unknown_sheet_suggests_the_closest(ctx, workbook):
    with pytest.raises(StepError, match="has no sheet 'Exports' \\(did you mean 'Export'\\?\\)"):
        run_step("excel_read", ctx, input=workbook, output="x.csv", sheet="Exports")


def test_read_falls_back_to_openpyxl_without_calamine(ctx, workbook, monkeypatch):
    real_import = builtins.__import__

    def no_calamine(name, *args, **kwargs):
        if name == "python_calamine":
            raise ImportError("No module named 'python_calamine'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_calamine)
    result = run_step("excel_read", ctx, input=workbook, output="x.csv", range="B4:F8")
    assert result.outputs["engine"] == "openpyxl" and result.outputs["rows"] == 3


# -- without a template: write-only streaming ---------------------------------------------------------


def test_without_a_template_a_new_workbook_is_streamed_sheet_by_sheet(ctx):
    result = fill(ctx, template=None, output="out/plain.xlsx", data=[
        {"sheet": "Orders", "input": "orders.csv"},
        {"sheet": "Orders", "start_cell": "B7", "input": "orders.csv", "write_header": False},
        {"sheet": "Copy", "input": "orders.csv", "csv_types": "text"},
    ])
    assert result.outputs["sheets"] == ["Orders", "Copy"] and result.outputs["rows"] == 9
    wb = CalamineWorkbook.from_path(result.outputs["path"])
    orders = wb.get_sheet_by_name("Orders").to_python(skip_empty_area=False)
    assert orders[0] == ["id", "customer", "amount", "ordered_at", ""]
    assert orders[2][:4] == [2.0, '=HYPERLINK("http://x")', 20.0, dt.datetime(2024, 5, 1, 11, 30)]
    assert orders[6] == ["", 1.0, "Zoë", 10.5, dt.datetime(2024, 5, 1, 10, 0)]
    assert load_workbook(result.outputs["path"])["Orders"]["B3"].data_type == "s"


@pytest.mark.parametrize(("inputs", "message"), [
    ({"cells": {"a": 1}, "data": []}, "'cells' needs a template"),
    ({"data": [{"table": "Orders", "input": "orders.csv"}]}, "needs a template"),
    ({"data": [{"sheet": "S", "input": "orders.csv"}, {"sheet": "S", "start_cell": "A2", "input": "orders.csv"}]}, "rows can only be appended"),
])
def test_without_a_template_what_needs_one_is_an_input_error(ctx, inputs, message):
    with pytest.raises(StepInputError, match=message):
        fill(ctx, template=None, **inputs)


def test_a_failed_streamed_fill_leaves_no_open_sheet_behind(ctx, monkeypatch):
    """Write-only sheets stream into open temporary files; a fill that fails must finish
    them itself rather than leave them to the garbage collector at a random moment."""
    import gc
    import sys

    raised = []
    monkeypatch.setattr(sys, "unraisablehook", raised.append)
    with pytest.raises(StepInputError, match="rows can only be appended"):
        fill(ctx, template=None, data=[{"sheet": "S", "input": "orders.csv"}, {"sheet": "S", "start_cell": "A2", "input": "orders.csv"}])
    gc.collect()
    assert raised == []
    assert not (ctx.workspace / "out").exists() or not any((ctx.workspace / "out").iterdir())
