"""Helpers shared by the SMB tests (fixtures live in conftest.py)."""

from __future__ import annotations

from aetherflow.core.connectors.builtin.smb_smbprotocol import SMBConnector


def make_connector(server, *, name: str = "nas", options: dict | None = None, **config) -> SMBConnector:
    connector = SMBConnector(config=server.config(**config), options=options or {})
    connector.name = name
    return connector


def share_file(smbd, relative: str, data: bytes = b"") -> None:
    """Create a file on the share's disk directly, owned by the share's user."""
    path = smbd.share_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    smbd.chown_to_user(smbd.share_dir / relative.split("/")[0])
