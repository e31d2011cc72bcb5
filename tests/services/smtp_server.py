"""A local SMTP test server: aiosmtpd's Controller with trustme certificates.

``smtp_server(mode)`` serves on 127.0.0.1:<free port> until the block ends:

- ``"starttls"``: STARTTLS required before anything else, AUTH required and only over
  TLS (the setup of a typical submission server on port 587);
- ``"tls"``: implicit TLS from the first byte (port 465 style), AUTH required;
- ``"plain"``: no TLS, no AUTH (a relay inside a trusted network).

The CA's PEM file is written before the port opens. Every received message is kept
with its envelope (sender, recipients) in ``server.messages``.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import logging
import ssl
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import free_port, record_boot, require_modules

# aiosmtpd warns about AUTH without STARTTLS on the implicit-TLS server (which is TLS
# all along) and about its own deprecated login_data; neither concerns the tests.
# (pytest resets filters per test: test modules use ``QUIET_WARNINGS`` as pytestmark.)
_QUIET = ("Requiring AUTH while not requiring TLS", "Session.login_data is deprecated")
for _message in _QUIET:
    warnings.filterwarnings("ignore", message=_message)
QUIET_WARNINGS = [f"ignore:{m}" for m in _QUIET]

USERNAME = "mailer"
PASSWORD = "S3cr3t-Pa55-xyz"


@dataclass
class ReceivedMessage:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    def parsed(self) -> email.message.EmailMessage:
        """The message as the ``email`` package reads it (wire CRLFs as newlines)."""
        return email.message_from_bytes(self.data.replace(b"\r\n", b"\n"), policy=email.policy.default)


@dataclass
class SmtpServer:
    host: str
    port: int
    mode: str
    ca_file: str | None
    username: str | None
    password: str | None = field(repr=False)
    messages: list[ReceivedMessage] = field(default_factory=list, repr=False)

    def config(self, **overrides) -> dict:
        """A ``mail/smtp`` resource config for this server."""
        config: dict = {"host": self.host, "port": self.port}
        if self.mode == "starttls":
            config["starttls"] = True
        if self.mode == "tls":
            config["ssl"] = True
        if self.ca_file:
            config["ca_file"] = self.ca_file
        if self.username:
            config.update(username=self.username, password=self.password)
        config.update(overrides)
        return config


class _Handler:
    def __init__(self, facts: SmtpServer):
        self.facts = facts

    async def handle_DATA(self, server, session, envelope):
        self.facts.messages.append(ReceivedMessage(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content or envelope.content)))
        return "250 Message accepted for delivery"


def _authenticator(username: str, password: str):
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == username.encode()
            and auth_data.password == password.encode()
        )
        # handled=False with auth_data: the session keeps the login (SERVICES.md).
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    return authenticate


@contextlib.contextmanager
def smtp_server(mode: str = "starttls") -> Iterator[SmtpServer]:
    if mode not in ("starttls", "tls", "plain"):
        raise ValueError(f"unknown SMTP test server mode {mode!r}")
    since = time.monotonic()
    require_modules("aiosmtpd", "trustme")
    from aiosmtpd.controller import Controller

    with tempfile.TemporaryDirectory(prefix="aetherflow-smtp-") as tmp:
        port = free_port()
        auth = mode != "plain"
        facts = SmtpServer(
            host="127.0.0.1",
            port=port,
            mode=mode,
            ca_file=None,
            username=USERNAME if auth else None,
            password=PASSWORD if auth else None,
        )
        kwargs: dict = {}
        if mode != "plain":
            import trustme

            ca = trustme.CA()
            ca_file = Path(tmp) / "ca.pem"
            ca.cert_pem.write_to_path(str(ca_file))  # before the port opens
            facts.ca_file = str(ca_file)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
            kwargs.update(authenticator=_authenticator(USERNAME, PASSWORD), auth_required=True)
            if mode == "starttls":
                kwargs.update(tls_context=context, require_starttls=True, auth_require_tls=True)
            else:
                # aiosmtpd counts only STARTTLS as TLS for auth_require_tls; this
                # connection is TLS from the first byte.
                kwargs.update(ssl_context=context, auth_require_tls=False)
        controller = Controller(_Handler(facts), hostname="127.0.0.1", port=port, ready_timeout=10, **kwargs)
        server_log = logging.getLogger("mail.log")
        previous_level = server_log.level
        server_log.setLevel(logging.CRITICAL)  # refused handshakes are what some tests want
        controller.start()
        record_boot(f"smtp-{mode}", facts.host, port, since)
        try:
            yield facts
        finally:
            controller.stop()
            server_log.setLevel(previous_level)
