"""``sample_flows/api_to_duckdb_mail.yaml`` run end to end against the local HTTPS and
SMTP servers: API answer -> DuckDB -> CSV -> mail with the CSV attached."""

from __future__ import annotations

import csv
import io

import pytest

from tests.helpers import ROOT, base_env, run_cli
from tests.services.smtp_server import QUIET_WARNINGS

pytestmark = [pytest.mark.filterwarnings(w) for w in QUIET_WARNINGS]

SAMPLE = ROOT / "sample_flows" / "api_to_duckdb_mail.yaml"


def test_validate_accepts_the_sample_flow(tmp_path):
    result = run_cli("validate", SAMPLE, env=base_env(tmp_path))
    assert result.exit_code == 0, result.output


def test_sample_flow_imports_the_api_answer_and_mails_a_summary(tmp_path, https_srv, starttls_smtp):
    env = base_env(
        tmp_path,
        API_BASE_URL=https_srv.url,
        API_PATH="/json?items=7",
        API_TOKEN=https_srv.token,
        API_CA_BUNDLE=https_srv.ca_file,
        SMTP_HOST=starttls_smtp.host,
        SMTP_PORT=str(starttls_smtp.port),
        SMTP_USER=starttls_smtp.username,
        SMTP_PASSWORD=starttls_smtp.password,
        SMTP_CA_FILE=starttls_smtp.ca_file,
        MAIL_FROM="Imports <imports@example.com>",
        MAIL_TO="ops@example.com, Lead <lead@example.com>",
    )
    result = run_cli("run", SAMPLE, "--json", env=env)
    assert result.exit_code == 0, result.output
    assert https_srv.token not in result.output and starttls_smtp.password not in result.output
    jobs = {job["id"]: job for job in result.json["jobs"]}
    assert jobs["store"]["outputs"]["items"] == 7
    assert jobs["store"]["outputs"]["total"] == sum(i * 1.5 for i in range(7))

    [received] = starttls_smtp.messages
    assert received.rcpt_tos == ["ops@example.com", "lead@example.com"]
    message = received.parsed()
    assert message["Subject"] == f"API import {result.json['run_id']}: 7 items"
    text = message.get_body(("plain",)).get_content()
    assert "- items: 7" in text
    assert https_srv.url in message.get_body(("html",)).get_content()
    [attachment] = message.iter_attachments()
    assert (attachment.get_filename(), attachment.get_content_type()) == ("api_items.csv", "text/csv")
    rows = list(csv.DictReader(io.StringIO(attachment.get_content())))
    assert [row["name"] for row in rows] == [f"item-{i}" for i in range(7)]
