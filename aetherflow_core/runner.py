"""The runner: jobs in topological order, steps in sequence, state recorded as it goes.

Statuses: a job is SUCCESS, FAILED, BLOCKED (a dependency failed or was blocked),
or SKIPPED (``when`` was false, a dependency was skipped, or a step with
``on_no_data: skip_job`` was skipped). A failed job does not stop independent jobs.
Steps after a failed step in the same job are BLOCKED. Retries happen only where a
step asks for them, and each attempt is logged.
"""

from __future__ import annotations

import heapq
import os
import shutil
import signal
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .connectors.manager import ConnectorManager
from .context import StepContext, no_progress
from .errors import AetherflowError, Interrupted, LockHeldError, UserError, retryable, suggest
from .locks import LockManager, process_alive
from .logs import ContextLogger, get_logger
from .prepare import PreparedFlow, raise_first_error
from .spec.models import JobSpec, StepSpec
from .state import flow_state_location
from .state.base import StateStore
from .status import STEP_RESULT_STATUSES, Status
from .steps.base import StepResult
from .steps.registry import get_step
from .templating import ENGINE, EnvView, NamedMapping, named

SUCCESS, FAILED, BLOCKED, SKIPPED, RUNNING = Status.SUCCESS, Status.FAILED, Status.BLOCKED, Status.SKIPPED, Status.RUNNING


@dataclass
class StepRecord:
    id: str
    type: str
    status: str
    attempts: int = 0
    duration_ms: int = 0
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    resumed: bool = False

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


@dataclass
class JobRecord:
    id: str
    status: str
    outputs: dict[str, Any] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)
    duration_ms: int = 0
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "outputs": self.outputs,
            "steps": [s.to_dict() for s in self.steps],
        }


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "flow_id": self.flow_id,
            "run_id": self.run_id,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "jobs": [j.to_dict() for j in self.jobs],
        }


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


def plan_jobs(jobs: list[JobSpec], selected: list[str] | None = None) -> list[JobSpec]:
    """Topological order, YAML order breaking ties; ``selected`` adds its upstream jobs."""
    by_id = {job.id: job for job in jobs}
    position = {job.id: i for i, job in enumerate(jobs)}
    wanted = set(by_id)
    if selected:
        wanted = set()
        pending = list(selected)
        while pending:
            job_id = pending.pop()
            if job_id not in by_id:
                raise UserError(f"unknown job {job_id!r}{suggest(job_id, by_id)}", hint=f"jobs of this flow: {', '.join(by_id)}")
            if job_id not in wanted:
                wanted.add(job_id)
                pending.extend(by_id[job_id].depends_on)
    indegree = {j: sum(1 for d in by_id[j].depends_on if d in wanted) for j in wanted}
    ready = [(position[j], j) for j, n in indegree.items() if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, job_id = heapq.heappop(ready)
        order.append(by_id[job_id])
        for other in wanted:
            if job_id in by_id[other].depends_on:
                indegree[other] -= 1
                if indegree[other] == 0:
                    heapq.heappush(ready, (position[other], other))
    return order


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, AetherflowError):
        return exc.describe()
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def _signals_raise_interrupted(cancel: threading.Event) -> Iterator[Callable[[], None]]:
    """SIGINT/SIGTERM stop the running step by raising in the main thread.

    Only the first signal raises, and none after the context's ``disarm()``: the clean-up
    that follows (recording the step, releasing locks) must not be interrupted itself.
    """
    armed = [True]

    def disarm() -> None:
        armed[0] = False

    if threading.current_thread() is not threading.main_thread():
        yield disarm
        return

    def handler(signum, frame):
        cancel.set()
        if armed[0]:
            armed[0] = False
            raise Interrupted(f"interrupted by {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield disarm
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class Runner:
    def __init__(
        self,
        prepared: PreparedFlow,
        *,
        run_id: str | None = None,
        resume: bool = False,
        jobs: list[str] | None = None,
        progress_factory: Callable = no_progress,
        store: StateStore | None = None,
    ):
        self.prepared = prepared
        self.spec = prepared.document.spec
        self.requested_run_id = run_id
        self.resume_latest = resume
        self.selected_jobs = jobs
        self.progress_factory = progress_factory
        self.scrubber = prepared.scrubber
        self.env = prepared.env
        self.cancel = threading.Event()
        self._store = store
        self._user_error = False

    # -- flow metadata ------------------------------------------------------------------

    def _render_meta(self, value: Any, *path: str | int) -> Any:
        return ENGINE.render(value, {"env": EnvView(self.env)}, self.prepared.document.locate(*path))

    def _open_store(self) -> StateStore:
        if self._store is not None:
            return self._store
        return flow_state_location(self.prepared.document, self.env, self.prepared.settings.state_root, self.scrubber).open()

    def _work_root(self) -> Path:
        root = self._render_meta(self.spec.flow.workspace.root, "flow", "workspace", "root")
        return Path(str(root)).expanduser()

    # -- run ----------------------------------------------------------------------------

    def run(self) -> RunResult:
        raise_first_error(self.prepared)
        plan = plan_jobs(self.spec.jobs, self.selected_jobs)
        work_root = self._work_root()
        store = self._open_store()
        flow_id = self.spec.flow.id
        warnings: list[str] = []
        try:
            run_id, previous = self._start_run(store, flow_id, warnings)
            log = get_logger(flow_id=flow_id, run_id=run_id)
            for warning in warnings:
                log.warning("run.warning", extra={"detail": warning})
            locks = LockManager(store, run_id, log)
            connectors = ConnectorManager(
                {r.name: r for r in self.prepared.resources},
                scope=self.prepared.settings.connector_cache,
                disabled=self.prepared.settings.connector_cache_disabled,
            )
            started = time.time()
            log.info("run.started", extra={"resumed": bool(previous), "fingerprint": self.prepared.fingerprint})
            records: list[JobRecord] = []
            interrupted: Interrupted | None = None
            with _signals_raise_interrupted(self.cancel) as disarm:
                try:
                    with self._flow_lock(locks, log) as acquired:
                        if acquired:
                            self._run_jobs(plan, records, store, run_id, previous, work_root, connectors, locks, log)
                        else:
                            records = [JobRecord(job.id, SKIPPED, reason="flow lock held") for job in plan]
                except (KeyboardInterrupt, Interrupted) as exc:
                    interrupted = exc if isinstance(exc, Interrupted) else Interrupted("interrupted by SIGINT")
                    self.cancel.set()
                except LockHeldError:
                    # Refused before any job ran: the run is over, not left RUNNING for --resume.
                    store.finish_run(run_id, FAILED, time.time(), _ms(time.time() - started))
                    log.error("run.finished", extra={"status": FAILED, "reason": "flow lock held"})
                    raise
                finally:
                    disarm()
                    locks.release_all()
                    connectors.close()
            status = self._run_status(records, interrupted)
            duration_ms = _ms(time.time() - started)
            store.finish_run(run_id, status, time.time(), duration_ms)
            if interrupted is None:
                self._cleanup(work_root, flow_id, run_id, [r.id for r in records], status)
            log.info("run.finished", extra={"status": status, "duration_ms": duration_ms})
            exit_code = 0 if status in (SUCCESS, SKIPPED) else (2 if self._user_error else 1)
            result = RunResult(flow_id, run_id, status, duration_ms, records, exit_code, self.prepared.fingerprint, bool(previous), warnings)
            if interrupted is not None:
                interrupted.result = result
                raise interrupted
            return result
        finally:
            if self._store is None:
                store.close()

    def _start_run(self, store: StateStore, flow_id: str, warnings: list[str]) -> tuple[str, dict[tuple[str, str], dict]]:
        document = self.prepared.document
        run_id = self.requested_run_id
        if run_id is None and self.resume_latest:
            run_id = store.latest_unfinished_run(flow_id)
            if run_id is None:
                warnings.append(f"no unfinished run of flow {flow_id!r} to resume; starting a new run")
        existing = store.get_run(run_id) if run_id else None
        now = time.time()
        facts = {"fingerprint": self.prepared.fingerprint, "host": socket.gethostname(), "pid": os.getpid()}
        if existing is None:
            run_id = run_id or new_run_id()
            store.create_run(
                {
                    "run_id": run_id,
                    "flow_id": flow_id,
                    "status": RUNNING,
                    "profile": self.prepared.settings.profile,
                    "flow_path": str(Path(document.path).resolve()) if document.path else None,
                    "flow_sha256": document.sha256,
                    "started_at": now,
                    **facts,
                }
            )
            return run_id, {}
        if existing["flow_id"] != flow_id:
            raise UserError(
                f"run {run_id!r} belongs to flow {existing['flow_id']!r}, not {flow_id!r}",
                hint="pick a new --run-id, or run the flow that owns it",
            )
        if existing["status"] == RUNNING and existing["host"] and existing["pid"] and int(existing["pid"]) != os.getpid():
            alive = process_alive(existing["host"], int(existing["pid"]))
            if alive:
                raise UserError(
                    f"run {run_id!r} is still running (pid {existing['pid']} on {existing['host']})",
                    hint="wait for it to finish, or stop it; a run whose process died can be resumed",
                )
            if alive is None:
                warnings.append(
                    f"run {run_id} is marked RUNNING by {existing['host']} (pid {existing['pid']}), which this host "
                    "cannot check; resuming it anyway"
                )
        if existing["flow_sha256"] and existing["flow_sha256"] != document.sha256:
            warnings.append(f"the flow file changed since run {run_id} started; finished steps are still reused")
        store.reopen_run(run_id, now, **facts)
        previous = {
            (row["job_id"], row["step_id"]): row
            for row in store.step_runs(run_id)
            if row["status"] in (SUCCESS, SKIPPED)
        }
        return run_id, previous

    @contextmanager
    def _flow_lock(self, locks: LockManager, log: ContextLogger) -> Iterator[bool]:
        lock = self.spec.flow.lock
        if lock is None:
            yield True
            return
        key = str(self._render_meta(lock.key, "flow", "lock", "key"))
        if not locks.acquire(key, lock.ttl_seconds, lock.wait_seconds, self.cancel):
            if lock.on_locked == "skip":
                log.warning("run.skipped", extra={"detail": f"flow lock {key!r} is held by another run"})
                yield False
                return
            holder = next((info.owner for info in locks.store.list_locks() if info.key == key), "another run")
            raise LockHeldError(f"flow lock {key!r} is held by {holder}", hint="on_locked: skip makes this a skipped run instead")
        try:
            yield True
        finally:
            locks.release(key)

    @staticmethod
    def _run_status(records: list[JobRecord], interrupted: BaseException | None) -> str:
        if interrupted is not None or any(r.status in (FAILED, BLOCKED) for r in records):
            return FAILED
        if records and all(r.status == SKIPPED for r in records):
            return SKIPPED
        return SUCCESS

    def _cleanup(self, root: Path, flow_id: str, run_id: str, job_ids: list[str], status: str) -> None:
        policy = self.spec.flow.workspace.cleanup_policy
        if policy == "never" or (policy == "on_success" and status not in (SUCCESS, SKIPPED)):
            return
        for job_id in job_ids:
            shutil.rmtree(root / flow_id / job_id / run_id, ignore_errors=True)

    # -- jobs ---------------------------------------------------------------------------

    def _run_jobs(self, plan, records, store, run_id, previous, work_root, connectors, locks, log) -> None:
        finished: dict[str, JobRecord] = {}
        jobs_view = NamedMapping("jobs")
        for position, job in enumerate(plan):
            record = self._run_job(job, position, finished, jobs_view, store, run_id, previous, work_root, connectors, locks, log)
            finished[job.id] = record
            records.append(record)
            jobs_view[job.id] = named(f"jobs.{job.id}", {"status": record.status, "outputs": record.outputs})

    def _gate(self, job: JobSpec, finished: dict[str, JobRecord], jobs_view: NamedMapping, run_id: str, job_index: int) -> tuple[str | None, str | None]:
        for dep in job.depends_on:
            dep_record = finished.get(dep)
            if dep_record is None or dep_record.status in (FAILED, BLOCKED):
                return BLOCKED, f"dependency {dep!r} did not succeed"
        for dep in job.depends_on:
            if finished[dep].status == SKIPPED:
                return SKIPPED, f"dependency {dep!r} was skipped"
        if job.when is not None:
            context = {"jobs": jobs_view, "env": EnvView(self.env), "run_id": run_id, "flow_id": self.spec.flow.id}
            location = self.prepared.document.locate("jobs", job_index, "when")
            if not ENGINE.evaluate(job.when, context, location):
                return SKIPPED, f"when {job.when!r} is false"
        return None, None

    def _run_job(self, job, position, finished, jobs_view, store, run_id, previous, work_root, connectors, locks, log) -> JobRecord:
        job_index = next(i for i, j in enumerate(self.spec.jobs) if j.id == job.id)
        job_log = log.bind(job_id=job.id)
        started = time.time()
        record = JobRecord(job.id, RUNNING)
        try:
            gate, reason = self._gate(job, finished, jobs_view, run_id, job_index)
        except AetherflowError as exc:
            self._user_error = self._user_error or isinstance(exc, UserError)
            gate, reason = FAILED, self.scrubber.scrub(exc.describe())
        if gate is not None:
            record.status, record.reason = gate, reason
            record.steps = [StepRecord(s.id, s.type, gate if gate != FAILED else BLOCKED) for s in job.steps]
            store.record_job(
                run_id,
                {
                    "id": job.id,
                    "status": gate,
                    "error": reason,
                    "position": position,
                    "started_at": started,
                    "ended_at": started,
                    "duration_ms": 0,
                },
            )
            level = job_log.warning if gate in (BLOCKED, FAILED) else job_log.info
            level("job.finished", extra={"status": gate, "reason": reason, "duration_ms": 0})
            return record

        workspace = work_root / self.spec.flow.id / job.id / run_id
        workspace.mkdir(parents=True, exist_ok=True)
        store.record_job(run_id, {"id": job.id, "status": RUNNING, "position": position, "started_at": started})
        job_log.info("job.started", extra={"workspace": str(workspace)})

        steps_view = NamedMapping("steps")
        job_outputs: dict[str, Any] = {}
        job_view = named("job", {"id": job.id, "outputs": job_outputs})
        base_context = {
            "env": None,
            "steps": steps_view,
            "job": job_view,
            "jobs": jobs_view,
            "run_id": run_id,
            "flow_id": self.spec.flow.id,
            "workspace": str(workspace),
        }
        record.status = SUCCESS
        halted_by: str | None = None
        for step_position, step in enumerate(job.steps):
            if halted_by is not None:
                record.steps.append(StepRecord(step.id, step.type, halted_by))
                continue
            location_base = ("jobs", job_index, "steps", step_position)
            step_record, raw_outputs = self._run_step(
                step, step_position, location_base, base_context, workspace, store, run_id, job.id, previous, connectors, locks, job_log
            )
            record.steps.append(step_record)
            steps_view[step.id] = named(f"steps.{step.id}", {"status": step_record.status, "outputs": raw_outputs})
            if step_record.status == FAILED:
                record.status, halted_by = FAILED, BLOCKED
                record.reason = f"step {step.id!r} failed"
                continue
            try:
                promoted = self._promote(step, location_base, base_context, raw_outputs)
            except AetherflowError as exc:
                self._user_error = self._user_error or isinstance(exc, UserError)
                step_record.status, step_record.error = FAILED, self.scrubber.scrub(exc.describe())
                store.record_step(run_id, job.id, {**step_record.to_dict(), "position": step_position})
                job_log.error("step.failed", extra={"step_id": step.id, "step_type": step.type, "error": step_record.error})
                record.status, halted_by, record.reason = FAILED, BLOCKED, f"outputs of step {step.id!r} failed"
                continue
            job_outputs.update(promoted)
            job_view["outputs"] = named("job.outputs", job_outputs)
            if step_record.status == SKIPPED and step.on_no_data == "skip_job":
                record.status, halted_by = SKIPPED, SKIPPED
                record.reason = f"step {step.id!r} found no data"
        record.outputs = self.scrubber.scrub_data(job_outputs)
        record.duration_ms = _ms(time.time() - started)
        store.record_job(
            run_id,
            {
                "id": job.id,
                "status": record.status,
                "outputs": record.outputs,
                "error": record.reason if record.status == FAILED else None,
                "position": position,
                "started_at": started,
                "ended_at": time.time(),
                "duration_ms": record.duration_ms,
            },
        )
        level = job_log.error if record.status == FAILED else job_log.info
        level("job.finished", extra={"status": record.status, "duration_ms": record.duration_ms, "reason": record.reason})
        return record

    def _promote(self, step: StepSpec, location_base: tuple, base_context: dict, raw_outputs: dict) -> dict[str, Any]:
        if not step.outputs:
            return {}
        context = {**base_context, "env": EnvView(self.env), "result": named("result", raw_outputs)}
        index = self.prepared.document.index
        return ENGINE.render_tree(step.outputs, context, lambda path: index.locate(location_base + ("outputs",) + path))

    # -- steps --------------------------------------------------------------------------

    def _run_step(self, step, step_position, location_base, base_context, workspace, store, run_id, job_id, previous, connectors, locks, job_log):
        step_log = job_log.bind(step_id=step.id, step_type=step.type)
        prior = previous.get((job_id, step.id))
        if prior is not None:
            step_log.info("step.reused", extra={"status": prior["status"], "attempts": prior["attempts"]})
            return (
                StepRecord(step.id, step.type, prior["status"], prior["attempts"], prior["duration_ms"] or 0, prior["outputs"], None, True),
                prior["outputs"],
            )
        record = StepRecord(step.id, step.type, RUNNING)
        started = time.time()
        store.record_step(run_id, job_id, {**record.to_dict(), "position": step_position, "started_at": started})
        step_log.info("step.started")
        max_attempts = step.retry.max_attempts if step.retry else 1
        raw_outputs: dict[str, Any] = {}
        reason: str | None = None
        error: BaseException | None = None
        for attempt in range(1, max_attempts + 1):
            record.attempts = attempt
            try:
                result = self._attempt(step, location_base, base_context, workspace, run_id, job_id, connectors, locks, step_log, attempt)
                raw_outputs = dict(result.outputs)
                record.status, reason = result.status, result.reason
                error = None
                break
            except (KeyboardInterrupt, Interrupted) as exc:
                record.status, record.error = FAILED, "interrupted"
                record.duration_ms = _ms(time.time() - started)
                store.record_step(run_id, job_id, {**record.to_dict(), "position": step_position, "started_at": started, "ended_at": time.time()})
                step_log.error("step.interrupted", extra={"status": FAILED, "attempt": attempt})
                raise exc
            except Exception as exc:  # noqa: BLE001 - a step failure is an outcome, not a crash
                error = exc
                final = attempt == max_attempts or not retryable(exc)
                extra = {"attempt": attempt, "max_attempts": max_attempts, "error": self.scrubber.scrub(_describe_error(exc))}
                if step_log.isEnabledFor(10) and not isinstance(exc, AetherflowError):
                    extra["traceback"] = self.scrubber.scrub("".join(traceback.format_exception(exc)))
                if final:
                    break
                delay = step.retry.delay_seconds * (step.retry.backoff ** (attempt - 1))
                step_log.warning("step.attempt_failed", extra={**extra, "retry_in_seconds": round(delay, 3)})
                if self.cancel.wait(delay):
                    raise Interrupted("interrupted during retry delay") from None
        record.duration_ms = _ms(time.time() - started)
        if error is not None:
            self._user_error = self._user_error or isinstance(error, UserError)
            record.status, record.error = FAILED, self.scrubber.scrub(_describe_error(error))
            fields = {"status": FAILED, "attempts": record.attempts, "duration_ms": record.duration_ms, "error": record.error}
            if step_log.isEnabledFor(10) and not isinstance(error, UserError):
                fields["traceback"] = self.scrubber.scrub("".join(traceback.format_exception(error)))
            step_log.error("step.failed", extra=fields)
        else:
            record.outputs = self.scrubber.scrub_data(raw_outputs)
            fields = {"status": record.status, "attempts": record.attempts, "duration_ms": record.duration_ms}
            if reason:
                fields["reason"] = str(reason)
            step_log.info("step.finished", extra=fields)
        store.record_step(run_id, job_id, {**record.to_dict(), "position": step_position, "started_at": started, "ended_at": time.time()})
        return record, raw_outputs

    def _attempt(self, step, location_base, base_context, workspace, run_id, job_id, connectors, locks, step_log, attempt) -> StepResult:
        cls = get_step(step.type)
        index = self.prepared.document.index
        context = {**base_context, "env": EnvView(self.env)}
        rendered = ENGINE.render_tree(step.inputs, context, lambda path: index.locate(location_base + ("inputs",) + path))
        inputs = cls.bind_inputs(rendered)
        ctx = StepContext(
            env=self.env,
            connectors=connectors,
            flow_id=self.spec.flow.id,
            run_id=run_id,
            job_id=job_id,
            step_id=step.id,
            step_type=step.type,
            workspace=workspace,
            logger=step_log,
            scrubber=self.scrubber,
            locks=locks,
            attempt=attempt,
            progress_factory=self.progress_factory,
            cancel_event=self.cancel,
        )
        result = cls().run(ctx, inputs)
        if result is None:
            result = StepResult(Status.SUCCESS, {})
        if not isinstance(result, StepResult):
            raise TypeError(f"step type {step.type!r} returned {type(result).__name__}, not StepResult")
        if result.status not in STEP_RESULT_STATUSES:
            raise ValueError(f"step type {step.type!r} returned status {result.status!r}")
        return result
