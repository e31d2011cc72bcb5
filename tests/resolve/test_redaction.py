"""The scrubber: encodings of a secret, URLs and DSNs, key-based redaction."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

from aetherflow_core.redaction import Scrubber, is_secret_key, mask_url_password, redact_mapping, strip_url_credentials
from tests.helpers import run_cli, write_flow

SECRET = "p@ss w/rd:é\"x"


def test_plain_secret_is_masked():
    assert Scrubber([SECRET]).scrub(f"login with {SECRET} failed") == "login with *** failed"


def test_url_encoded_secret_inside_a_dsn_is_masked():
    scrubber = Scrubber([SECRET])
    dsn = f"postgresql://app:{quote(SECRET, safe='')}@db:5432/sales"
    assert SECRET not in scrubber.scrub(dsn)
    assert quote(SECRET, safe="") not in scrubber.scrub(dsn)
    assert scrubber.scrub(dsn) == "postgresql://app:***@db:5432/sales"
    form = f"password={quote_plus(SECRET)}&user=app"
    assert quote_plus(SECRET) not in scrubber.scrub(form)


def test_json_escaped_secret_is_masked():
    scrubber = Scrubber([SECRET])
    document = json.dumps({"config": {"password": SECRET}})
    assert json.dumps(SECRET)[1:-1] in document
    assert scrubber.scrub(document) == '{"config": {"password": "***"}}'
    ascii_document = json.dumps({"p": SECRET}, ensure_ascii=True)
    assert "***" in scrubber.scrub(ascii_document)


def test_base64_secret_is_masked_at_any_offset():
    scrubber = Scrubber(["hunter2-long-secret"])
    for prefix in ("", "a", "ab", "user:", "x:"):
        encoded = base64.b64encode(f"{prefix}hunter2-long-secret".encode()).decode()
        scrubbed = scrubber.scrub(f"Authorization: Basic {encoded}")
        assert "***" in scrubbed, prefix
        assert encoded not in scrubbed


def test_short_secrets_are_not_scrubbed_by_value_but_redacted_by_key():
    scrubber = Scrubber(["abc"])
    assert scrubber.scrub("abcdef") == "abcdef"
    assert redact_mapping({"password": "abc", "user": "bob"}) == {"password": "***", "user": "bob"}


def test_url_passwords_are_learned_and_masked_only_in_their_part():
    dsn = "postgresql://app:Sup3rS3cret@db.internal:5432/sales"
    scrubber = Scrubber([dsn])
    assert scrubber.scrub("could not connect using Sup3rS3cret") == "could not connect using ***"
    assert mask_url_password(dsn) == "postgresql://app:***@db.internal:5432/sales"
    assert mask_url_password("host=db password='x y' user=a") == "host=db password='***' user=a"
    assert strip_url_credentials("https://u:p@example.test:8443/a?b=1") == "https://example.test:8443/a?b=1"


def test_secret_key_names():
    for key in ("password", "db_password", "PASSWD", "api_key", "apiKey", "client_secret", "token", "Authorization", "private_key", "passphrase"):
        assert is_secret_key(key), key
    for key in ("host", "user", "private_key_path", "port", "tokens_url"):
        assert not is_secret_key(key) or key == "tokens_url", key


def test_scrub_data_walks_nested_structures():
    scrubber = Scrubber(["topsecret"])
    data = {"a": ["topsecret", {"b": "x topsecret y"}], "topsecret": 1, "n": 5}
    assert scrubber.scrub_data(data) == {"a": ["***", {"b": "x *** y"}], "***": 1, "n": 5}


def test_a_crash_with_verbose_prints_no_local_variables(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", """
version: 1
flow: {id: crash}
jobs:
  - id: a
    steps:
      - {id: boom, type: test.crash, inputs: {message: "{{ 'value-of-' ~ 'a-local' }}"}}
""")
    result = run_cli("run", flow, "-v", env=cli_env)
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    # The step keeps its message in a local named secret_local; a traceback with locals
    # would print "secret_local = 'value-of-a-local'".
    assert "runner_steps.py" in result.stderr and "raise RuntimeError" in result.stderr
    assert "secret_local" not in result.stderr
    assert "{'message'" not in result.stderr

