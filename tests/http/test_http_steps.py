"""``http_request`` and ``http_download`` called directly, against the local server."""

from __future__ import annotations

import hashlib
import json

import pytest

from aetherflow.core.connectors.builtin.db_sqlite3 import SQLiteConnector
from aetherflow.core.errors import StepError, StepInputError
from aetherflow.core.redaction import Scrubber
from aetherflow.core.steps.builtin.http import ExpectedStatus, HttpDownload, HttpRequest
from tests.helpers import step_context
from tests.services.http_server import large_sha256

SECRET = "S3cr3t-Pa55-xyz"


@pytest.fixture
def ctx(tmp_path, http_srv, make_api):
    api = make_api({"base_url": http_srv.url, "token": http_srv.token})
    return step_context(tmp_path, {"api": api}, scrubber=Scrubber([SECRET, http_srv.token]))


def request(ctx, **inputs):
    return HttpRequest().run(ctx, HttpRequest.bind_inputs({"resource": "api", **inputs})).outputs


def download(ctx, **inputs):
    return HttpDownload().run(ctx, HttpDownload.bind_inputs({"resource": "api", **inputs})).outputs


def test_get_keeps_a_small_json_answer_as_output(ctx, http_srv):
    out = request(ctx, path="/json", params={"items": 3, "verbose": True})
    assert out["status"] == 200
    assert out["json"]["count"] == 3
    assert out["json"]["items"][2] == {"id": 2, "name": "item-2", "value": 3.0}
    assert out["url"] == f"{http_srv.url}/json?items=3&verbose=true"
    assert out["headers"]["content-type"] == "application/json"
    assert out["bytes"] > 0
    assert out["path"] is None


def test_post_sends_json_form_and_raw_bodies(ctx):
    assert request(ctx, method="post", path="/echo", json={"a": [1, 2]})["json"]["json"] == {"a": [1, 2]}
    form = request(ctx, method="PUT", path="/echo", data={"name": "x y", "n": 1})["json"]
    assert (form["method"], form["body"]) == ("PUT", "name=x+y&n=1")
    assert request(ctx, method="PATCH", path="/echo", data="raw text", headers={"Content-Type": "text/plain"})["json"]["body"] == "raw text"


def test_bearer_token_of_the_resource_is_used(ctx):
    assert request(ctx, path="/bearer")["json"] == {"ok": True, "auth": "bearer"}


def test_a_status_outside_expect_status_fails_with_status_url_and_scrubbed_excerpt(ctx, http_srv):
    url = http_srv.url.replace("http://", f"http://someone:{SECRET}@") + "/status/500"
    with pytest.raises(StepError) as info:
        request(ctx, url=url, params={"body": f"database password {SECRET} rejected\n\n  at line 3"})
    message = str(info.value)
    assert SECRET not in message
    assert "someone" not in message
    assert message.startswith(f"GET {http_srv.url}/status/500?body=database+password+")
    assert "answered 500 Internal Server Error, expected 2xx: database password *** rejected at line 3" in message


def test_the_error_excerpt_is_cut_after_scrubbing(ctx):
    # The excerpt keeps 300 characters: the secret straddles that cut.
    with pytest.raises(StepError) as info:
        request(ctx, path="/status/500", params={"body": "e" * 294 + SECRET + " tail"})
    message = str(info.value)
    assert SECRET[:4] not in message and SECRET[-4:] not in message
    assert "e" * 294 + "***" in message


def test_credentials_in_a_steps_headers_and_params_are_secrets(tmp_path, http_srv, make_api):
    api = make_api({"base_url": http_srv.url})
    scrubber = Scrubber()
    ctx = step_context(tmp_path, {"api": api}, scrubber=scrubber)
    rendered = {"resource": "api", "path": "/status/403", "headers": {"X-Api-Key": "Step-K3y-9876"}, "params": {"api_key": "Step-P4ram-5432", "page": "2"}}
    scrubber.learn(rendered)
    with pytest.raises(StepError) as info:
        HttpRequest().run(ctx, HttpRequest.bind_inputs(rendered))
    message = scrubber.scrub(str(info.value))
    assert "Step-P4ram-5432" not in message and "api_key=***" in message
    assert scrubber.scrub("key Step-K3y-9876 rejected") == "key *** rejected"
    assert scrubber.scrub("page 2") == "page 2"


def test_a_long_error_body_is_cut_to_a_short_excerpt(ctx):
    with pytest.raises(StepError) as info:
        request(ctx, path="/status/502", params={"body": "x" * 5000})
    assert "answered 502" in str(info.value)
    assert len(str(info.value)) < 1000


@pytest.mark.parametrize("expect", [404, "404", "4xx", [200, 404], "200,404", "400-404"])
def test_expect_status_accepts_the_listed_statuses(ctx, expect):
    assert request(ctx, path="/status/404", expect_status=expect)["status"] == 404


def test_expect_status_also_rejects_a_success_status_not_listed(ctx):
    with pytest.raises(StepError, match="answered 200 OK, expected 201"):
        request(ctx, path="/echo", expect_status=201)


@pytest.mark.parametrize("bad", ["2xy", 99, "600", "300-200", True])
def test_expect_status_rejects_nonsense(bad):
    with pytest.raises(StepInputError, match="expect_status"):
        ExpectedStatus(bad if not isinstance(bad, bool) else [bad])


def test_redirects_are_followed_and_the_final_url_reported(ctx, http_srv):
    out = request(ctx, path="/redirect", params={"to": "/json?items=1"})
    assert out["status"] == 200
    assert out["url"] == f"{http_srv.url}/json?items=1"


def test_save_to_streams_the_body_to_a_file_and_still_parses_small_json(ctx):
    out = request(ctx, path="/json", params={"items": 5}, save_to="api/items.json")
    saved = ctx.workspace / "api" / "items.json"
    assert out["path"] == str(saved)
    assert json.loads(saved.read_text()) == out["json"]
    assert out["bytes"] == saved.stat().st_size
    assert out["sha256"] == hashlib.sha256(saved.read_bytes()).hexdigest()
    assert [p.name for p in saved.parent.iterdir()] == ["items.json"]


def test_a_large_body_without_save_to_is_not_kept_in_outputs(ctx):
    out = request(ctx, path="/large", params={"size": 5 * 1024 * 1024})
    assert out["status"] == 200
    assert out["json"] is None and out["text"] is None and out["bytes"] is None


def test_a_failed_save_leaves_no_file(ctx):
    with pytest.raises(StepError, match="answered 404"):
        request(ctx, path="/status/404", save_to="out.json")
    assert list(ctx.workspace.iterdir()) == []


def test_cookies_are_masked_in_header_outputs(ctx):
    out = request(ctx, path="/cookie")
    assert out["headers"]["set-cookie"] == "***"
    assert out["headers"]["content-type"] == "application/json"


def test_url_and_path_together_are_an_input_error(ctx):
    with pytest.raises(StepInputError, match="not both"):
        request(ctx, url="http://x/", path="/y")
    with pytest.raises(StepInputError, match="give 'url'"):
        request(ctx)


def test_http_download_writes_the_file_and_reports_size_and_digest(ctx):
    size = 3 * 1024 * 1024 + 17
    out = download(ctx, path="/large", params={"size": size}, output="data/big.bin")
    assert out == {"path": str(ctx.workspace / "data" / "big.bin"), "bytes": size, "sha256": large_sha256(size)}


def test_http_download_refuses_paths_outside_the_workspace(ctx):
    with pytest.raises(StepError, match="escapes the job workspace"):
        download(ctx, path="/json", output="../../elsewhere.json")


def test_http_download_of_a_missing_resource_fails_without_a_file(ctx):
    with pytest.raises(Exception, match="answered 404 Not Found"):
        download(ctx, path="/status/404", output="missing.csv")
    assert list(ctx.workspace.iterdir()) == []


def test_a_resource_that_is_not_http_is_refused(tmp_path):
    db = SQLiteConnector(config={"path": ":memory:"}, options={})
    ctx = step_context(tmp_path, {"db": db})
    with pytest.raises(StepError, match=r"resource 'db' \(db/sqlite3\) is not an HTTP connector"):
        HttpRequest().run(ctx, HttpRequest.bind_inputs({"resource": "db", "path": "/"}))
