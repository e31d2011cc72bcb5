"""Handlers alert through the real SMTP test server: on_failure after a failed job and
after a failure before any job (an unknown profile, a held flow lock); on_success does
not run then; a failing handler changes neither the run's status nor its exit code."""

from __future__ import annotations

import pytest

from aetherflow.core.state import open_state_store
from aetherflow.core.state.base import LockOwner
from tests.helpers import run_cli, write_flow
from tests.services.smtp_server import QUIET_WARNINGS

pytestmark = [pytest.mark.filterwarnings(w) for w in QUIET_WARNINGS]

FLOW = """
version: 1
flow:
  id: alerting
  lock: {key: alerting-lock}
vars:
  fail: {type: boolean, default: true}
resources:
  mailer:
    kind: mail
    driver: smtp
    config:
      host: 127.0.0.1
      port: "{{ env.SMTP_PORT }}"
      starttls: true
      ca_file: "{{ env.SMTP_CA }}"
      username: "{{ env.SMTP_USER }}"
      password: "{{ env.SMTP_PASSWORD }}"
      from_addr: "Flows <flows@example.com>"
jobs:
  - id: extract
    steps:
      - id: pull
        type: test.fail
        inputs: {message: "login with {{ env.SMTP_PASSWORD }} refused", succeed_on_attempt: "{{ 0 if vars.fail else 1 }}"}
  - id: report
    depends_on: [extract]
    steps:
      - {id: write, type: test.echo}
handlers:
  on_failure:
    - id: alert
      type: mail_send
      inputs:
        resource: mailer
        to: [ops@example.com]
        subject: "{{ flow_id }} {{ run.status }}: {{ run.failed_jobs | join(', ') or 'before any job' }}"
        body: "run {{ run.run_id }} after {{ run.duration_ms }} ms\\n{{ run.errors | join('\\n') }}"
    - id: also
      type: test.fail
      inputs: {message: "{{ env.HANDLER_FAILS | default('') }}", succeed_on_attempt: "{{ 0 if env.HANDLER_FAILS is defined else 1 }}"}
  on_success:
    - id: cheer
      type: mail_send
      inputs: {resource: mailer, to: [ops@example.com], subject: "{{ flow_id }} ok", body: "run {{ run.run_id }} {{ run.status }}"}
"""


@pytest.fixture
def env(tmp_path, starttls_smtp, cli_env):
    return {
        **cli_env,
        "SMTP_PORT": str(starttls_smtp.port),
        "SMTP_CA": starttls_smtp.ca_file,
        "SMTP_USER": starttls_smtp.username,
        "SMTP_PASSWORD": starttls_smtp.password,
    }


def run(tmp_path, env, *args):
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    result = run_cli("run", flow, "--json", *args, env=env)
    assert "Traceback" not in result.output, result.output
    return result


def test_on_failure_mails_the_failed_job_and_on_success_does_not_run(tmp_path, env, starttls_smtp):
    result = run(tmp_path, env)
    assert result.exit_code == 1
    doc = result.json
    assert doc["status"] == "FAILED"
    assert [(h["id"], h["status"]) for h in doc["handlers"]] == [("on_failure", "SUCCESS")]
    [received] = starttls_smtp.messages
    message = received.parsed()
    assert message["Subject"] == "alerting FAILED: extract"
    body = message.get_content()
    assert f"run {doc['run_id']} after " in body
    assert "job extract: step pull: login with *** refused" in body
    assert starttls_smtp.password not in received.data.decode(), "run.errors are scrubbed"

    starttls_smtp.messages.clear()
    ok = run(tmp_path, env, "--var", "fail=false")
    assert ok.exit_code == 0
    assert [(h["id"], h["status"]) for h in ok.json["handlers"]] == [("on_success", "SUCCESS")]
    [received] = starttls_smtp.messages
    assert received.parsed()["Subject"] == "alerting ok"


def test_on_failure_runs_after_an_unknown_profile(tmp_path, env, starttls_smtp):
    result = run(tmp_path, env, "--profile", "prdo")
    assert result.exit_code == 2
    assert "unknown profile 'prdo'" in result.stderr
    doc = result.json
    assert doc["status"] == "FAILED" and doc["jobs"] == [] and "unknown profile 'prdo'" in doc["error"]
    assert [(h["id"], h["status"]) for h in doc["handlers"]] == [("on_failure", "SUCCESS")]
    [received] = starttls_smtp.messages
    message = received.parsed()
    assert message["Subject"] == "alerting FAILED: before any job"
    assert f"run {doc['run_id']} " in message.get_content() and "unknown profile 'prdo'" in message.get_content()


def test_on_failure_runs_when_the_flow_lock_is_held(tmp_path, env, starttls_smtp):
    store = open_state_store("sqlite", path=str(tmp_path / "state" / "state.db"))
    try:
        assert store.acquire_lock("alerting-lock", LockOwner("other-run", "elsewhere", 1), 600)
    finally:
        store.close()
    result = run(tmp_path, env, "--var", "fail=false")
    assert result.exit_code == 3
    [received] = starttls_smtp.messages
    assert "flow lock 'alerting-lock' is held by" in received.parsed().get_content()
    shown = run_cli("runs", "show", result.json["run_id"], "--json", env=env)
    assert shown.json["status"] == "FAILED", "the refused run is over, not left RUNNING"


def test_a_failing_handler_changes_neither_status_nor_exit_code(tmp_path, env, starttls_smtp):
    failing = {**env, "HANDLER_FAILS": "handler broke"}
    result = run(tmp_path, failing)
    assert result.exit_code == 1 and result.json["status"] == "FAILED"
    (handler,) = result.json["handlers"]
    assert handler["status"] == "FAILED"
    assert [(s["id"], s["status"]) for s in handler["steps"]] == [("alert", "SUCCESS"), ("also", "FAILED")]
    assert handler["steps"][1]["error"] == "handler broke"
    assert "handlers.failed" in result.stderr

    broken_mail = {**env, "SMTP_PASSWORD": "Wr0ng-password-123"}
    ok = run(tmp_path, broken_mail, "--var", "fail=false")
    assert ok.exit_code == 0 and ok.json["status"] == "SUCCESS"
    (handler,) = ok.json["handlers"]
    assert handler["id"] == "on_success" and handler["status"] == "FAILED"
    assert "login as 'mailer' refused" in handler["steps"][0]["error"]
    assert "Wr0ng-password-123" not in ok.output
    assert len(starttls_smtp.messages) == 1, "only the first run's alert was sent"

