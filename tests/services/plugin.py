"""The test servers as pytest fixtures: one session fixture per server, started on first
use and stopped at the end of the session, and cheap per-test fixtures on top of them.

Registered once for the whole suite by ``tests/conftest.py``; no other conftest starts a
server. At the end of a run the terminal summary names every server the session
started (``services: postgres 127.0.0.1:PORT started in 1.3 s (once)``); a server
started twice in one session fails the run.

Session servers:

- ``pg_server``: PostgreSQL (initdb + pg_ctl), test role and database, password auth.
- ``mariadb_server``: MariaDB (mariadbd --bootstrap), test user and utf8mb4 database,
  password auth over TCP.
- ``sshd``: OpenSSH serving only internal-sftp to one test user.
- ``smbd``: Samba with one writable share.
- ``smtp_starttls_srv``, ``smtp_tls_srv``, ``smtp_plain_srv``: aiosmtpd with STARTTLS
  and AUTH, with implicit TLS and AUTH, and plain without AUTH.
- ``http_srv``, ``https_srv``, ``mtls_srv``: the HTTP test endpoints, plain, over TLS
  (a trustme CA), and over TLS demanding a client certificate.

Per test:

- ``pg_database``: the URL of a new, empty database, dropped afterwards.
- ``maria_database``: the name of a new, empty utf8mb4 database on MariaDB, dropped afterwards.
- ``sftp_dir``, ``smb_dir``: a directory of its own on the SFTP server or the share,
  as ``(remote path, local path)``.
- ``smtp`` (each SMTP variant in turn), ``starttls_smtp``, ``tls_smtp``: a server with
  an empty mailbox.
- ``killable_pg``, ``killable_sshd``, ``killable_smbd``: the session server for a test
  that stops or kills it; started again (same port, same files) after the test.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TypeVar

import pytest

from . import DaemonProcess, Ledger, ServiceUnavailable, close_ledger, open_ledger, unavailable
from .http_server import http_server
from .mariadb import mariadb_server as start_mariadb
from .postgres import postgres_server
from .smbd import smbd_server
from .smtp_server import smtp_server
from .sshd import sshd_server

T = TypeVar("T")
_LEDGER = pytest.StashKey[Ledger]()


def serve(start: Callable[[], AbstractContextManager[T]]) -> Iterator[T]:
    """Run one server for a session fixture: ``yield from serve(postgres_server)``.

    The one place where a server that cannot run here becomes a skip naming its install
    command, or a failure under AETHERFLOW_REQUIRE_SERVICES=1.
    """
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(start())
        except ServiceUnavailable as exc:
            unavailable(str(exc), exc.install)
        yield server


def _revived(server):
    """Yield a session server to a test that stops it; start it again afterwards."""
    try:
        yield server
    finally:
        server.start()


_private_dirs = itertools.count(1)


def _private_dir(server: DaemonProcess, root: Path, request: pytest.FixtureRequest) -> tuple[str, Path]:
    """A new directory below ``root`` (the server's data), owned by the server's user:
    ``(name, local path)``. Named after the test and unique in the session (test names
    repeat across packages that share a server)."""
    name = "t-" + re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:80] + f"-{next(_private_dirs)}"
    local = root / name
    local.mkdir()
    server.chown_to_user(local)
    return name, local


# -- session servers -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server():
    yield from serve(postgres_server)


@pytest.fixture(scope="session")
def mariadb_server():
    yield from serve(start_mariadb)


@pytest.fixture(scope="session")
def sshd():
    yield from serve(sshd_server)


@pytest.fixture(scope="session")
def smbd():
    yield from serve(smbd_server)


@pytest.fixture(scope="session")
def smtp_starttls_srv():
    yield from serve(functools.partial(smtp_server, "starttls"))


@pytest.fixture(scope="session")
def smtp_tls_srv():
    yield from serve(functools.partial(smtp_server, "tls"))


@pytest.fixture(scope="session")
def smtp_plain_srv():
    yield from serve(functools.partial(smtp_server, "plain"))


@pytest.fixture(scope="session")
def http_srv():
    yield from serve(http_server)


@pytest.fixture(scope="session")
def https_srv():
    yield from serve(functools.partial(http_server, tls=True))


@pytest.fixture(scope="session")
def mtls_srv():
    yield from serve(functools.partial(http_server, tls=True, client_ca=True))


# -- per test ------------------------------------------------------------------------------


@pytest.fixture
def pg_database(pg_server) -> Iterator[str]:
    with pg_server.fresh_database() as url:
        yield url


@pytest.fixture
def maria_database(mariadb_server) -> Iterator[str]:
    with mariadb_server.fresh_database() as name:
        yield name


@pytest.fixture
def sftp_dir(sshd, request):
    """A directory on the SFTP server private to this test: ``(SFTP path, local path)``."""
    return _private_dir(sshd, sshd.data_dir, request)


@pytest.fixture
def smb_dir(smbd, request):
    """A directory of the share private to this test: ``(name in the share, local path)``."""
    return _private_dir(smbd, smbd.share_dir, request)


@pytest.fixture(params=["starttls", "tls", "plain"])
def smtp(request):
    """Each SMTP variant in turn, with an empty mailbox."""
    server = request.getfixturevalue(f"smtp_{request.param}_srv")
    server.messages.clear()
    return server


@pytest.fixture
def starttls_smtp(smtp_starttls_srv):
    smtp_starttls_srv.messages.clear()
    return smtp_starttls_srv


@pytest.fixture
def tls_smtp(smtp_tls_srv):
    smtp_tls_srv.messages.clear()
    return smtp_tls_srv


@pytest.fixture
def killable_pg(pg_server):
    yield from _revived(pg_server)


@pytest.fixture
def killable_sshd(sshd):
    yield from _revived(sshd)


@pytest.fixture
def killable_smbd(smbd):
    yield from _revived(smbd)


# -- one start per server ------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_LEDGER] = open_ledger()


def pytest_unconfigure(config: pytest.Config) -> None:
    close_ledger(config.stash[_LEDGER])


def pytest_sessionfinish(session: pytest.Session) -> None:
    if session.config.stash[_LEDGER].twice() and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    book = config.stash[_LEDGER]
    for line in book.lines():
        terminalreporter.write_line(f"services: {line}")
    twice = book.twice()
    if twice:
        terminalreporter.write_line(f"services: ERROR {', '.join(twice)} started more than once in this session", red=True, bold=True)
