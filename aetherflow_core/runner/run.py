"""A whole run: :class:`Runner` starts or resumes it, holds the flow lock, runs the
plan's jobs, and records the final status whatever happens."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..connectors.manager import ConnectorManager
from ..context import no_progress
from ..errors import AetherflowError, Interrupted, LockHeldError, UserError
from ..locks import LockManager, process_alive, stop_leftover_groups
from ..logs import get_logger
from ..prepare import PreparedFlow, raise_resolution_errors
from ..spec.models import ID_HINT, JobSpec, is_name
from ..state import flow_state_location
from ..state.base import StateStore
from ..state.rows import RunRow, StepRunRow
from ..status import DONE_OK, Status
from ..telemetry import check_available, export_run, telemetry_settings
from ..templating import ENGINE, EnvView
from .job import JobRun
from .plan import plan_jobs
from .records import JobRecord, RunResult, ms
from .session import RunSession


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


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


def _describe(exc: BaseException) -> str:
    if isinstance(exc, AetherflowError):
        return exc.describe()
    if not isinstance(exc, Exception):  # KeyboardInterrupt, or the command line's signal exit
        return str(exc) or "interrupted"
    return f"internal error: {type(exc).__name__}: {exc}"


def _run_status(records: list[JobRecord], interrupted: BaseException | None) -> Status:
    if interrupted is not None or any(r.status in (Status.FAILED, Status.BLOCKED) for r in records):
        return Status.FAILED
    if records and all(r.status == Status.SKIPPED for r in records):
        return Status.SKIPPED
    return Status.SUCCESS


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
        if run_id is not None and not is_name(run_id):
            raise UserError(f"invalid run id {run_id!r}", hint=ID_HINT)
        self.prepared = prepared
        self.spec = prepared.document.spec
        self.requested_run_id = run_id
        self.resume_latest = resume
        self.selected_jobs = jobs
        self.progress_factory = progress_factory
        self.cancel = threading.Event()
        self._store = store

    def _render_meta(self, value: Any, *path: str | int) -> Any:
        return ENGINE.render(value, {"env": EnvView(self.prepared.env)}, self.prepared.document.locate(*path))

    def _open_store(self) -> StateStore:
        if self._store is not None:
            return self._store
        return flow_state_location(self.prepared.document, self.prepared.env, self.prepared.settings.state_root, self.prepared.scrubber).open()

    def _work_root(self) -> Path:
        root = self._render_meta(self.spec.flow.workspace.root, "flow", "workspace", "root")
        return Path(str(root)).expanduser()

    # -- run ------------------------------------------------------------------------------

    def run(self) -> RunResult:
        raise_resolution_errors(self.prepared)
        telemetry = check_available(telemetry_settings(self.prepared.env))
        plan = plan_jobs(self.spec.jobs, self.selected_jobs)
        work_root = self._work_root()
        store = self._open_store()
        flow_id = self.spec.flow.id
        warnings: list[str] = []
        run_id: str | None = None
        finished = False
        started = time.time()
        try:
            run_id, previous = self._start_run(store, flow_id, warnings)
            log = get_logger(flow_id=flow_id, run_id=run_id)
            for warning in warnings:
                log.warning("run.warning", extra={"detail": warning})
            session = RunSession(
                prepared=self.prepared,
                run_id=run_id,
                store=store,
                previous=previous,
                work_root=work_root,
                connectors=ConnectorManager(
                    {r.name: r for r in self.prepared.resources},
                    scope=self.prepared.settings.connector_cache,
                    disabled=self.prepared.settings.connector_cache_disabled,
                ),
                locks=LockManager(store, run_id, log),
                log=log,
                cancel=self.cancel,
                progress_factory=self.progress_factory,
            )
            log.info("run.started", extra={"resumed": bool(previous), "fingerprint": self.prepared.fingerprint})
            records: list[JobRecord] = []
            interrupted: Interrupted | None = None
            with _signals_raise_interrupted(self.cancel) as disarm:
                try:
                    with self._flow_lock(session) as acquired:
                        if acquired:
                            self._run_jobs(session, plan, records)
                        else:
                            records = [JobRecord(job.id, Status.SKIPPED, reason="flow lock held") for job in plan]
                except (KeyboardInterrupt, Interrupted) as exc:
                    interrupted = exc if isinstance(exc, Interrupted) else Interrupted("interrupted by SIGINT")
                    self.cancel.set()
                except LockHeldError:
                    # Refused before any job ran: the run is over, not left RUNNING for --resume.
                    store.finish_run(run_id, Status.FAILED, time.time(), ms(time.time() - started))
                    finished = True
                    log.error("run.finished", extra={"status": Status.FAILED, "reason": "flow lock held"})
                    raise
                finally:
                    disarm()
                    session.locks.release_all()
                    session.connectors.close()
            status = _run_status(records, interrupted)
            duration_ms = ms(time.time() - started)
            store.finish_run(run_id, status, time.time(), duration_ms)
            finished = True
            if interrupted is None:
                self._cleanup(session, [r.id for r in records], status)
            log.info("run.finished", extra={"status": status, "duration_ms": duration_ms})
            exit_code = 0 if status in DONE_OK else (2 if any(r.user_error for r in records) else 1)
            result = RunResult(
                flow_id, run_id, status, duration_ms, records, exit_code, self.prepared.fingerprint, bool(previous), warnings, started_at=started
            )
            if telemetry is not None:
                export_run(result, telemetry, self.prepared.scrubber, profile=self.prepared.settings.profile)
            if interrupted is not None:
                interrupted.result = result
                raise interrupted
            return result
        except BaseException as exc:
            if run_id is not None and not finished:
                self._close_failed(store, run_id, started, exc)
            raise
        finally:
            if self._store is None:
                store.close()

    def _close_failed(self, store: StateStore, run_id: str, started: float, exc: BaseException) -> None:
        """A failure escaped the jobs (a template of the flow lock, or a bug): the run,
        and its job and step that were running, still end FAILED in the state, never
        left RUNNING; the error goes on up."""
        reason = self.prepared.scrubber.scrub(_describe(exc))
        log = get_logger(flow_id=self.spec.flow.id, run_id=run_id)
        try:
            now = time.time()
            for job in store.job_runs(run_id):
                if job.status == Status.RUNNING:
                    store.record_job(replace(job, status=Status.FAILED, ended_at=now, error=reason))
            for step in store.step_runs(run_id):
                if step.status == Status.RUNNING:
                    store.record_step(replace(step, status=Status.FAILED, ended_at=now, error=reason))
            store.finish_run(run_id, Status.FAILED, now, ms(now - started))
        except Exception as state_error:  # noqa: BLE001 - the first error is the one to report
            log.error("run.finish_failed", extra={"error": self.prepared.scrubber.scrub(_describe(state_error))})
        log.error("run.finished", extra={"status": Status.FAILED, "reason": reason})

    def _run_jobs(self, session: RunSession, plan: list[JobSpec], records: list[JobRecord]) -> None:
        """The plan's jobs one after another; ``records`` grows as each one finishes."""
        for position, job in enumerate(plan):
            record = JobRun(session, job, position).run()
            session.publish(record)
            records.append(record)

    def _start_run(self, store: StateStore, flow_id: str, warnings: list[str]) -> tuple[str, dict[tuple[str, str], StepRunRow]]:
        """Record a new run, or reopen the one to resume; its finished steps by (job, step)."""
        document = self.prepared.document
        run_id = self.requested_run_id
        if run_id is None and self.resume_latest:
            run_id = store.latest_unfinished_run(flow_id)
            if run_id is None:
                raise UserError(
                    f"no unfinished run of flow {flow_id!r} to resume",
                    hint="run without --resume to start a new run; `aetherflow runs list FLOW` shows its runs",
                )
        existing = store.get_run(run_id) if run_id else None
        fingerprint, host, pid = self.prepared.fingerprint, socket.gethostname(), os.getpid()
        if existing is None:
            run_id = run_id or new_run_id()
            store.create_run(
                RunRow(
                    run_id=run_id,
                    flow_id=flow_id,
                    status=Status.RUNNING,
                    started_at=time.time(),
                    profile=self.prepared.settings.profile,
                    flow_path=str(Path(document.path).resolve()) if document.path else None,
                    flow_sha256=document.sha256,
                    fingerprint=fingerprint,
                    host=host,
                    pid=pid,
                )
            )
            return run_id, {}
        if existing.flow_id != flow_id:
            raise UserError(
                f"run {run_id!r} belongs to flow {existing.flow_id!r}, not {flow_id!r}",
                hint="pick a new --run-id, or run the flow that owns it",
            )
        if existing.status == Status.RUNNING and existing.host and existing.pid and int(existing.pid) != pid:
            alive = process_alive(existing.host, int(existing.pid))
            if alive:
                raise UserError(
                    f"run {run_id!r} is still running (pid {existing.pid} on {existing.host})",
                    hint="wait for it to finish, or stop it; a run whose process died can be resumed",
                )
            if alive is None:
                warnings.append(
                    f"run {run_id} is marked RUNNING by {existing.host} (pid {existing.pid}), which this host "
                    "cannot check; resuming it anyway"
                )
        # Its runner is gone: what its steps' commands left running stops before anything runs again.
        warnings.extend(stop_leftover_groups(store, run_id))
        if existing.flow_sha256 and existing.flow_sha256 != document.sha256:
            warnings.append(f"the flow file changed since run {run_id} started; finished steps are still reused")
        store.reopen_run(run_id, fingerprint=fingerprint, host=host, pid=pid)
        previous = {(row.job_id, row.step_id): row for row in store.step_runs(run_id) if row.status in DONE_OK}
        return run_id, previous

    @contextmanager
    def _flow_lock(self, session: RunSession) -> Iterator[bool]:
        lock = self.spec.flow.lock
        if lock is None:
            yield True
            return
        key = str(self._render_meta(lock.key, "flow", "lock", "key"))
        if not session.locks.acquire(key, lock.ttl_seconds, lock.wait_seconds, self.cancel):
            if lock.on_locked == "skip":
                session.log.warning("run.skipped", extra={"detail": f"flow lock {key!r} is held by another run"})
                yield False
                return
            raise LockHeldError(
                f"flow lock {key!r} is held by {session.locks.holder(key)}", hint="on_locked: skip makes this a skipped run instead"
            )
        try:
            yield True
        finally:
            session.locks.release(key)

    def _cleanup(self, session: RunSession, job_ids: list[str], status: Status) -> None:
        policy = self.spec.flow.workspace.cleanup_policy
        if policy == "never" or (policy == "on_success" and status not in DONE_OK):
            return
        for job_id in job_ids:
            shutil.rmtree(session.workspace(job_id), ignore_errors=True)
