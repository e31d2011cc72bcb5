"""State backends. ``open_state_store`` picks one from the flow's ``state`` block."""

from __future__ import annotations

from pathlib import Path

from ..errors import StateError
from .base import StateStore

DEFAULT_STATE_ROOT = "~/.aetherflow"


def default_state_path(state_root: str | None) -> Path:
    return Path(state_root or DEFAULT_STATE_ROOT).expanduser() / "state.db"


def open_state_store(backend: str = "sqlite", *, path: str | None = None, dsn: str | None = None, state_root: str | None = None) -> StateStore:
    if backend == "sqlite":
        from .sqlite import SQLiteStateStore

        return SQLiteStateStore(Path(path).expanduser() if path else default_state_path(state_root))
    if backend == "postgres":
        if not dsn:
            raise StateError("state backend postgres needs a dsn", hint="set flow.state.dsn")
        from .postgres import PostgresStateStore

        return PostgresStateStore(dsn)
    raise StateError(f"unknown state backend {backend!r}", hint="use sqlite or postgres")
