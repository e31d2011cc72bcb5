"""What a step sees while it runs: :class:`StepContext`."""

from __future__ import annotations

import glob
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .cancel import CancelToken
from .errors import StepError
from .paths import is_within, real_path, really_within
from .redaction import Scrubber


class Progress(Protocol):
    def advance(self, amount: float = 1) -> None: ...

    def close(self) -> None: ...


class _NoProgress:
    def advance(self, amount: float = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def no_progress(description: str = "", total: float | None = None, unit: str = "") -> _NoProgress:
    return _NoProgress()


def resolve_under(base: Path, value: str | Path, *, what: str = "path") -> Path:
    """``value`` made absolute: relative paths sit under ``base`` and may not escape it,
    also through a symbolic link (the path returned has its links resolved)."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    resolved = real_path(base / path)
    if not is_within(resolved, real_path(base)):
        raise StepError(f"{what} {str(value)!r} escapes the job workspace {str(base)!r}")
    return resolved


def glob_under(base: Path, pattern: str, *, what: str = "path") -> list[Path]:
    """The paths matching ``pattern`` (``**`` for any depth), sorted. A relative pattern
    is matched in ``base``, and no match may lead out of it through a symbolic link."""
    matches = [Path(m) for m in sorted(glob.glob(str(resolve_under(base, pattern, what=what)), recursive=True))]
    if not Path(pattern).expanduser().is_absolute():
        for match in matches:
            if not really_within(match, base):
                raise StepError(
                    f"{what} {str(match)!r}, matched by {pattern!r}, is a symbolic link to {str(real_path(match))!r}, "
                    f"outside the job workspace {str(base)!r}"
                )
    return matches


@dataclass
class StepContext:
    """The step's view of the run. Steps reach external systems only via ``connectors``."""

    env: Mapping[str, str]
    connectors: Mapping[str, Any]
    flow_id: str
    run_id: str
    job_id: str
    step_id: str
    step_type: str
    workspace: Path
    logger: logging.LoggerAdapter
    scrubber: Scrubber
    locks: Any = None
    attempt: int = 1
    progress_factory: Any = no_progress
    #: this step's cancel scope: cancelled when the run is interrupted or the step's
    #: ``timeout_seconds`` pass; register how to stop blocking work with ``on_cancel``
    cancel: CancelToken = field(default_factory=CancelToken)
    #: what the runner does with :meth:`record_process_group` (None: nothing)
    process_group_recorder: Callable[[int | None], None] | None = None

    def record_process_group(self, pgid: int | None) -> None:
        """Record in the state the process group a child of the step runs in (``None``
        once it is gone): should the runner die and the group outlive it, a resume of
        the run, or another run taking over its lock, stops the group first."""
        if self.process_group_recorder is not None:
            self.process_group_recorder(pgid)

    def path(self, value: str | Path, *, what: str = "path") -> Path:
        """A step input path, relative to the job workspace."""
        return resolve_under(self.workspace, value, what=what)

    def glob(self, pattern: str, *, what: str = "path") -> list[Path]:
        """The paths a step input glob matches, relative to the job workspace."""
        return glob_under(self.workspace, pattern, what=what)

    def progress(self, description: str, total: float | None = None, unit: str = "") -> Progress:
        """A progress reporter (a live bar on a terminal, nothing otherwise)."""
        return self.progress_factory(description, total=total, unit=unit)

    @property
    def cancel_event(self):
        """The :class:`threading.Event` set when :attr:`cancel` is cancelled, for code that waits on events."""
        return self.cancel.event

    @property
    def cancelled(self) -> bool:
        return self.cancel.cancelled
