"""Fixtures of the mail tests (the SMTP servers and the ``smtp``, ``starttls_smtp`` and
``tls_smtp`` mailboxes come from tests/services/plugin.py)."""

from __future__ import annotations

import pytest

from aetherflow.core.connectors.builtin.mail_smtp import SMTPConnector
from tests.helpers import connector_factory


@pytest.fixture
def make_mailer():
    """Build a ``mail/smtp`` connector named ``mailer``; every one is closed after the test."""
    with connector_factory(SMTPConnector, "mailer") as make:
        yield make
