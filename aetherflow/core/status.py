"""The status names of runs, jobs and steps, shared by the runner, the state store,
the steps and every rendering.

``Status`` members are strings (``Status.SUCCESS == "SUCCESS"``), so they are written
to JSON and to the state as plain text and compare equal to what is read back.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    BLOCKED = "BLOCKED"
    SKIPPED = "SKIPPED"
    RUNNING = "RUNNING"


#: Statuses that count as success: for a run's exit code, for resume (a step in one of
#: these is not run again) and for a dependency gate.
DONE_OK = frozenset({Status.SUCCESS, Status.SKIPPED})
#: What a step may return from ``run``.
STEP_RESULT_STATUSES = DONE_OK
