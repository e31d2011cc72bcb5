"""A filled report end to end through the CLI: 50,000 rows from DuckDB into a template's
table, named cells from the environment, a formula summing the table and a second sheet
that must stay as it was. The result is read by python-calamine (an independent
reader) and converted by headless LibreOffice to CSV and PDF; values and the formula's
result must match the source data."""

from __future__ import annotations

import csv
import datetime as dt
import subprocess
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from python_calamine import CalamineWorkbook

from tests.helpers import base_env, run_cli, write_flow

from .conftest import NOTES, build_template

ROWS = 50_000
SOURCE = f"""
create table orders as
select i as id,
       'Kunde ' || (i % 97) || ' - Zürich ✓ ' || chr(8364) as customer,
       round((i % 1000) * 1.25 + 0.01, 2)::decimal(12,2) as amount,
       timestamp '2024-05-01 00:00:00' + to_seconds(i * 37) as ordered_at
from range(1, {ROWS + 1}) t(i)
"""

FLOW = """
version: 1
flow:
  id: orders_report
  workspace: {root: "{{ env.AETHERFLOW_WORK_ROOT }}", cleanup_policy: never}
resources:
  warehouse:
    kind: db
    driver: duckdb
    config: {path: "{{ env.WAREHOUSE }}", read_only: true}
jobs:
  - id: report
    steps:
      - id: check
        type: excel_validate_template
        inputs: {template: "{{ env.TEMPLATE }}", sheets: [Summary, Data, Notes], cells: [report_date, region], tables: [Orders]}
      - id: fill
        type: excel_fill
        inputs:
          template: "{{ env.TEMPLATE }}"
          output: "out/orders-{{ env.REPORT_DAY }}.xlsx"
          cells: {report_date: "{{ env.REPORT_DAY }}", region: EMEA}
          data:
            - {table: Orders, resource: warehouse, sql: "select id, customer, amount, ordered_at from orders order by id"}
        outputs: {report: "{{ result.path }}", rows: "{{ result.rows }}"}
      - id: back
        type: excel_read
        inputs: {input: "{{ steps.fill.outputs.path }}", sheet: Data, output: back.csv}
"""


def convert(soffice: str, source: Path, target: str, outdir: Path, profile: Path) -> subprocess.CompletedProcess:
    """Headless LibreOffice with a profile of its own, so parallel runs never share one."""
    return subprocess.run(
        [soffice, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--convert-to", target, "--outdir", str(outdir), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Runs the flow once; returns (report path, source rows, the run document, tmp dir)."""
    tmp = tmp_path_factory.mktemp("report")
    warehouse = tmp / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute(SOURCE)
        rows = con.execute("select id, customer, amount, ordered_at from orders order by id").fetchall()
    template = build_template(tmp / "template.xlsx")
    flow = write_flow(tmp / "flow.yaml", FLOW)
    env = base_env(tmp, WAREHOUSE=str(warehouse), TEMPLATE=str(template), REPORT_DAY="2024-05-01")
    result = run_cli("run", flow, "--json", env=env, timeout=600)
    assert result.exit_code == 0, result.output
    job = result.json["jobs"][0]
    assert job["outputs"]["rows"] == ROWS
    return Path(job["outputs"]["report"]), rows, result.json, tmp


def test_the_report_read_back_by_calamine_matches_the_source(report):
    path, source, _, _ = report
    workbook = CalamineWorkbook.from_path(str(path))
    assert workbook.sheet_names == ["Summary", "Data", "Notes", "Raw"]
    data = workbook.get_sheet_by_name("Data").to_python()
    assert data[0] == ["id", "customer", "amount", "ordered_at"]
    assert len(data) == ROWS + 1
    for got, want in zip(data[1:], source):
        assert (int(got[0]), got[1], Decimal(str(got[2])), got[3]) == (want[0], want[1], want[2], want[3])
    summary = workbook.get_sheet_by_name("Summary").to_python()
    assert summary[1][1] == dt.date(2024, 5, 1) and summary[2][1] == "EMEA"
    notes = workbook.get_sheet_by_name("Notes").to_python()
    assert [[None if v == "" else v for v in row[:2]] for row in notes] == [row[:2] for row in NOTES]


def test_the_table_read_back_by_excel_read_matches_the_source(report):
    _, source, doc, _ = report
    back = Path(doc["jobs"][0]["steps"][2]["outputs"]["path"])
    with open(back, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["id", "customer", "amount", "ordered_at"]
    assert len(rows) == ROWS + 1
    for got, want in zip(rows[1:], source):
        assert (int(got[0]), got[1], Decimal(got[2]), dt.datetime.fromisoformat(got[3])) == want


def test_libreoffice_computes_the_formula_and_shows_the_same_values(report, soffice, tmp_path):
    path, source, _, _ = report
    outdir = tmp_path / "csv"
    done = convert(soffice, path, "csv:Text - txt - csv (StarCalc):44,34,UTF8,1,,0,false,true,false,false,false,-1", outdir, tmp_path / "profile")
    assert done.returncode == 0, done.stdout + done.stderr
    summary = list(csv.reader(open(outdir / f"{path.stem}-Summary.csv", encoding="utf-8")))
    total = sum(row[2] for row in source)
    assert summary[1][1] == "2024-05-01" and summary[2][1] == "EMEA"
    assert Decimal(summary[4][1]).quantize(Decimal("0.01")) == total
    assert int(summary[5][1]) == ROWS
    data = list(csv.reader(open(outdir / f"{path.stem}-Data.csv", encoding="utf-8")))
    assert len(data) == ROWS + 1
    for got, want in zip(data[1:], source):
        assert (int(got[0]), got[1], Decimal(got[2])) == (want[0], want[1], want[2])
    notes = list(csv.reader(open(outdir / f"{path.stem}-Notes.csv", encoding="utf-8")))
    assert notes[3] == ["Threshold", "250.5", "501"]  # the second sheet's own formula still works


def test_libreoffice_prints_the_report_to_pdf_with_the_same_values(report, soffice, pdftotext, tmp_path):
    path, source, _, _ = report
    done = convert(soffice, path, "pdf", tmp_path, tmp_path / "profile")
    assert done.returncode == 0, done.stdout + done.stderr
    text = subprocess.run([pdftotext, "-layout", str(tmp_path / f"{path.stem}.pdf"), "-"], capture_output=True, text=True, timeout=120).stdout
    total = sum(row[2] for row in source)
    assert f"{total:,.2f}" in text  # the formula's result, in the template's number format
    assert "2024-05-01" in text and "EMEA" in text and f"{ROWS}" in text
    assert "How to read this report" in text and "Finance ops" in text
    assert source[0][1] in text  # the first data rows are printed (print area A1:D30)
