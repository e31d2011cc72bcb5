"""Drivers written by plugins against the public connector families work with the
built-in steps, through ``aetherflow run``: a ``db`` driver (``plugins/sqlite_dbapi.py``)
with db_execute, db_fetch, db_extract and db_load, and a ``files`` driver
(``plugins/memory_files.py``) with files_list and files_copy. Both import only
``aetherflow.core.api``."""

from __future__ import annotations

import ast
import csv
from pathlib import Path

from tests.helpers import base_env, run_cli, write_flow

PLUGINS = Path(__file__).parent / "plugins"
PASSWORD = "Plug1n-Pa55-xyz"

DB_FLOW = """
version: 1
flow:
  id: plugin_db
resources:
  plug:
    kind: db
    driver: myplug
    config: {path: "{{ env.DB_PATH }}", password: "{{ env.DB_PASSWORD }}"}
jobs:
  - id: roundtrip
    steps:
      - id: create
        type: db_execute
        inputs: {resource: plug, sql: "CREATE TABLE people (id INTEGER, name TEXT, note TEXT)"}
      - id: fill
        type: db_execute
        inputs:
          resource: plug
          sql: "INSERT INTO people VALUES (?, ?, ?), (?, ?, ?), (?, ?, ?)"
          params: [1, "Ann", "first", 2, "Björn", "", 3, "Chen", null]
      - id: read
        type: db_fetch
        inputs: {resource: plug, sql: "SELECT id, name FROM people WHERE id > ? ORDER BY id", params: [1]}
      - id: dump
        type: db_extract
        inputs: {resource: plug, sql: "SELECT id, name, note FROM people ORDER BY id", output: out/people.csv}
      - id: dump_parquet
        type: db_extract
        inputs: {resource: plug, sql: "SELECT id, name, note FROM people ORDER BY id", output: out/people.parquet}
      - id: load
        type: db_load
        inputs: {resource: plug, table: copied, input: "{{ steps.dump.outputs.path }}", mode: replace}
      - id: load_parquet
        type: db_load
        inputs: {resource: plug, table: typed, input: "{{ steps.dump_parquet.outputs.path }}", mode: replace}
      - id: check
        type: db_fetch
        inputs:
          resource: plug
          sql: "SELECT c.id, c.name, c.note, t.note IS NULL FROM copied c JOIN typed t ON t.id = c.id ORDER BY c.id"
"""

FILES_FLOW = """
version: 1
flow:
  id: plugin_files
resources:
  memory:
    kind: mem
    driver: store
    config:
      files: {"in/a.csv": "id\\n1\\n", "in/sub/b.csv": "id\\n2\\n", "in/readme.txt": "not a csv"}
  landing:
    kind: fs
    driver: local
    config: {root: "{{ env.LANDING }}"}
jobs:
  - id: move
    steps:
      - id: listed
        type: files_list
        inputs: {resource: memory, remote_dir: in, pattern: "*.csv", recursive: true}
      - id: out
        type: files_copy
        inputs: {source: memory, target: landing, files: "{{ steps.listed.outputs.files }}", target_dir: mirror}
      - id: back
        type: files_copy
        inputs: {source: landing, target: memory, remote_dir: mirror, recursive: true, target_dir: returned}
      - id: relisted
        type: files_list
        inputs: {resource: memory, remote_dir: returned, recursive: true}
"""


def plugin_env(tmp_path, **extra) -> dict[str, str]:
    return base_env(tmp_path, AETHERFLOW_PLUGIN_PATHS=str(PLUGINS), **extra)


def steps_of(result) -> dict:
    [job] = result.json["jobs"]
    assert [s["status"] for s in job["steps"]] == ["SUCCESS"] * len(job["steps"]), job
    return {s["id"]: s["outputs"] for s in job["steps"]}


def test_a_plugin_db_driver_runs_the_db_steps(tmp_path):
    flow = write_flow(tmp_path / "flow.yaml", DB_FLOW)
    result = run_cli("run", flow, "--json", env=plugin_env(tmp_path, DB_PATH=str(tmp_path / "plug.db"), DB_PASSWORD=PASSWORD))
    assert result.exit_code == 0, result.output
    steps = steps_of(result)
    assert steps["fill"]["rowcount"] == 3
    assert steps["read"] == {"columns": ["id", "name"], "rows": [[2, "Björn"], [3, "Chen"]], "row_count": 2}
    assert steps["dump"]["rows"] == 3 and steps["dump"]["columns"] == ["id", "name", "note"]
    with open(steps["dump"]["path"], newline="", encoding="utf-8") as fh:
        assert list(csv.reader(fh)) == [["id", "name", "note"], ["1", "Ann", "first"], ["2", "Björn", ""], ["3", "Chen", ""]]
    assert steps["load"]["rows"] == 3 and steps["load_parquet"]["rows"] == 3
    # CSV keeps NULL and '' apart; the Parquet copy keeps the types.
    assert steps["check"]["rows"] == [["1", "Ann", "first", 0], ["2", "Björn", "", 0], ["3", "Chen", None, 1]]


def test_a_plugin_db_driver_reports_errors_through_the_family_without_its_secret(tmp_path):
    flow = write_flow(tmp_path / "flow.yaml", DB_FLOW.replace("CREATE TABLE people", f"CREATE TABLE people '{PASSWORD}'"))
    result = run_cli("run", flow, "--json", env=plugin_env(tmp_path, DB_PATH=str(tmp_path / "plug.db"), DB_PASSWORD=PASSWORD))
    assert result.exit_code == 1
    error = result.json["jobs"][0]["steps"][0]["error"]
    assert error.startswith("resource 'plug' (db/myplug): execute failed: ") and "syntax error" in error
    assert PASSWORD not in result.output


def test_a_plugin_files_driver_lists_and_copies_both_ways(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    flow = write_flow(tmp_path / "flow.yaml", FILES_FLOW)
    result = run_cli("run", flow, "--json", env=plugin_env(tmp_path, LANDING=str(landing)))
    assert result.exit_code == 0, result.output
    steps = steps_of(result)
    assert [f["path"] for f in steps["listed"]["files"]] == ["in/a.csv", "in/sub/b.csv"]
    assert steps["listed"]["files"][0]["size"] == 5
    assert steps["out"]["copied"] == ["mirror/a.csv", "mirror/sub/b.csv"]
    assert (landing / "mirror" / "sub" / "b.csv").read_text() == "id\n2\n"
    assert steps["back"]["copied"] == ["returned/a.csv", "returned/sub/b.csv"] and steps["back"]["bytes"] == 10
    assert [f["path"] for f in steps["relisted"]["files"]] == ["returned/a.csv", "returned/sub/b.csv"]


def test_the_plugins_import_only_the_public_api():
    for plugin in PLUGINS.glob("*.py"):
        tree = ast.parse(plugin.read_text(encoding="utf-8"))
        ours = {
            node.module if isinstance(node, ast.ImportFrom) else alias.name
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in node.names
        }
        assert {m for m in ours if m and m.startswith("aetherflow")} == {"aetherflow.core.api"}, plugin.name
