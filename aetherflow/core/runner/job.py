"""One job of a run: its gate (:func:`gate`), then its steps in order, with retries and
timeouts: :class:`JobRun`."""

from __future__ import annotations

import re
import socket
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from ..cancel import CancelToken, cancel_scope
from ..context import StepContext
from ..errors import AetherflowError, StepError, TemplateError, UserError, retryable
from ..logs import log_context
from ..spec.models import JobSpec, StepSpec
from ..status import STEP_RESULT_STATUSES, Status
from ..steps.base import StepResult
from ..steps.registry import get_step
from ..templating import ENGINE, NamedMapping, named
from .records import JobRecord, StepRecord, ms
from .session import RunSession, jobs_root

# The jobs whose outputs a ``when`` expression reads.
_OUTPUTS_READ = re.compile(r"\bjobs\.([A-Za-z0-9_-]+)\.outputs\b")

_DEBUG = 10  # logging.DEBUG: tracebacks are logged at this level only


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, AetherflowError):
        return exc.describe()
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


INTERRUPTED = "interrupted"


def _flow_index(session: RunSession, job: JobSpec) -> int:
    return next(i for i, j in enumerate(session.spec.jobs) if j.id == job.id)


def gate(session: RunSession, job: JobSpec, finished: Mapping[str, JobRecord]) -> tuple[Status | None, str | None]:
    """The job's status when it must not run (a dependency, or ``when``), else None.

    Evaluated once the job's dependencies are finished, with the jobs finished then.
    """
    for dep in job.depends_on:
        dep_record = finished.get(dep)
        if dep_record is None or dep_record.status in (Status.FAILED, Status.BLOCKED):
            return Status.BLOCKED, f"dependency {dep!r} did not succeed"
    for dep in job.depends_on:
        if finished[dep].status == Status.SKIPPED:
            return Status.SKIPPED, f"dependency {dep!r} was skipped"
    if job.when is not None:
        context = {**session.template_roots(), "jobs": jobs_root(finished)}
        try:
            passed = ENGINE.evaluate(job.when, context, session.locate("jobs", _flow_index(session, job), "when"))
        except TemplateError:
            # Outputs a failed job never produced are a consequence of that failure,
            # not invalid input: the job is blocked, as by a failed dependency.
            for ref in _OUTPUTS_READ.findall(job.when):
                if ref in finished and finished[ref].status in (Status.FAILED, Status.BLOCKED):
                    return Status.BLOCKED, f"when reads the outputs of job {ref!r}, which did not succeed"
            raise
        if not passed:
            return Status.SKIPPED, f"when {job.when!r} is false"
    return None, None


class JobRun:
    """One job's execution: what it needs is explicit, so it can run anywhere the
    prepared flow is: the :class:`RunSession`, the job, its position in the plan and the
    jobs finished before it started (their statuses and outputs: the ``jobs`` root).

    Everything that belongs to the job alone lives here: its record, logger and
    workspace, the ``steps`` and ``job`` template roots and the outputs promoted so far.
    What the whole run shares is on :attr:`session`; so jobs can run side by side.
    """

    def __init__(
        self, session: RunSession, job: JobSpec, position: int, finished: Mapping[str, JobRecord] | None = None, *, steps_path: tuple | None = None
    ):
        self.session = session
        self.job = job
        self.position = position  # in the plan
        if steps_path is None:
            steps_path = ("jobs", _flow_index(session, job), "steps")
        self.steps_path = steps_path  # where the job's steps are written, for messages
        self.log = session.log.bind(job_id=job.id)
        self.record = JobRecord(job.id, Status.RUNNING)
        self.workspace = session.workspace(job.id)
        self.finished = dict(session.finished_jobs() if finished is None else finished)
        self.jobs_view = jobs_root(self.finished)
        self.steps_view = NamedMapping("steps")
        self._current: tuple[StepRecord, int] | None = None  # the step running now, and its position
        self._abandoned = False  # the run stopped waiting for this job: it writes no more state
        self._state_guard = threading.Lock()
        self.outputs: dict[str, Any] = {}
        self.job_view = named("job", {"id": job.id, "outputs": self.outputs})

    def _context(self) -> dict[str, Any]:
        """The template roots of a step input (``result`` is added for its outputs)."""
        return {
            **self.session.template_roots(),
            "steps": self.steps_view,
            "job": self.job_view,
            "jobs": self.jobs_view,
            "workspace": str(self.workspace),
        }

    def _failed(self, exc: AetherflowError) -> str:
        """The scrubbed message of a failure; bad input makes the run's exit code 2."""
        self.record.user_error = self.record.user_error or isinstance(exc, UserError)
        return self.session.scrubber.scrub(exc.describe())

    def _save(self, *, error: str | None = None) -> None:
        with self._state_guard:
            if not self._abandoned:
                self.session.store.record_job(self.record.row(self.session.run_id, self.position, error=error))

    def _save_step(self, record: StepRecord, position: int) -> None:
        with self._state_guard:
            if not self._abandoned:
                self.session.store.record_step(record.row(self.session.run_id, self.job.id, position))

    def abandon(self, reason: str) -> JobRecord:
        """The run stops waiting for this job (still running in its thread): record it
        FAILED with ``reason`` now, its running step too, and write nothing after that."""
        with self._state_guard:
            self._abandoned = True
            now = time.time()
            record = JobRecord(self.job.id, Status.FAILED, reason=reason, started_at=self.record.started_at, ended_at=now)
            record.duration_ms = ms(now - (record.started_at or now))
            record.steps = [s for s in self.record.steps]
            current = self._current
            if current is not None:
                step, position = current
                done = StepRecord(step.id, step.type, Status.FAILED, step.attempts, error=reason, started_at=step.started_at, ended_at=now)
                done.duration_ms = ms(now - (step.started_at or now))
                self.session.store.record_step(done.row(self.session.run_id, self.job.id, position))
                record.steps.append(done)
            record.steps += [StepRecord(s.id, s.type, Status.BLOCKED) for s in self.job.steps[len(record.steps):]]
            self.session.store.record_job(record.row(self.session.run_id, self.position, error=reason))
        self.log.error("job.finished", extra={"status": Status.FAILED, "reason": reason, "duration_ms": record.duration_ms})
        return record

    # -- the job --------------------------------------------------------------------------

    def run(self) -> JobRecord:
        """The job's steps, in order; the job's record, written to the state as it goes."""
        record = self.record
        record.started_at = time.time()
        self.workspace.mkdir(parents=True, exist_ok=True)
        self._save()
        self.log.info("job.started", extra={"workspace": str(self.workspace)})
        record.status = Status.SUCCESS
        halted_by: Status | None = None  # what the steps after a failure or an empty result become
        cancel = self.session.cancel
        for position, step in enumerate(self.job.steps):
            if halted_by is None and cancel.cancelled:
                record.status, halted_by, record.reason = Status.FAILED, Status.BLOCKED, INTERRUPTED
            if halted_by is not None:
                record.steps.append(StepRecord(step.id, step.type, halted_by))
                continue
            location = self.steps_path + (position,)
            step_record, raw_outputs = self._run_step(step, position, location)
            self._current = None
            record.steps.append(step_record)
            self.steps_view[step.id] = named(f"steps.{step.id}", {"status": step_record.status, "outputs": raw_outputs})
            if step_record.status == Status.FAILED:
                record.status, halted_by = Status.FAILED, Status.BLOCKED
                record.reason = INTERRUPTED if step_record.error == INTERRUPTED else f"step {step.id!r} failed"
                continue
            try:
                promoted = self._promote(step, location, raw_outputs)
                if step.persist and step_record.status == Status.SUCCESS:
                    self.session.persisted.collect(self.job.id, step.id, self._render_with_result(step.persist, location + ("persist",), raw_outputs))
            except AetherflowError as exc:
                step_record.status, step_record.error = Status.FAILED, self._failed(exc)
                self._save_step(step_record, position)
                self.log.error("step.failed", extra={"step_id": step.id, "step_type": step.type, "error": step_record.error})
                record.status, halted_by, record.reason = Status.FAILED, Status.BLOCKED, f"outputs of step {step.id!r} failed"
                continue
            self.outputs.update(promoted)
            self.job_view["outputs"] = named("job.outputs", self.outputs)
            if step_record.status == Status.SKIPPED and step.on_no_data == "skip_job":
                record.status, halted_by = Status.SKIPPED, Status.SKIPPED
                record.reason = f"step {step.id!r} found no data"
        # Exits (console, JSON, logs, state) show the outputs scrubbed; later jobs' templates
        # get them as they are.
        record.values = self.outputs
        record.outputs, record.outputs_masked = self.session.scrubber.scrub_data_changed(self.outputs)
        record.ended_at = time.time()
        record.duration_ms = ms(record.ended_at - record.started_at)
        self._save(error=record.reason if record.status == Status.FAILED else None)
        level = self.log.error if record.status == Status.FAILED else self.log.info
        level("job.finished", extra={"status": record.status, "duration_ms": record.duration_ms, "reason": record.reason})
        return record

    def gated(self, status: Status, reason: str | None) -> JobRecord:
        """The job's record when its :func:`gate` says it does not run, written to the state."""
        record = self.record
        record.started_at = time.time()
        record.status, record.reason = status, reason
        record.steps = [StepRecord(s.id, s.type, status if status != Status.FAILED else Status.BLOCKED) for s in self.job.steps]
        record.ended_at, record.duration_ms = record.started_at, 0
        self._save(error=reason)
        level = self.log.warning if status in (Status.BLOCKED, Status.FAILED) else self.log.info
        level("job.finished", extra={"status": status, "reason": reason, "duration_ms": 0})
        return record

    def _promote(self, step: StepSpec, location: tuple, raw_outputs: dict) -> dict[str, Any]:
        """The step's declared ``outputs``, rendered with ``result``: they join the job's outputs."""
        if not step.outputs:
            return {}
        return self._render_with_result(step.outputs, location + ("outputs",), raw_outputs)

    def _render_with_result(self, templates: dict[str, Any], location: tuple, raw_outputs: dict) -> dict[str, Any]:
        context = {**self._context(), "result": named("result", raw_outputs)}
        index = self.session.prepared.document.index
        return ENGINE.render_tree(templates, context, lambda path: index.locate(location + path))

    # -- steps ----------------------------------------------------------------------------

    def _run_step(self, step: StepSpec, position: int, location: tuple) -> tuple[StepRecord, dict[str, Any]]:
        """Run a step with its retries, recording it; a step finished by an earlier
        invocation of the run is reused instead. Returns the record and the raw outputs."""
        session, scrubber = self.session, self.session.scrubber
        step_log = self.log.bind(step_id=step.id, step_type=step.type)
        prior = session.previous.get((self.job.id, step.id))
        if prior is not None and prior.outputs_masked:
            # Its stored outputs are not what it produced: later steps must not get them.
            step_log.warning("step.rerun", extra={"reason": "its stored outputs had secrets masked, so it runs again"})
            prior = None
        if prior is not None:
            step_log.info("step.reused", extra={"status": prior.status, "attempts": prior.attempts})
            reused = StepRecord(step.id, step.type, prior.status, prior.attempts, prior.duration_ms or 0, prior.outputs, None, True)
            return reused, prior.outputs
        record = StepRecord(step.id, step.type, Status.RUNNING, started_at=time.time())

        def save() -> None:
            self._save_step(record, position)

        def record_process_group(pgid: int | None) -> None:
            record.process_group = None if pgid is None else f"{socket.gethostname()}:{pgid}"
            save()

        self._current = (record, position)
        save()
        step_log.info("step.started")
        max_attempts = step.retry.max_attempts if step.retry else 1
        raw_outputs: dict[str, Any] = {}
        reason: str | None = None  # StepResult.reason: why the step was skipped, for the log
        error: BaseException | None = None
        interrupted = False
        for attempt in range(1, max_attempts + 1):
            record.attempts = attempt
            scope = session.cancel.child(step.timeout_seconds)
            try:
                result = self._attempt(step, location, attempt, step_log, scope, record_process_group)
                if scope.timed_out:
                    raise self._timed_out(step)
                raw_outputs = dict(result.outputs)
                record.status, reason = result.status, result.reason
                error = None
                break
            except Exception as exc:  # noqa: BLE001 - a step failure is an outcome, not a crash
                if session.cancel.cancelled and not scope.timed_out:
                    interrupted = True
                    break
                error = self._timed_out(step, exc) if scope.timed_out else exc
                if attempt == max_attempts or not retryable(error):
                    break
                delay = step.retry.delay_seconds * (step.retry.backoff ** (attempt - 1))
                extra = {"attempt": attempt, "max_attempts": max_attempts, "error": scrubber.scrub(_describe_error(error))}
                if step_log.isEnabledFor(_DEBUG) and not isinstance(error, AetherflowError):
                    extra["traceback"] = scrubber.scrub("".join(traceback.format_exception(error)))
                step_log.warning("step.attempt_failed", extra={**extra, "retry_in_seconds": round(delay, 3)})
                if session.cancel.wait(delay):
                    interrupted = True
                    break
            finally:
                scope.close()
        if interrupted:
            record.status, record.error = Status.FAILED, INTERRUPTED
            record.ended_at = time.time()
            record.duration_ms = ms(record.ended_at - record.started_at)
            save()
            step_log.error("step.interrupted", extra={"status": Status.FAILED, "attempt": record.attempts, "reason": session.cancel.reason})
            return record, {}
        record.ended_at = time.time()
        record.duration_ms = ms(record.ended_at - record.started_at)
        if error is not None:
            self.record.user_error = self.record.user_error or isinstance(error, UserError)
            record.status, record.error = Status.FAILED, scrubber.scrub(_describe_error(error))
            fields = {"status": Status.FAILED, "attempts": record.attempts, "duration_ms": record.duration_ms, "error": record.error}
            if step_log.isEnabledFor(_DEBUG) and not isinstance(error, UserError):
                fields["traceback"] = scrubber.scrub("".join(traceback.format_exception(error)))
            step_log.error("step.failed", extra=fields)
        else:
            record.outputs, record.outputs_masked = scrubber.scrub_data_changed(raw_outputs)
            fields = {"status": record.status, "attempts": record.attempts, "duration_ms": record.duration_ms}
            if reason:
                fields["reason"] = str(reason)
            step_log.info("step.finished", extra=fields)
        save()
        return record, raw_outputs

    @staticmethod
    def _timed_out(step: StepSpec, stopped: BaseException | None = None) -> StepError:
        """The failure of a step whose ``timeout_seconds`` passed; ``stopped``: how the step ended then."""
        limit = f"{step.timeout_seconds:g}"
        message = f"step {step.id!r} timed out after {limit}s (timeout_seconds: {limit})"
        return StepError(message + (f"; it stopped with: {_describe_error(stopped)}" if stopped is not None else "; it was stopped"))

    def _attempt(
        self, step: StepSpec, location: tuple, attempt: int, step_log, scope: CancelToken, record_process_group: Callable[[int | None], None]
    ) -> StepResult:
        session = self.session
        cls = get_step(step.type)
        index = session.prepared.document.index
        rendered = ENGINE.render_tree(step.inputs, self._context(), lambda path: index.locate(location + ("inputs",) + path))
        # Credentials a step is given directly (headers, query parameters, URLs) are secrets too.
        session.scrubber.learn(rendered)
        inputs = cls.bind_inputs(rendered)
        ctx = StepContext(
            env=session.env,
            connectors=session.connectors,
            flow_id=session.flow_id,
            run_id=session.run_id,
            job_id=self.job.id,
            step_id=step.id,
            step_type=step.type,
            workspace=self.workspace,
            logger=step_log,
            scrubber=session.scrubber,
            locks=session.locks,
            attempt=attempt,
            progress_factory=session.progress_factory,
            cancel=scope,
            process_group_recorder=record_process_group,
        )
        with cancel_scope(scope), log_context(job_id=self.job.id, step_id=step.id, step_type=step.type):
            result = cls().run(ctx, inputs)
        if result is None:
            result = StepResult(Status.SUCCESS, {})
        if not isinstance(result, StepResult):
            raise TypeError(f"step type {step.type!r} returned {type(result).__name__}, not StepResult")
        if result.status not in STEP_RESULT_STATUSES:
            raise ValueError(f"step type {step.type!r} returned status {result.status!r}")
        return result
