"""A damaged state is reported as such: outputs that are not JSON name their run and
step, and an empty state file is refused instead of being taken for an empty history.
A state file the runner creates is never seen empty, also by runners starting together."""

from __future__ import annotations

import sqlite3
import threading

from aetherflow.core.state.sqlite import SQLiteStateStore
from tests.helpers import base_env, run_cli, write_flow

FLOW = """
version: 1
flow: {id: damaged}
jobs:
  - id: a
    steps:
      - {id: one, type: check_items, inputs: {items: [1]}}
      - {id: two, type: external.process, inputs: {command: ["false"]}}
"""


def test_outputs_that_are_not_json_name_the_run_and_step(tmp_path):
    env = base_env(tmp_path)
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    assert run_cli("run", flow, "--run-id", "r1", env=env).exit_code == 1
    conn = sqlite3.connect(tmp_path / "state" / "state.db")
    conn.execute("UPDATE step_runs SET outputs = '{\"count\": 1' WHERE step_id = 'one'")
    conn.commit()
    conn.close()
    for args in (("runs", "show", "r1"), ("run", flow, "--run-id", "r1")):
        result = run_cli(*args, env=env)
        assert result.exit_code == 1, result.output
        assert "internal error" not in result.output and "Traceback" not in result.output
        assert "damaged outputs for run 'r1', job 'a', step 'one': not JSON" in result.stderr
        assert "hint:" in result.stderr


def test_an_empty_state_file_is_refused(tmp_path):
    env = base_env(tmp_path)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "state.db").touch()
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    for args in (("run", flow), ("runs", "list")):
        result = run_cli(*args, env=env)
        assert result.exit_code == 1, result.output
        assert "is an empty file" in result.stderr and "delete it to start a new history" in result.stderr
    assert (tmp_path / "state" / "state.db").stat().st_size == 0


def test_runners_creating_the_state_together_all_open_it(tmp_path):
    path = tmp_path / "new" / "state.db"
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def open_store() -> None:
        start.wait()
        try:
            SQLiteStateStore(path).close()
        except Exception as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [p.name for p in path.parent.iterdir()] == ["state.db"]
    store = SQLiteStateStore(path)
    try:
        assert store.list_runs() == []
    finally:
        store.close()
