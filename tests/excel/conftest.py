"""A report template built with openpyxl, as an analyst would make it in Excel: named
cells, a styled table, formulas over the table, and a sheet the fill must not touch."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import program

NOTES = [
    ["How to read this report", None, None],
    ["Amounts are in EUR, net of tax.", None, None],
    ["Owner", "Finance ops", None],
    ["Threshold", 250.5, "=B4*2"],
]


def build_template(path: Path) -> Path:
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.workbook.defined_name import DefinedName
    from openpyxl.worksheet.table import Table, TableStyleInfo

    wb = Workbook()
    summary = wb.active
    summary.title = "Summary"
    summary["A1"] = "Daily orders"
    summary["A1"].font = Font(bold=True, size=14)
    summary["A2"], summary["A3"], summary["A5"], summary["A6"] = "Report date", "Region", "Total amount", "Orders"
    summary["B2"].number_format = "yyyy-mm-dd"
    summary["B5"] = "=SUM(Orders[amount])"
    summary["B5"].number_format = "#,##0.00"
    summary["B6"] = "=COUNTA(Orders[id])"
    summary.column_dimensions["A"].width = 24
    summary.column_dimensions["B"].width = 18
    for name, ref in (("report_date", "$B$2"), ("region", "$B$3"), ("total", "$B$5")):
        wb.defined_names[name] = DefinedName(name, attr_text=f"Summary!{ref}")

    data = wb.create_sheet("Data")
    data.append(["id", "customer", "amount", "ordered_at"])
    for cell in data[1]:
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = PatternFill("solid", fgColor="1F4E78")
    data.append(["sample", "sample", 0, None])
    data["C2"].number_format = "#,##0.00"
    data["D2"].number_format = "yyyy-mm-dd hh:mm"
    data["B2"].font = Font(italic=True)
    table = Table(displayName="Orders", ref="A1:D2")
    table.tableStyleInfo = TableStyleInfo(name="TableStyleMedium2", showRowStripes=True)
    data.add_table(table)
    data.column_dimensions["B"].width = 30
    data.column_dimensions["D"].width = 20
    data.freeze_panes = "A2"
    data.print_area = "A1:D30"  # the printed report shows the first rows only

    notes = wb.create_sheet("Notes")
    for row in NOTES:
        notes.append(row)
    notes.merge_cells("A1:C1")
    notes["A1"].font = Font(bold=True, color="C00000")
    notes.column_dimensions["A"].width = 40

    wb.create_sheet("Raw")
    wb.save(path)
    return path


@pytest.fixture
def template(tmp_path) -> Path:
    return build_template(tmp_path / "template.xlsx")


@pytest.fixture(scope="session")
def soffice():
    """LibreOffice's headless converter (Debian libreoffice-calc-nogui)."""
    return program("soffice", "libreoffice-calc-nogui")


@pytest.fixture(scope="session")
def pdftotext():
    return program("pdftotext", "poppler-utils")
