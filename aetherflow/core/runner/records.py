"""What a run reports: one record per step and job, and the run's result.

Records are what the runner hands back (``run --json``, the summary table) and what it
writes to the state store, as rows (:mod:`aetherflow.core.state.rows`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..state.rows import JobRunRow, StepRunRow


def ms(seconds: float) -> int:
    """A duration in whole milliseconds, as every record keeps it."""
    return round(seconds * 1000)


@dataclass
class StepRecord:
    id: str
    type: str
    status: str
    attempts: int = 0
    duration_ms: int = 0
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    resumed: bool = False  # reused from an earlier invocation of the run
    started_at: float | None = None
    ended_at: float | None = None
    outputs_masked: bool = False  # the scrubber changed the outputs: a resume runs the step again
    process_group: str | None = None  # host:pgid of the command it runs now

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "status": self.status,
            "attempts": self.attempts,
            "duration_ms": self.duration_ms,
            "outputs": self.outputs,
            "error": self.error,
        }

    def row(self, run_id: str, job_id: str, position: int) -> StepRunRow:
        return StepRunRow(
            run_id=run_id,
            job_id=job_id,
            step_id=self.id,
            step_type=self.type,
            status=self.status,
            attempts=self.attempts,
            started_at=self.started_at,
            ended_at=self.ended_at,
            duration_ms=self.duration_ms,
            outputs=self.outputs,
            error=self.error,
            position=position,
            outputs_masked=self.outputs_masked,
            process_group=self.process_group,
        )


@dataclass
class JobRecord:
    id: str
    status: str
    outputs: dict[str, Any] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)
    duration_ms: int = 0
    reason: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    user_error: bool = False  # failed because of bad input (a template, a step input): exit code 2
    #: the outputs as later jobs' templates see them, unscrubbed (they never leave the
    #: process); None: the same as :attr:`outputs`, which is what every exit shows
    values: dict[str, Any] | None = None
    outputs_masked: bool = False  # the scrubber changed the outputs

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "outputs": self.outputs,
            "steps": [s.to_dict() for s in self.steps],
        }

    def row(self, run_id: str, position: int, *, error: str | None) -> JobRunRow:
        return JobRunRow(
            run_id=run_id,
            job_id=self.id,
            status=self.status,
            started_at=self.started_at,
            ended_at=self.ended_at,
            duration_ms=None if self.ended_at is None else self.duration_ms,
            outputs=self.outputs,
            error=error,
            position=position,
            outputs_masked=self.outputs_masked,
        )


@dataclass
class RunResult:
    flow_id: str
    run_id: str
    status: str
    duration_ms: int
    jobs: list[JobRecord]
    exit_code: int
    fingerprint: str = ""
    resumed: bool = False
    warnings: list[str] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)  # secret values masked
    persisted: dict[str, Any] = field(default_factory=dict)  # written to the store by this run
    handlers: list[JobRecord] = field(default_factory=list)  # on_failure / on_success / always, as run
    error: str | None = None  # why the run failed before any job ran (scrubbed)
    started_at: float | None = None  # when the run started (epoch seconds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "flow_id": self.flow_id,
            "run_id": self.run_id,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "error": self.error,
            "vars": self.variables,
            "jobs": [j.to_dict() for j in self.jobs],
            "persisted": self.persisted,
            "handlers": [h.to_dict() for h in self.handlers],
        }
