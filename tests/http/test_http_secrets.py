"""rest/httpx errors never show a token or password, against the real HTTP server (see
tests/test_driver_errors_scrubbed.py)."""

from __future__ import annotations

from aetherflow.core.connectors.builtin.rest_httpx import HttpxConnector
from tests.helpers import driver_fault
from tests.services import free_port

SECRET = "Zq7-distinct-S3cret"


def test_http_errors_never_show_the_token_or_password(http_srv):
    def make(**config) -> HttpxConnector:
        return HttpxConnector(config={"base_url": http_srv.url, **config}, options={"connect_timeout_seconds": 5})

    def get(connector):
        connector.get("/bearer")

    # The HTTP library quotes an invalid header value whole: the token with it.
    driver_fault(get, make(token=f"{SECRET}\n"), SECRET)
    driver_fault(get, make(headers={"X-Api-Key": f"{SECRET}\r\n"}), SECRET)
    driver_fault(get, make(base_url=f"http://127.0.0.1:{free_port()}", username="user", password=SECRET), SECRET)
    driver_fault(get, make(proxy=f"http://user:{SECRET}@127.0.0.1:{free_port()}"), SECRET)
    driver_fault(get, make(base_url=f"http://user:{SECRET}@127.0.0.1:notaport"), SECRET)
