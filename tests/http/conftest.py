"""Fixtures of the rest/httpx tests (the HTTP and HTTPS servers, ``http_srv``,
``https_srv`` and ``mtls_srv``, come from tests/services/plugin.py)."""

from __future__ import annotations

import pytest

from aetherflow.core.connectors.builtin.rest_httpx import HttpxConnector
from tests.helpers import connector_factory


@pytest.fixture
def make_api():
    """Build a ``rest/httpx`` connector named ``api``; every one is closed after the test."""
    with connector_factory(HttpxConnector, "api") as make:
        yield make
