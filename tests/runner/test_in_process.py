"""run_flow: a flow run inside the caller's process, as an Airflow task or a Dagster op runs it."""

from __future__ import annotations

import io
import logging
import os
import shutil
import signal
import threading
from pathlib import Path

import pytest

from aetherflow.core.api import (
    JobReport,
    ProfileError,
    RunFailed,
    RunReport,
    SpecError,
    StepReport,
    run_flow,
)
from tests.helpers import base_env, run_cli, write_flow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "plugins"
SECRET = "hunter2-in-process"

FLOW = """
version: 1
flow: {id: in_process, plugins: [plugins]}
resources:
  mailer: {kind: mail, driver: smtp, config: {host: localhost, password: "{{ env.SMTP_PASSWORD }}"}}
  db: {kind: db, driver: sqlite3, config: {path: "{{ env.DB_PATH }}"}}
jobs:
  - id: load
    steps:
      - {id: table, type: db_execute, inputs: {resource: db, sql: "create table if not exists t (x int); insert into t values (1)"}}
      - id: count
        type: db_fetch
        inputs: {resource: db, sql: "select count(*) from t"}
        outputs: {rows: "{{ result.rows[0][0] }}"}
  - id: talk
    depends_on: [load]
    steps:
      - id: echo
        type: test.echo
        inputs: {values: {said: "password is {{ env.SMTP_PASSWORD }}", rows: "{{ jobs.load.outputs.rows }}"}}
"""


def make_project(tmp_path: Path) -> Path:
    (tmp_path / "plugins").mkdir()
    shutil.copy(FIXTURES / "runner_steps.py", tmp_path / "plugins" / "runner_steps.py")
    return write_flow(tmp_path / "flow.yaml", FLOW)


def process_state() -> dict:
    """Everything a run could leave changed in the process that called it."""
    from aetherflow.core import plugins
    from aetherflow.core.connectors.registry import entries
    from aetherflow.core.steps.registry import list_steps, step_types

    logger = logging.getLogger("aetherflow")
    return {
        "step types": step_types(),
        "step origins": [(row["type"], row["origin"]) for row in list_steps()],
        "connectors": [(e.key, e.origin, e.target) for e in entries()],
        "plugins loaded": plugins.saved_state(),
        "aetherflow handlers": list(logger.handlers),
        "aetherflow level": logger.level,
        "aetherflow propagate": logger.propagate,
        "root handlers": list(logging.getLogger().handlers),
        "SIGINT": signal.getsignal(signal.SIGINT),
        "SIGTERM": signal.getsignal(signal.SIGTERM),
        "environ": dict(os.environ),
        "threads": sorted(t.name for t in threading.enumerate()),
    }


@pytest.fixture
def host_handlers():
    """What an orchestrator has installed before it calls us: its own signal and log handlers."""
    def on_term(signum, frame):  # pragma: no cover - never delivered
        pass

    previous = signal.signal(signal.SIGTERM, on_term)
    host = logging.StreamHandler(io.StringIO())
    logging.getLogger("aetherflow").addHandler(host)
    yield host
    logging.getLogger("aetherflow").removeHandler(host)
    signal.signal(signal.SIGTERM, previous)


def test_two_runs_in_one_process_leave_no_state_behind(tmp_path, host_handlers):
    flow = make_project(tmp_path)
    env = base_env(tmp_path, SMTP_PASSWORD=SECRET, DB_PATH=str(tmp_path / "data.sqlite"))
    before = process_state()

    logs = [io.StringIO(), io.StringIO()]
    reports = []
    for stream in logs:
        reports.append(run_flow(flow, env=env, log_stream=stream))
        after = process_state()
        changed = {key for key in before if before[key] != after[key]}
        assert changed == set(), {key: (before[key], after[key]) for key in changed}

    first, second = reports
    assert isinstance(first, RunReport) and first.ok and second.ok
    assert first.run_id != second.run_id
    assert isinstance(first.jobs[0], JobReport) and isinstance(first.jobs[0].steps[0], StepReport)
    assert first.job("load").outputs == {"rows": 1} and second.job("load").outputs == {"rows": 2}
    echo = second.job("talk").steps[0]
    assert echo.type == "test.echo" and echo.outputs == {"said": "password is ***", "rows": 2}
    for stream in logs:
        text = stream.getvalue()
        assert "run.finished" in text and "step.finished" in text
        assert SECRET not in text
    assert host_handlers.stream.getvalue() == "", "the host's handler saw nothing while run_flow had its own"


def test_the_report_is_the_run_json_document(tmp_path):
    flow = make_project(tmp_path)
    env = base_env(tmp_path, SMTP_PASSWORD=SECRET, DB_PATH=str(tmp_path / "data.sqlite"))
    report = run_flow(flow, env=env, log_stream=io.StringIO())
    cli = run_cli("run", flow, "--json", env=env)
    assert cli.exit_code == 0, cli.output

    def shape(document: dict) -> dict:
        document = {**document, "run_id": "-", "duration_ms": 0}
        for job in document["jobs"]:
            for step in job["steps"]:
                step["duration_ms"] = 0
        return document

    expected = shape(cli.json)
    expected["jobs"][0]["outputs"] = {"rows": 1}  # the CLI's run found the row the first run inserted
    expected["jobs"][0]["steps"][1]["outputs"]["rows"] = [[1]]
    expected["jobs"][1]["steps"][0]["outputs"]["rows"] = 1
    assert shape(report.to_dict()) == expected
    assert RunReport.from_document(report.to_dict()) == report


def test_failures_raise_the_documented_errors(tmp_path):
    flow = make_project(tmp_path)
    env = base_env(tmp_path, SMTP_PASSWORD=SECRET, DB_PATH=str(tmp_path / "data.sqlite"))
    quiet = io.StringIO()

    bad = write_flow(tmp_path / "bad.yaml", "version: 1\nflow: {id: bad}\njobs:\n  - id: a\n    stepz: []\n")
    with pytest.raises(SpecError) as spec:
        run_flow(bad, env=env, log_stream=quiet)
    assert spec.value.exit_code == 2 and "unknown key 'stepz'" in spec.value.describe()

    with pytest.raises(ProfileError) as profile:
        run_flow(flow, env=env, profile="nope", log_stream=quiet)
    assert "unknown profile 'nope'" in profile.value.message

    failing = write_flow(tmp_path / "failing.yaml", FLOW.replace("create table if not exists t", "create tabel t"))
    with pytest.raises(RunFailed) as failed:
        run_flow(failing, env=env, log_stream=quiet)
    report = failed.value.report
    assert failed.value.exit_code == 1 and report.status == "FAILED" and "jobs: load, talk" in failed.value.message
    assert report.job("load").steps[0].status == "FAILED" and "syntax error" in report.job("load").steps[0].error
    assert report.job("talk").status == "BLOCKED"
    unchecked = run_flow(failing, env=env, log_stream=quiet, check=False)
    assert unchecked.status == "FAILED" and not unchecked.ok


def test_vars_are_the_run_variables_as_var_gives_them(tmp_path):
    flow = write_flow(tmp_path / "flow.yaml", """
version: 1
flow: {id: typed_vars}
vars:
  limit: {type: integer, required: true}
jobs:
  - id: a
    steps:
      - id: s
        type: check_items
        inputs: {items: ["{{ vars.limit + 1 }}"]}
        outputs: {next: "{{ vars.limit + 1 }}"}
""")
    report = run_flow(flow, vars={"limit": 41}, env=base_env(tmp_path), log_stream=io.StringIO())
    assert report.job("a").outputs == {"next": 42}
    assert report.vars == {"limit": 41}
