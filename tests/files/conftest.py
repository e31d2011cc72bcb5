"""Fixtures of the files tests: connectors to the session's OpenSSH sshd (see
tests/services/plugin.py for the server and ``sftp_dir``) and to local roots."""

from __future__ import annotations

import os

import pytest

from aetherflow.core.connectors.builtin.fs_local import LocalFilesConnector
from aetherflow.core.connectors.builtin.sftp_paramiko import SFTPConnector
from tests.services.sshd import SshServer

RESOURCE = "sftp_test"


def make_sftp(server: SshServer, name: str = RESOURCE, options: dict | None = None, **config) -> SFTPConnector:
    connector = SFTPConnector(config=server.config(**config), options=options or {})
    connector.name = name
    return connector


def make_local(root, name: str = "local_test") -> LocalFilesConnector:
    connector = LocalFilesConnector(config={"root": str(root)}, options={})
    connector.name = name
    return connector


@pytest.fixture
def sftp(sshd):
    connector = make_sftp(sshd)
    yield connector
    connector.close()


def server_file(sshd, path, data: bytes = b"") -> None:
    """Create a file on the server's disk (directly, as the test user owns it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    sshd.chown_to_user(sshd.data_dir / path.relative_to(sshd.data_dir).parts[0])


def part_files(directory) -> list[str]:
    return [name for _, _, files in os.walk(directory) for name in files if ".part-" in name]
