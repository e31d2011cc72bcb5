"""``mail_send`` called directly and through ``aetherflow run``."""

from __future__ import annotations

import pytest

from aetherflow.core.errors import StepError, StepInputError
from aetherflow.core.steps.builtin.mail import MailSend, html_to_text
from tests.helpers import base_env, run_cli, step_context, write_flow
from tests.services.smtp_server import QUIET_WARNINGS

pytestmark = [pytest.mark.filterwarnings(w) for w in QUIET_WARNINGS]


@pytest.fixture
def ctx(tmp_path, starttls_smtp, make_mailer):
    mailer = make_mailer(starttls_smtp.config(from_addr="Flows <flows@example.com>"))
    context = step_context(tmp_path, {"mail": mailer})
    (context.workspace / "out").mkdir()
    (context.workspace / "out" / "summary.csv").write_text("day,rows\n2024-01-01,3\n")
    return context


def send(ctx, **inputs):
    return MailSend().run(ctx, MailSend.bind_inputs({"resource": "mail", **inputs})).outputs


def test_plain_mail_with_workspace_attachment(ctx, starttls_smtp):
    out = send(ctx, to="a@example.com, B <b@example.com>", subject="Summary", body="see attached", bcc="audit@example.com", attachments=["out/summary.csv"])
    assert out["sent"] is True
    assert out["recipients"] == ["a@example.com", "b@example.com", "audit@example.com"]
    assert out["refused"] == {}
    [received] = starttls_smtp.messages
    message = received.parsed()
    assert message["Bcc"] is None
    assert received.rcpt_tos == out["recipients"]
    [attachment] = message.iter_attachments()
    assert (attachment.get_filename(), attachment.get_content_type()) == ("summary.csv", "text/csv")
    assert attachment.get_content() == "day,rows\n2024-01-01,3\n"
    assert message.get_body(("plain",)).get_content() == "see attached\n"


def test_html_body_gets_a_derived_text_alternative(ctx, starttls_smtp):
    html = "<h1>Run report</h1><p>All <b>3</b> jobs passed.</p><ul><li>extract</li><li>load</li></ul><p><a href='https://ops.example.com/runs/1'>details</a></p><style>p{}</style>"
    send(ctx, to=["a@example.com"], subject="Report", body=html, html=True)
    message = starttls_smtp.messages[0].parsed()
    assert message.get_body(("html",)).get_content().strip() == html
    assert message.get_body(("plain",)).get_content() == (
        "Run report\n\nAll 3 jobs passed.\n\n- extract\n\n- load\n\ndetails <https://ops.example.com/runs/1>\n"
    )


def test_body_text_is_used_as_the_text_alternative_when_given(ctx, starttls_smtp):
    send(ctx, to="a@example.com", subject="R", body="<p>rich</p>", html=True, body_text="plain version")
    message = starttls_smtp.messages[0].parsed()
    assert message.get_body(("plain",)).get_content() == "plain version\n"


def test_body_text_without_html_is_an_input_error(ctx):
    with pytest.raises(StepInputError, match="set html: true"):
        send(ctx, to="a@example.com", subject="R", body="x", body_text="y")


def test_missing_attachment_fails_before_anything_is_sent(ctx, starttls_smtp):
    with pytest.raises(StepError, match="attachment .*nope.csv' does not exist"):
        send(ctx, to="a@example.com", subject="R", body="x", attachments=["out/nope.csv"])
    assert starttls_smtp.messages == []


def test_attachments_outside_the_workspace_are_refused(ctx):
    with pytest.raises(StepError, match="escapes the job workspace"):
        send(ctx, to="a@example.com", subject="R", body="x", attachments="../../etc/passwd")


def test_html_to_text_drops_scripts_and_keeps_structure():
    assert html_to_text("<script>alert(1)</script><p>a&amp;b</p><br>c") == "a&b\n\nc\n"


SECRET = "S3cr3t-Pa55-xyz"

FLOW = """
version: 1
flow:
  id: mail_flow
  workspace:
    root: "{{ env.AETHERFLOW_WORK_ROOT }}"
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
  - id: notify
    steps:
      - id: write
        type: external.process
        inputs:
          command: "printf 'a,b\\\\n1,2\\\\n' > report.csv"
          shell: true
      - id: mail
        type: mail_send
        inputs:
          resource: mailer
          to: [ops@example.com]
          bcc: audit@example.com
          subject: "Run {{ run_id }} of {{ flow_id }}"
          body: "<p>Report attached.</p>"
          html: true
          attachments: [report.csv]
"""


def test_mail_send_in_a_flow(tmp_path, starttls_smtp):
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    env = base_env(
        tmp_path,
        SMTP_PORT=str(starttls_smtp.port),
        SMTP_CA=starttls_smtp.ca_file,
        SMTP_USER=starttls_smtp.username,
        SMTP_PASSWORD=starttls_smtp.password,
    )
    result = run_cli("run", flow, "--json", env=env)
    assert result.exit_code == 0, result.output
    assert starttls_smtp.password not in result.output
    mail = result.json["jobs"][0]["steps"][1]["outputs"]
    assert mail["recipients"] == ["ops@example.com", "audit@example.com"]
    [received] = starttls_smtp.messages
    message = received.parsed()
    assert message["Subject"] == f"Run {result.json['run_id']} of mail_flow"
    assert [a.get_filename() for a in message.iter_attachments()] == ["report.csv"]
    assert next(message.iter_attachments()).get_content() == "a,b\n1,2\n"


def test_wrong_password_in_a_flow_fails_without_showing_it(tmp_path, starttls_smtp):
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    env = base_env(
        tmp_path,
        SMTP_PORT=str(starttls_smtp.port),
        SMTP_CA=starttls_smtp.ca_file,
        SMTP_USER=starttls_smtp.username,
        SMTP_PASSWORD="Wr0ng-" + SECRET,
    )
    result = run_cli("run", flow, "--json", env=env)
    assert result.exit_code == 1, result.output
    assert SECRET not in result.output
    step = result.json["jobs"][0]["steps"][1]
    assert step["status"] == "FAILED"
    assert "login as 'mailer' refused" in step["error"]
    assert starttls_smtp.messages == []
