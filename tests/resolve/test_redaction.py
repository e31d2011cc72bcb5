"""The scrubber: encodings of a secret, URLs and DSNs, key-based redaction."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

from aetherflow.core.redaction import Scrubber, is_secret_key, mask_url_password, redact_mapping, strip_url_credentials
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



QUOTED = "pa'ss wörd\"%+/x"


def test_shell_quoted_secret_with_an_apostrophe_is_masked():
    import shlex

    scrubber = Scrubber([QUOTED])
    for command in (shlex.join(["tool", "--password", QUOTED]), shlex.join(["tool", f"--password={QUOTED}"])):
        assert "'\"'\"'" in command
        assert "ss w" not in scrubber.scrub(command), command
        assert "wörd" not in scrubber.scrub(command), command
    assert "ss w" not in scrubber.scrub("tool 'pa'\\''ss wörd\"%+/x'")


def test_repr_escaped_secret_is_masked_even_inside_json():
    scrubber = Scrubber([QUOTED])
    message = f"input 'token': expected integer, got string {QUOTED!r}"
    assert "\\'" in message
    assert scrubber.scrub(message) == "input 'token': expected integer, got string '***'"
    logged = json.dumps({"error": message})
    assert "ss w" not in scrubber.scrub(logged)


def test_jinja_tojson_form_is_masked():
    from jinja2.utils import htmlsafe_json_dumps

    scrubber = Scrubber(["a'b<c>&d-secret"])
    dumped = str(htmlsafe_json_dumps({"pw": "a'b<c>&d-secret"}))
    assert "\\u0027" in dumped
    assert scrubber.scrub(dumped) == '{"pw": "***"}'


def test_percent_encoded_query_with_plus_for_space_is_masked():
    import httpx

    scrubber = Scrubber([QUOTED])
    url = str(httpx.Request("GET", "https://api.test/a", params={"q": QUOTED, "n": "1"}).url)
    assert "+w%C3%B6rd" in url
    assert scrubber.scrub(url) == "https://api.test/a?q=***&n=1"
    assert scrubber.scrub(url.lower()) == "https://api.test/a?q=***&n=1"
    assert scrubber.scrub(f"/path/{quote(QUOTED, safe='/')}/x") == "/path/***/x"


def test_credentials_in_url_query_parameters_are_masked_and_learned():
    url = "https://api.test/v1?api_key=K3y-1234567&page=2&access_token=T0k-7654321"
    assert mask_url_password(url) == "https://api.test/v1?api_key=***&page=2&access_token=***"
    scrubber = Scrubber([url])
    assert scrubber.scrub("the server rejected K3y-1234567 and T0k-7654321") == "the server rejected *** and ***"
    assert redact_mapping({"base_url": url}) == {"base_url": "https://api.test/v1?api_key=***&page=2&access_token=***"}


def test_cut_after_scrubbing_masks_a_secret_cut_in_half_at_either_edge():
    secret = "Straddle-Secret-42"
    scrubber = Scrubber([secret])
    text = "x" * 10 + secret + "y" * 10
    # Cutting first, at 20 or -20 characters, would leave "Straddle-S" or "Secret-42".
    assert scrubber.scrub_cut(text, 20) == "x" * 10 + "***" + "y" * 7
    assert scrubber.scrub_cut(text, 20, keep="tail") == "x" * 7 + "***" + "y" * 10
    assert scrubber.scrub_cut(text, 1000) == "x" * 10 + "***" + "y" * 10
    # A secret's start at the very cut is masked too (the text was already cut upstream).
    assert scrubber.scrub_cut("x" * 10 + secret[:12] + "y" * 10, 22) == "x" * 10 + "***"
    # A text that was already cut elsewhere (a stream split, a tail buffer).
    assert scrubber.mask_edges(secret[:9] + " and more", start=False, end=False) == secret[:9] + " and more"
    assert scrubber.mask_edges("more and " + secret[:9], end=True) == "more and ***"
    assert scrubber.mask_edges(secret[6:] + " and more", start=True) == "*** and more"
    encoded = quote(secret + "/", safe="")
    assert scrubber.mask_edges("token=" + encoded[:12], end=True) == "token=***"


def test_a_password_with_spaces_in_a_dsn_is_learned_whole_and_word_by_word():
    from aetherflow.core.redaction import split_dsn_password, url_passwords

    for dsn in ("postgresql://etl:pa ss-w0rd-long@db:5432/x", "host=db password=pa ss-w0rd-long user=etl", "password='pa ss-w0rd-long' host=db"):
        assert split_dsn_password(dsn)[1] == "pa ss-w0rd-long", dsn
        scrubber = Scrubber(url_passwords(dsn))
        # What libpq says about such strings when it is handed them.
        assert scrubber.scrub('unexpected spaces found in "pa ss-w0rd-long", use percent-encoded spaces') == (
            'unexpected spaces found in "***", use percent-encoded spaces'
        )
        assert scrubber.scrub('missing "=" after "ss-w0rd-long" in connection info string') == 'missing "=" after "***" in connection info string'
    assert split_dsn_password("postgresql://etl:p%40ss@db/x?application_name=a") == ("postgresql://etl@db/x?application_name=a", "p@ss")
    assert split_dsn_password("postgresql://etl@db/x") == ("postgresql://etl@db/x", None)
    assert split_dsn_password("host=db user=etl") == ("host=db user=etl", None)
