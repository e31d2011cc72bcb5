"""The handlers phase: the flow's ``handlers:`` steps, run once the run is over.

``on_failure`` runs when the run FAILED, also when it failed before any job started (an
unknown profile, a resource that does not resolve, a held flow lock, a state store out of
reach); ``on_success`` when it succeeded (SUCCESS or SKIPPED); ``always`` after either.
Nothing runs after an interrupted run (SIGINT/SIGTERM asked the runner to stop) nor after
a usage error of the command line (an undeclared variable, an unknown job).

Each list runs like a job's steps (inputs, outputs, retries) with one more template root,
``run``: its ``status``, ``run_id``, ``failed_jobs``, ``errors`` (scrubbed) and
``duration_ms``. Handlers are reported in the run's result and logs, not stored as jobs
of the run (a resumed run never reuses them). A handler that fails is logged and
reported; the run's own status and exit code stay as they were.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..spec.models import JobSpec
from ..status import DONE_OK, Status
from ..templating import named
from .job import JobRun
from .records import JobRecord, StepRecord
from .session import RunSession

EVENTS = ("on_failure", "on_success", "always")


@dataclass(frozen=True)
class RunOutcome:
    """The finished run as handlers see it (the ``run`` template root)."""

    status: str
    run_id: str
    failed_jobs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # scrubbed
    duration_ms: int = 0

    def root(self) -> Any:
        return named(
            "run",
            {
                "status": str(self.status),
                "run_id": self.run_id,
                "failed_jobs": list(self.failed_jobs),
                "errors": list(self.errors),
                "duration_ms": self.duration_ms,
            },
        )


def outcome_of(run_id: str, status: str, records: list[JobRecord], duration_ms: int, scrubber) -> RunOutcome:
    """What the ``run`` root says about a run whose jobs ran."""
    errors = []
    for record in records:
        if record.status != Status.FAILED:
            continue
        failed_steps = [step for step in record.steps if step.status == Status.FAILED and step.error]
        if failed_steps:
            errors += [f"job {record.id}: step {step.id}: {step.error}" for step in failed_steps]
        else:
            errors.append(f"job {record.id}: {record.reason or 'failed'}")
    failed = [record.id for record in records if record.status == Status.FAILED]
    return RunOutcome(status, run_id, failed, [scrubber.scrub(error) for error in errors], duration_ms)


class HandlerRun(JobRun):
    """One handler list run as a job that is not recorded in the state."""

    def __init__(self, session: RunSession, event: str, outcome: RunOutcome):
        steps = getattr(session.spec.handlers, event)
        super().__init__(session, JobSpec(id=f"handlers.{event}", steps=steps), 0, steps_path=("handlers", event))
        self.outcome = outcome
        self.log = session.log.bind(job_id=f"handlers.{event}", handler=event)

    def _context(self) -> dict[str, Any]:
        return {**super()._context(), "run": self.outcome.root()}

    def _save(self, *, error: str | None = None) -> None:
        pass  # handlers are reported with the run, never stored as its jobs

    def _save_step(self, record: StepRecord, position: int) -> None:
        pass


def handler_events(spec, status: str) -> list[str]:
    """Which handler lists run after a run that ended with ``status``, in order."""
    handlers = spec.handlers
    events = ["on_success" if status in DONE_OK else "on_failure", "always"]
    return [event for event in events if getattr(handlers, event)]


def run_handlers(session: RunSession, outcome: RunOutcome) -> list[JobRecord]:
    """Run the handler lists that apply to ``outcome``; their records, in order."""
    records = []
    for event in handler_events(session.spec, outcome.status):
        session.log.info("handlers.started", extra={"handler": event, "status": outcome.status})
        record = HandlerRun(session, event, outcome).run()
        record.id = event
        if record.status == Status.FAILED:
            session.log.error("handlers.failed", extra={"handler": event, "reason": record.reason})
        records.append(record)
    return records
