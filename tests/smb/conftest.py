"""Fixtures of the SMB tests: a connector to the session's Samba smbd (the server,
``smb_dir`` and, for copies between SFTP and SMB, ``sshd`` and ``sftp_dir`` come from
tests/services/plugin.py)."""

from __future__ import annotations

import pytest

from tests.smb.support import make_connector


@pytest.fixture
def smb(smbd):
    connector = make_connector(smbd)
    yield connector
    connector.close()
