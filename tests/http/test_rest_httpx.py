"""``rest/httpx`` against a real local HTTP(S) server: auth, TLS, redirects, proxies,
timeouts, streamed downloads and what error messages may show."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import tracemalloc
from contextlib import closing, contextmanager

import pytest

from aetherflow.core.errors import ConnectorConfigError, ConnectorError, ConnectorTimeout
from tests.services.http_server import large_sha256

SECRET = "S3cr3t-Pa55-xyz"


# -- auth ----------------------------------------------------------------------------------------


def test_bearer_token_from_config_is_accepted(http_srv, make_api):
    api = make_api({"base_url": http_srv.url, "token": http_srv.token})
    response = api.get("/bearer")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "auth": "bearer"}


def test_wrong_bearer_token_gets_the_servers_401_back(http_srv, make_api):
    api = make_api({"base_url": http_srv.url, "token": "not-the-token"})
    assert api.get("/bearer").status_code == 401


def test_basic_auth_from_config_is_accepted(http_srv, make_api):
    api = make_api({"base_url": http_srv.url, "username": http_srv.username, "password": http_srv.password})
    response = api.get("/basic")
    assert response.status_code == 200
    assert response.json()["user"] == http_srv.username
    wrong = make_api({"base_url": http_srv.url, "username": http_srv.username, "password": "wrong"})
    assert wrong.get("/basic").status_code == 401


def test_token_and_basic_auth_together_are_a_config_error(http_srv, make_api):
    api = make_api({"base_url": http_srv.url, "token": "t", "username": "u", "password": "p"})
    with pytest.raises(ConnectorConfigError, match="either token .* or username/password"):
        api.get("/echo")


def test_config_headers_and_request_arguments_reach_the_server(http_srv, make_api):
    api = make_api({"base_url": http_srv.url, "headers": {"X-Api-Key": "k-123", "User-Agent": "aetherflow-test"}})
    response = api.post("/echo", params={"page": 2}, headers={"X-Trace": "abc"}, json={"rows": [1, 2]})
    echo = response.json()
    assert echo["method"] == "POST"
    assert echo["query"] == {"page": "2"}
    assert echo["headers"]["x-api-key"] == "k-123"
    assert echo["headers"]["x-trace"] == "abc"
    assert echo["headers"]["user-agent"] == "aetherflow-test"
    assert echo["json"] == {"rows": [1, 2]}


def test_every_verb_helper_sends_its_method(http_srv, make_api):
    api = make_api({"base_url": http_srv.url})
    for name in ("get", "post", "put", "patch", "delete"):
        assert getattr(api, name)("/echo").json()["method"] == name.upper()


def test_gzip_encoded_answers_are_decoded(http_srv, make_api):
    assert make_api({"base_url": http_srv.url}).get("/gzip").json() == {"compressed": True}


def test_one_client_serves_many_threads(http_srv, make_api):
    api = make_api({"base_url": http_srv.url}, max_connections=4)
    results, errors = [], []

    def call(i):
        try:
            results.append(api.get("/echo", params={"i": i}).json()["query"]["i"])
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results, key=int) == [str(i) for i in range(16)]
    assert api.connect() is api.connect()


# -- TLS -----------------------------------------------------------------------------------------


def test_tls_is_verified_against_the_configured_ca_bundle(https_srv, make_api):
    api = make_api({"base_url": https_srv.url, "verify": https_srv.ca_file, "token": https_srv.token})
    assert api.get("/bearer").json()["ok"] is True


def test_tls_to_an_untrusted_certificate_is_refused_by_default(https_srv, make_api):
    api = make_api({"base_url": https_srv.url})
    with pytest.raises(ConnectorError) as info:
        api.get("/echo")
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    assert "set `verify` to the CA bundle" in info.value.hint
    assert "resource 'api' (rest/httpx)" in str(info.value)


def test_verify_false_accepts_an_untrusted_certificate(https_srv, make_api):
    assert make_api({"base_url": https_srv.url, "verify": "false"}).get("/echo").status_code == 200


def test_client_certificate_from_config_is_presented(mtls_srv, make_api):
    with_cert = make_api({"base_url": mtls_srv.url, "verify": mtls_srv.ca_file, "cert": mtls_srv.client_cert_file})
    assert with_cert.get("/echo").status_code == 200
    without = make_api({"base_url": mtls_srv.url, "verify": mtls_srv.ca_file})
    with pytest.raises(ConnectorError, match="GET https://127.0.0.1:.*/echo failed"):
        without.get("/echo")


def test_missing_ca_bundle_is_a_config_error(make_api, tmp_path):
    api = make_api({"base_url": "https://127.0.0.1:9", "verify": str(tmp_path / "nope.pem")})
    with pytest.raises(ConnectorConfigError, match="CA bundle .* does not exist"):
        api.connect()


# -- redirects and proxies -----------------------------------------------------------------------


def test_redirects_are_followed_by_default(http_srv, make_api):
    response = make_api({"base_url": http_srv.url, "token": http_srv.token}).get("/redirect", params={"to": "/bearer", "code": 307})
    assert response.status_code == 200
    assert response.json()["auth"] == "bearer"  # same origin: the token survives the redirect
    assert str(response.url).endswith("/bearer")


def test_a_redirect_to_another_origin_drops_the_token(http_srv, make_api):
    other_origin = f"http://localhost:{http_srv.port}/echo"  # same server, different host name
    response = make_api({"base_url": http_srv.url, "token": http_srv.token}).get("/redirect", params={"to": other_origin})
    assert response.status_code == 200
    assert str(response.url) == other_origin
    assert "authorization" not in response.json()["headers"]


def test_a_cross_origin_redirect_drops_every_credential_header(http_srv, make_api):
    other_origin = f"http://localhost:{http_srv.port}/echo"
    config = {
        "base_url": http_srv.url,
        "username": "someone",
        "password": "Basic-Pa55",
        "headers": {"X-Api-Key": "K3y-from-config", "X-Tenant": "marked-secret-value", "Accept": "application/json"},
    }
    api = make_api(config)
    api.secret_paths = frozenset({"config.headers.X-Tenant"})  # marked in decode: (the manager sets this)
    extra = {"X-Auth-Token": "T0k-from-step", "Cookie": "session=abc", "X-Request-Id": "r-1"}
    response = api.get("/redirect", params={"to": other_origin}, headers=extra)
    assert str(response.url) == other_origin
    received = response.json()["headers"]
    for name in ("authorization", "x-api-key", "x-tenant", "x-auth-token", "cookie"):
        assert name not in received, (name, received)
    assert received["accept"] == "application/json" and received["x-request-id"] == "r-1"


def test_a_same_origin_redirect_keeps_the_credential_headers(http_srv, make_api):
    api = make_api({"base_url": http_srv.url, "headers": {"X-Api-Key": "K3y-from-config"}})
    received = api.get("/redirect", params={"to": "/echo"}).json()["headers"]
    assert received["x-api-key"] == "K3y-from-config"


def test_a_redirect_from_https_to_http_is_refused(https_srv, http_srv, make_api):
    api = make_api({"base_url": https_srv.url, "verify": https_srv.ca_file, "token": https_srv.token})
    seen = len(http_srv.requests)
    with pytest.raises(ConnectorError) as info:
        api.get("/redirect", params={"to": f"{http_srv.url}/echo"})
    assert "from https to http" in str(info.value)
    assert "follow_redirects: false" in info.value.hint
    assert http_srv.requests[seen:] == []  # the plain-text address was never called


def test_redirects_are_returned_when_following_is_off(http_srv, make_api):
    response = make_api({"base_url": http_srv.url}, follow_redirects=False).get("/redirect", params={"to": "/echo"})
    assert response.status_code == 302
    assert response.headers["location"] == "/echo"


def test_a_redirect_loop_fails_with_a_hint(http_srv, make_api):
    with pytest.raises(ConnectorError) as info:
        make_api({"base_url": http_srv.url}).get("/redirect-loop")
    assert "redirect" in str(info.value).lower()
    assert "follow_redirects: false" in info.value.hint


def test_proxy_comes_from_config_and_never_from_the_environment(http_srv, make_api, monkeypatch):
    # A proxy in the environment would break every request: it must be ignored.
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    assert make_api({"base_url": http_srv.url}).get("/echo").status_code == 200
    # The test server answers absolute-form requests, so it can play the proxy.
    http_srv.requests.clear()
    proxied = make_api({"base_url": "http://upstream.invalid:8080", "proxy": http_srv.url})
    assert proxied.get("/echo").json()["headers"]["host"] == "upstream.invalid:8080"
    assert http_srv.requests[-1]["target"] == "http://upstream.invalid:8080/echo"


# -- statuses and downloads ----------------------------------------------------------------------


def test_request_returns_non_2xx_responses_for_the_caller_to_judge(http_srv, make_api):
    response = make_api({"base_url": http_srv.url}).get("/status/503", params={"body": "maintenance"})
    assert response.status_code == 503
    assert response.text == "maintenance"


def test_download_of_100_mb_streams_with_bounded_memory(http_srv, make_api, tmp_path):
    size = 100 * 1024 * 1024
    target = tmp_path / "out" / "big.bin"
    api = make_api({"base_url": http_srv.url})
    seen = []
    tracemalloc.start()
    try:
        result = api.download(f"/large?size={size}", target, progress=lambda done, total: seen.append((done, total)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result == {"path": str(target), "bytes": size, "sha256": large_sha256(size)}
    assert target.stat().st_size == size
    assert peak < 8 * 1024 * 1024, f"peak Python memory {peak} bytes for a {size}-byte download"
    assert seen[-1] == (size, size)
    assert [p.name for p in target.parent.iterdir()] == ["big.bin"]


def test_download_of_a_non_2xx_answer_fails_and_leaves_no_file(http_srv, make_api, tmp_path):
    target = tmp_path / "report.csv"
    with pytest.raises(ConnectorError) as info:
        make_api({"base_url": http_srv.url}).download("/status/404?body=no+such+report", target)
    assert "answered 404 Not Found: no such report" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_download_interrupted_by_the_deadline_leaves_no_file(http_srv, make_api, tmp_path):
    api = make_api({"base_url": http_srv.url}, timeout_seconds=0.5)
    with pytest.raises(ConnectorTimeout):
        api.download("/drip?count=100&interval=0.05", tmp_path / "slow.bin")
    assert list(tmp_path.iterdir()) == []


# -- timeouts ------------------------------------------------------------------------------------


@contextmanager
def _unaccepting_listener():
    """A port whose accept queue is full: new connections hang in SYN-SENT."""
    with closing(socket.socket()) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        fillers = []
        try:
            for _ in range(4):
                filler = socket.socket()
                filler.setblocking(False)
                try:
                    filler.connect(("127.0.0.1", port))
                except BlockingIOError:
                    pass
                fillers.append(filler)
            yield port
        finally:
            for filler in fillers:
                filler.close()


def test_connect_timeout_is_a_connector_timeout(make_api):
    with _unaccepting_listener() as port:
        api = make_api({"base_url": f"http://127.0.0.1:{port}"}, connect_timeout_seconds=0.3)
        with pytest.raises(ConnectorTimeout, match=r"no connection within 0.3s \(connect timeout\)"):
            api.get("/echo")


def test_read_timeout_is_a_connector_timeout(http_srv, make_api):
    api = make_api({"base_url": http_srv.url}, read_timeout_seconds=0.3)
    with pytest.raises(ConnectorTimeout, match=r"GET http://127.0.0.1:\d+/slow\?delay=2 failed: no data for 0.3s \(read timeout\)"):
        api.get("/slow", params={"delay": 2})


def test_total_deadline_stops_a_body_that_keeps_trickling(http_srv, make_api):
    # Each byte comes well within the read timeout; only the total deadline can stop it.
    api = make_api({"base_url": http_srv.url}, read_timeout_seconds=5, timeout_seconds=0.5)
    with pytest.raises(ConnectorTimeout, match=r"not complete within timeout_seconds=0.5s \(total deadline\)"):
        api.get("/drip", params={"count": 200, "interval": 0.05})


def test_total_deadline_caps_the_wait_for_headers(http_srv, make_api):
    api = make_api({"base_url": http_srv.url}, read_timeout_seconds=30, timeout_seconds=0.3)
    with pytest.raises(ConnectorTimeout, match="total deadline"):
        api.get("/slow", params={"delay": 2})


def test_without_deadline_a_slow_body_completes(http_srv, make_api):
    api = make_api({"base_url": http_srv.url}, read_timeout_seconds=5)
    assert api.get("/drip", params={"count": 6, "interval": 0.05}).content == b"x" * 6


# -- what messages show --------------------------------------------------------------------------


def test_errors_show_urls_without_credentials(make_api):
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connections are refused
        api = make_api({})
        with pytest.raises(ConnectorError) as info:
            api.get(f"http://user:{SECRET}@127.0.0.1:{port}/private")
    message = str(info.value)
    assert SECRET not in message
    assert "user" not in message
    assert f"GET http://127.0.0.1:{port}/private failed" in message


def test_status_error_names_method_url_and_body_without_credentials(http_srv, make_api):
    api = make_api({})
    url = http_srv.url.replace("http://", f"http://user:{SECRET}@") + "/status/500?body=boom"
    response = api.get(url)
    error = api.status_error(response, "boom")
    assert str(error) == f"resource 'api' (rest/httpx): GET {http_srv.url}/status/500?body=boom answered 500 Internal Server Error: boom"


def test_check_proves_the_base_url_answers(https_srv, make_api):
    make_api({"base_url": https_srv.url, "verify": https_srv.ca_file}).check()
    with pytest.raises(ConnectorError, match="CERTIFICATE_VERIFY_FAILED"):
        make_api({"base_url": https_srv.url}).check()


def test_relative_url_without_base_url_explains_itself(make_api):
    with pytest.raises(ConnectorError) as info:
        make_api({}).get("/echo")
    assert "base_url" in (info.value.hint or "")


def test_connector_module_imports_no_driver():
    code = (
        "import sys\n"
        "import aetherflow.core.connectors.builtin.rest_httpx as h, aetherflow.core.connectors.builtin.mail_smtp as m\n"
        "h.HttpxConnector.config_schema; m.SMTPConnector.config_schema\n"
        "bad = [n for n in ('httpx', 'httpcore', 'smtplib', 'ssl') if n in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
