"""How times are written for people and documents: ISO 8601, UTC, milliseconds."""

from __future__ import annotations

import time
from typing import overload


@overload
def iso_utc(epoch: float) -> str: ...
@overload
def iso_utc(epoch: None) -> None: ...
def iso_utc(epoch: float | None) -> str | None:
    """``2024-05-01T12:00:00.250Z`` for epoch seconds (None stays None: a time not yet known)."""
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"
