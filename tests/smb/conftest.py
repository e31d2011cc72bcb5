"""Session fixtures of the SMB tests: one private Samba smbd (and, for copies between
SFTP and SMB, one OpenSSH sshd) for the whole session."""

from __future__ import annotations

import hashlib
import os
import re

import pytest

from tests.services import unavailable
from tests.services.sshd import INSTALL as SSH_INSTALL
from tests.services.sshd import ServiceUnavailable as SshUnavailable
from tests.services.sshd import sshd_server
from tests.smb.support import make_connector, started_smbd


@pytest.fixture(scope="session")
def smbd():
    with started_smbd() as server:
        yield server


@pytest.fixture
def smb(smbd):
    connector = make_connector(smbd)
    yield connector
    connector.close()


@pytest.fixture
def remote_dir(smbd, request):
    """A directory of the share private to this test: ``(name in the share, local path)``."""
    name = "t-" + re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:80]
    local = smbd.share_dir / name
    local.mkdir()
    st = os.stat(smbd.share_dir)
    os.chown(local, st.st_uid, st.st_gid)
    return name, local


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


@pytest.fixture(scope="session")
def sshd():
    """The private OpenSSH server, for copies between SFTP and SMB."""
    try:
        server_cm = sshd_server()
        server = server_cm.__enter__()
    except SshUnavailable as exc:
        unavailable(str(exc), SSH_INSTALL)
    try:
        yield server
    finally:
        server_cm.__exit__(None, None, None)


@pytest.fixture
def sftp_dir(sshd, request):
    """A directory on the SFTP server private to this test: ``(SFTP path, local path)``."""
    name = "smb-" + re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:80]
    local = sshd.data_dir / name
    local.mkdir()
    sshd.chown_to_user(local)
    return name, local
