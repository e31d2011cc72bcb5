"""OpenTelemetry: a run sends one trace (run > jobs > steps) and its metrics to an OTLP/HTTP receiver."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import base_env, run_cli, write_flow
from tests.telemetry.receiver import OTLPReceiver, attributes

SECRET = "s3cr3t-otel-value"

FLOW = """
version: 1
flow: {id: traced}
resources:
  db: {kind: db, driver: duckdb, config: {path: ":memory:"}}
  mailer: {kind: mail, driver: smtp, config: {host: localhost, password: "{{ env.MAIL_PASSWORD }}"}}
jobs:
  - id: extract
    steps:
      - id: dump
        type: db_extract
        inputs: {resource: db, sql: "select * from range(5) t(n)", output: numbers.csv}
        outputs: {rows: "{{ result.rows }}"}
  - id: report
    depends_on: [extract]
    steps:
      - id: count
        type: check_items
        inputs: {items: [a, b]}
  - id: flaky
    steps:
      - id: leak
        type: external.process
        inputs: {command: [sh, -c, "echo token {{ env.MAIL_PASSWORD }} >&2; exit 3"]}
        retry: {max_attempts: 2, delay_seconds: 0}
  - id: after_flaky
    depends_on: [flaky]
    steps:
      - {id: never, type: check_items, inputs: {items: [x]}}
"""


def traced_run(tmp_path, **env_extra):
    tmp_path.mkdir(parents=True, exist_ok=True)
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    env = base_env(tmp_path, MAIL_PASSWORD=SECRET, **env_extra)
    return run_cli("run", flow, "--json", env=env)


def test_a_run_is_one_trace_of_run_job_and_step_spans_with_metrics_and_no_secret(tmp_path):
    with OTLPReceiver() as receiver:
        result = traced_run(tmp_path, AETHERFLOW_OTEL="1", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_SERVICE_NAME="nightly-etl")
    assert result.exit_code == 1, result.output
    assert receiver.received.paths.count("/v1/traces") == 1 and receiver.received.paths.count("/v1/metrics") == 1
    spans = receiver.received.spans()
    assert len({span.trace_id for span in spans}) == 1, "one trace per run"
    by_name = {span.name: span for span in spans}
    run = by_name["run traced"]
    assert run.parent_span_id == b""
    jobs = {name: span for name, span in by_name.items() if name.startswith("job ")}
    assert set(jobs) == {"job extract", "job report", "job flaky", "job after_flaky"}
    assert all(span.parent_span_id == run.span_id for span in jobs.values())
    parents = {"dump": "extract", "count": "report", "leak": "flaky", "never": "after_flaky"}
    for step, job in parents.items():
        assert by_name[f"step {step}"].parent_span_id == jobs[f"job {job}"].span_id, step
    assert len(spans) == 1 + 4 + 4

    run_attrs = attributes(run)
    assert run_attrs["aetherflow.flow.id"] == "traced" and run_attrs["aetherflow.run.id"] == result.json["run_id"]
    assert run_attrs["aetherflow.run.status"] == "FAILED" and run.status.code == 2  # STATUS_CODE_ERROR
    dump = attributes(by_name["step dump"])
    assert dump["aetherflow.step.type"] == "db_extract" and dump["aetherflow.step.status"] == "SUCCESS"
    assert dump["aetherflow.step.rows"] == 5 and dump["aetherflow.step.bytes"] > 0 and dump["aetherflow.step.attempts"] == 1
    leak = by_name["step leak"]
    assert attributes(leak)["aetherflow.step.attempts"] == 2 and attributes(leak)["aetherflow.step.status"] == "FAILED"
    assert leak.status.code == 2 and "exited with code 3" in leak.status.message and "token ***" in leak.status.message
    assert attributes(by_name["step never"])["aetherflow.step.status"] == "BLOCKED"
    assert attributes(jobs["job after_flaky"])["aetherflow.job.status"] == "BLOCKED"
    for span in spans:
        assert span.start_time_unix_nano <= span.end_time_unix_nano
        if span is not run:
            assert run.start_time_unix_nano <= span.start_time_unix_nano and span.end_time_unix_nano <= run.end_time_unix_nano
    resource = attributes(receiver.received.resources()[0])
    assert resource["service.name"] == "nightly-etl"

    everything = json.dumps(
        [[attributes(s), s.status.message, s.name] for s in spans] + [attributes(r) for r in receiver.received.resources()],
        default=str,
    )
    assert SECRET not in everything

    points = receiver.received.metric_points()
    assert {"aetherflow.steps", "aetherflow.step.duration", "aetherflow.bytes"} <= set(points)
    by_status = {}
    for point in points["aetherflow.steps"]:
        labels = attributes(point)
        by_status[labels["aetherflow.step.status"]] = by_status.get(labels["aetherflow.step.status"], 0) + point.as_int
    assert by_status == {"SUCCESS": 2, "FAILED": 1, "BLOCKED": 1}
    assert sum(point.count for point in points["aetherflow.step.duration"]) == 3  # the steps that ran
    assert sum(point.as_int for point in points["aetherflow.bytes"]) == dump["aetherflow.step.bytes"]


def test_the_standard_endpoint_variable_turns_it_on_and_aetherflow_otel_0_off(tmp_path):
    with OTLPReceiver() as receiver:
        on = traced_run(tmp_path / "on", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint)
        off = traced_run(tmp_path / "off", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, AETHERFLOW_OTEL="0")
    assert on.exit_code == 1 and off.exit_code == 1
    run_ids = {attributes(span)["aetherflow.run.id"] for span in receiver.received.spans() if span.name == "run traced"}
    assert run_ids == {on.json["run_id"]}


def test_an_unreachable_collector_is_a_warning_not_a_failure(tmp_path):
    with OTLPReceiver() as receiver:
        endpoint = receiver.endpoint  # closed once the block ends: nothing listens there
    result = traced_run(tmp_path, AETHERFLOW_OTEL="1", OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_TIMEOUT="2000")
    assert result.exit_code == 1 and result.json["status"] == "FAILED"  # the flow's own failure, nothing more
    assert "telemetry.export_failed" in result.stderr and SECRET not in result.stderr


def test_without_the_sdk_aetherflow_otel_fails_before_the_run_and_says_what_to_install(tmp_path):
    shadow = tmp_path / "shadow" / "opentelemetry"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("")  # an opentelemetry without the SDK
    flow = write_flow(tmp_path / "flow.yaml", "version: 1\nflow: {id: t}\njobs:\n  - id: a\n    steps: [{id: s, type: check_items, inputs: {items: [1]}}]\n")
    env = base_env(tmp_path, PYTHONPATH=str(shadow.parent), AETHERFLOW_OTEL="1")
    result = run_cli("run", flow, env=env)
    assert result.exit_code == 2
    assert "OpenTelemetry is on for this run, but its SDK is not installed" in result.stderr
    assert "pip install 'aetherflow[otel]'" in result.stderr and "Traceback" not in result.stderr
    assert "run.started" not in result.stderr
    standard = run_cli("run", flow, env={**env, "AETHERFLOW_OTEL": "", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    assert standard.exit_code == 0 and "telemetry.unavailable" in standard.stderr


def test_commands_import_opentelemetry_and_schema_generation_only_when_they_need_them(tmp_path):
    flow = write_flow(tmp_path / "flow.yaml", "version: 1\nflow: {id: t}\njobs:\n  - id: a\n    steps: [{id: s, type: check_items, inputs: {items: [1]}}]\n")
    probe = (
        "import contextlib, io, json, sys\n"
        "from aetherflow.cli.main import app\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "    try:\n"
        "        app(sys.argv[1:])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ('opentelemetry', 'jsonschema', 'google', 'aetherflow.core.spec.json_schema', 'aetherflow.core.scaffold')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(heavy))))\n"
    )
    for args in (["--help"], ["connectors", "list"], ["run", str(flow)]):
        proc = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, env=base_env(tmp_path), timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout.strip().splitlines()[-1]) == [], args
