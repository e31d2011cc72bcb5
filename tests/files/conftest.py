"""Fixtures of the files tests: one private OpenSSH sshd for the session, connectors
to it, per-test directories on the server, and a 50 MB file of random bytes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re

import pytest

from aetherflow_core.connectors.builtin.fs_local import LocalFilesConnector
from aetherflow_core.connectors.builtin.sftp_paramiko import SFTPConnector
from tests.services import unavailable
from tests.services.sshd import INSTALL, ServiceUnavailable, SshServer, sshd_server

RESOURCE = "sftp_test"


def make_sftp(server: SshServer, name: str = RESOURCE, options: dict | None = None, **config) -> SFTPConnector:
    connector = SFTPConnector(config=server.config(**config), options=options or {})
    connector.name = name
    return connector


def make_local(root, name: str = "local_test") -> LocalFilesConnector:
    connector = LocalFilesConnector(config={"root": str(root)}, options={})
    connector.name = name
    return connector


@pytest.fixture(scope="session")
def sshd():
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(sshd_server())
        except ServiceUnavailable as exc:
            unavailable(str(exc), INSTALL)
        yield server


@pytest.fixture
def sftp(sshd):
    connector = make_sftp(sshd)
    yield connector
    connector.close()


@pytest.fixture
def remote_dir(sshd, request):
    """A directory on the server private to this test: ``(SFTP path, local path)``."""
    name = "t-" + re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:80]
    local = sshd.data_dir / name
    local.mkdir()
    sshd.chown_to_user(local)
    return name, local


def server_file(sshd, path, data: bytes = b"") -> None:
    """Create a file on the server's disk (directly, as the test user owns it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    sshd.chown_to_user(sshd.data_dir / path.relative_to(sshd.data_dir).parts[0])


def part_files(directory) -> list[str]:
    return [name for _, _, files in os.walk(directory) for name in files if ".part-" in name]


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@pytest.fixture(scope="session")
def big_file(tmp_path_factory):
    """A 50 MB file of random bytes and its sha256."""
    path = tmp_path_factory.mktemp("big") / "big 50MB ü.bin"
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        for _ in range(50):
            block = os.urandom(1024 * 1024)
            digest.update(block)
            fh.write(block)
    return path, digest.hexdigest()
