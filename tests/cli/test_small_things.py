"""Small things a person at a terminal noticed: every unresolved resource reported by
``run``, no fingerprint for a failed resolution, tables with multi-line cells, HTML
error pages shown as text."""

from __future__ import annotations

from aetherflow.cli import render
from aetherflow.cli.errors import Session
from aetherflow.core.connectors.families.http import body_excerpt
from tests.helpers import base_env, run_cli, write_flow

TWO_BROKEN = """
version: 1
flow: {id: two}
resources:
  a: {kind: db, driver: sqlite3, config: {path: "{{ env.NOPE_A }}"}}
  b: {kind: db, driver: sqlite3, config: {path: "{{ env.NOPE_B }}"}}
jobs:
  - id: j
    steps: [{id: s, type: check_items, inputs: {items: [1]}}]
"""


def test_run_reports_every_unresolved_resource_like_resolve(tmp_path):
    flow = write_flow(tmp_path / "flow.yaml", TWO_BROKEN)
    result = run_cli("run", flow, env=base_env(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.count("error: ") == 2
    assert f"error: {flow}:4:49 at resources.a.config.path:" in result.stderr
    assert f"error: {flow}:5:49 at resources.b.config.path:" in result.stderr


def test_resolve_prints_no_fingerprint_when_a_resource_failed(tmp_path):
    flow = write_flow(tmp_path / "flow.yaml", TWO_BROKEN)
    text = run_cli("resolve", flow, env=base_env(tmp_path))
    assert text.exit_code == 2 and "fingerprint" not in text.output
    document = run_cli("resolve", flow, "--json", env=base_env(tmp_path)).json
    assert document["fingerprint"] is None
    fixed = run_cli("resolve", flow, "--json", env=base_env(tmp_path, NOPE_A="a.db", NOPE_B="b.db")).json
    assert fixed["fingerprint"].startswith("sha256:")


def test_a_multi_line_cell_continues_under_its_column(capsys):
    session = Session()
    rows = [["j", "FAILED", "bad input\n  hint: write x"], ["k", "SUCCESS", ""]]
    render._plain_table(session, None, ["job", "status", "note"], rows)
    assert capsys.readouterr().out.splitlines() == [
        "JOB  STATUS   NOTE",
        "j    FAILED   bad input",
        "                hint: write x",
        "k    SUCCESS",
    ]


def test_an_html_error_page_is_shown_as_its_text():
    page = (
        b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title><style>body{color:red}</style>"
        b"<script>var token = 1;</script></head><body>\n<h1>Not Found</h1>\n"
        b"<p>The requested URL was not found &amp; gone.</p>\n</body></html>"
    )
    assert body_excerpt(page) == "404 Not Found - Not Found The requested URL was not found & gone."
    assert body_excerpt(b'{"error": "<b>not</b> html"}') == '{"error": "<b>not</b> html"}'
    assert body_excerpt(b"<html><body>" + b"word " * 200 + b"</body></html>", limit=20) == "word word word word ..."


def test_counts_are_in_the_right_number():
    assert [render.counted(n, "job") for n in (0, 1, 2)] == ["0 jobs", "1 job", "2 jobs"]
