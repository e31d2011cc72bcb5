"""Helpers shared by the SMB tests (fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import hashlib

from aetherflow_core.connectors.builtin.smb_smbprotocol import SMBConnector
from tests.services import unavailable
from tests.services.smbd import INSTALL, ServiceUnavailable, smbd_server


@contextlib.contextmanager
def started_smbd(**kwargs):
    """``smbd_server`` that skips (or fails under AETHERFLOW_REQUIRE_SERVICES=1) when
    Samba cannot run here."""
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(smbd_server(**kwargs))
        except ServiceUnavailable as exc:
            unavailable(str(exc), INSTALL)
        yield server


def make_connector(server, *, name: str = "nas", options: dict | None = None, **config) -> SMBConnector:
    connector = SMBConnector(config=server.config(**config), options=options or {})
    connector.name = name
    return connector


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def share_file(smbd, relative: str, data: bytes = b"") -> None:
    """Create a file on the share's disk directly, owned by the share's user."""
    path = smbd.share_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    smbd.chown_to_user(smbd.share_dir / relative.split("/")[0])
