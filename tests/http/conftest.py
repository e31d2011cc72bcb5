"""Session-wide local HTTP and HTTPS servers for the rest/httpx tests."""

from __future__ import annotations

import pytest

from aetherflow_core.connectors.builtin.rest_httpx import HttpxConnector
from tests.services import unavailable
from tests.services.http_server import http_server


def _serve(**kwargs):
    try:
        import trustme  # noqa: F401
    except ImportError:
        unavailable("trustme is not installed", "install the test extras: pip install -e '.[test]'")
    return http_server(**kwargs)


@pytest.fixture(scope="session")
def http_srv():
    with _serve() as server:
        yield server


@pytest.fixture(scope="session")
def https_srv():
    with _serve(tls=True) as server:
        yield server


@pytest.fixture(scope="session")
def mtls_srv():
    with _serve(tls=True, client_ca=True) as server:
        yield server


@pytest.fixture
def make_api():
    """Build a ``rest/httpx`` connector named ``api``; every one is closed after the test."""
    built = []

    def make(config: dict | None = None, **options) -> HttpxConnector:
        connector = HttpxConnector(config=dict(config or {}), options=options)
        connector.name = "api"
        built.append(connector)
        return connector

    yield make
    for connector in built:
        connector.close()
