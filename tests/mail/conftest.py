"""Session-wide local SMTP servers (aiosmtpd): STARTTLS, implicit TLS and plain."""

from __future__ import annotations

import contextlib

import pytest

from aetherflow_core.connectors.builtin.mail_smtp import SMTPConnector
from tests.services import unavailable
from tests.services.smtp_server import smtp_server


def _serve(mode: str):
    try:
        import aiosmtpd  # noqa: F401
        import trustme  # noqa: F401
    except ImportError as exc:
        unavailable(f"{exc.name} is not installed", "install the test extras: pip install -e '.[test]'")
    return smtp_server(mode)


@pytest.fixture(scope="session")
def _servers():
    with contextlib.ExitStack() as stack:
        yield {mode: stack.enter_context(_serve(mode)) for mode in ("starttls", "tls", "plain")}


@pytest.fixture(params=["starttls", "tls", "plain"])
def smtp(request, _servers):
    """Each SMTP variant in turn, with an empty mailbox."""
    server = _servers[request.param]
    server.messages.clear()
    return server


@pytest.fixture
def starttls_smtp(_servers):
    server = _servers["starttls"]
    server.messages.clear()
    return server


@pytest.fixture
def tls_smtp(_servers):
    server = _servers["tls"]
    server.messages.clear()
    return server


@pytest.fixture
def make_mailer():
    built = []

    def make(config: dict, **options) -> SMTPConnector:
        connector = SMTPConnector(config=dict(config), options=options)
        connector.name = "mailer"
        built.append(connector)
        return connector

    yield make
    for connector in built:
        connector.close()
