"""State backends. ``open_state_store`` picks one from the flow's ``state`` block.

Where the state lives, in one place for ``run`` and the ``runs``/``locks`` commands:

- ``flow.state`` unset (or ``backend: sqlite`` without ``path``):
  ``<AETHERFLOW_STATE_ROOT or ~/.aetherflow>/state.db``;
- ``backend: sqlite, path: P``: ``P`` rendered with ``env``; a relative ``P`` is taken
  relative to the flow file's directory (so cron jobs and shells agree);
- ``backend: postgres, dsn: D``: ``D`` rendered with ``env`` (typically
  ``"{{ env.AETHERFLOW_STATE_DSN }}"``); the DSN is added to the scrubber.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class StateLocation:
    backend: str
    path: str | None = None
    dsn: str | None = None

    def open(self) -> StateStore:
        return open_state_store(self.backend, path=self.path, dsn=self.dsn)

    def describe(self) -> str:
        if self.backend == "sqlite":
            return f"sqlite {self.path}"
        from .postgres import describe_dsn

        return describe_dsn(self.dsn or "")


def flow_state_location(document: Any, env: Any, state_root: str | None, scrubber: Any = None) -> StateLocation:
    """Where the state of the flow in ``document`` lives (templates rendered with ``env``)."""
    from ..templating import ENGINE, EnvView

    state = document.spec.flow.state

    def render(value: str, key: str) -> str:
        return str(ENGINE.render(value, {"env": EnvView(env)}, document.locate("flow", "state", key)))

    if state.backend == "postgres":
        dsn = render(state.dsn, "dsn") if state.dsn else None
        if dsn and scrubber is not None:
            scrubber.add(dsn)
        if not dsn:
            raise StateError("state backend postgres needs a dsn", hint="set flow.state.dsn, e.g. \"{{ env.AETHERFLOW_STATE_DSN }}\"")
        return StateLocation("postgres", dsn=dsn)
    if state.path:
        path = Path(render(state.path, "path")).expanduser()
        if not path.is_absolute() and document.path:
            path = Path(document.path).resolve().parent / path
        return StateLocation(state.backend, path=str(path))
    return StateLocation(state.backend, path=str(default_state_path(state_root)))
