"""A whole run: :class:`Runner` starts or resumes it, holds the flow lock, runs the
plan's jobs, and records the final status whatever happens."""

from __future__ import annotations

import os
import queue
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

from ..cancel import CancelToken
from ..connectors.manager import ConnectorManager
from ..context import no_progress
from ..errors import AetherflowError, Interrupted, LockHeldError, PersistError, Problem, SelectionError, SpecError, UserError, VariableError
from ..locks import LockManager, process_alive, stop_leftover_groups
from ..logs import get_logger
from ..prepare import PreparedFlow, raise_resolution_errors
from ..spec.checks import parallel_reads
from ..spec.models import DEFAULT_WORK_ROOT, ID_HINT, JobSpec, is_name
from ..state import flow_state_location
from ..state.base import StateStore
from ..state.rows import RunRow, StepRunRow
from ..status import DONE_OK, Status
from ..telemetry import check_available, export_run, telemetry_settings
from ..templating import ENGINE, EnvView, named
from .executor import JobExecutor, ThreadExecutor
from .handlers import RunOutcome, handler_events, outcome_of, run_handlers
from .persist import PersistedValues
from .records import JobRecord, RunResult, ms
from .schedule import Scheduler
from .selection import JobSelection
from .session import RunSession


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


@contextmanager
def _signals_relayed(on_signal: Callable[[int, int], None]) -> Iterator[None]:
    """SIGINT/SIGTERM call ``on_signal(signum, count)`` on a relay thread.

    The handler itself only queues the signal (a :class:`queue.SimpleQueue` may be used
    from a signal handler): nothing is raised into whatever the main thread was doing,
    and the cancellation callbacks (stopping processes, cancelling queries) run on the
    relay thread, outside any lock the main thread might hold.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: queue.SimpleQueue = queue.SimpleQueue()

    def relay() -> None:
        count = 0
        while (signum := pending.get()) is not None:
            count += 1
            on_signal(signum, count)

    thread = threading.Thread(target=relay, name="aetherflow-signals", daemon=True)
    thread.start()
    previous = {sig: signal.signal(sig, lambda signum, frame: pending.put(signum)) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        pending.put(None)
        thread.join(timeout=5)


def _close_running(store: StateStore, run_id: str, reason: str, now: float) -> None:
    """The run's job and step rows still RUNNING end FAILED with ``reason``."""
    for job in store.job_runs(run_id):
        if job.status == Status.RUNNING:
            store.record_job(replace(job, status=Status.FAILED, ended_at=now, error=reason))
    for step in store.step_runs(run_id):
        if step.status == Status.RUNNING:
            store.record_step(replace(step, status=Status.FAILED, ended_at=now, error=reason))


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
    """One invocation of a flow's run, from the checks of what was asked to the handlers.

    Its phases, in order: the job selection (a usage error stops here, with nothing
    recorded); the state store, the run to resume and its stored variables (a variable
    given again with another value is a usage error too); the resources (an unknown
    profile or an unresolved resource fails the run before it is recorded); the run's
    record, the flow lock and the jobs; the final status, written with the values the
    run's steps persisted when it succeeded; then the handlers (:mod:`.handlers`), which
    also run after a failure before any job, and the workspace clean-up.
    """

    def __init__(
        self,
        prepared: PreparedFlow,
        *,
        run_id: str | None = None,
        resume: bool = False,
        jobs: list[str] | None = None,
        only: list[str] | None = None,
        exclude: list[str] | None = None,
        progress_factory: Callable = no_progress,
        store: StateStore | None = None,
        executor: Callable[[RunSession], JobExecutor] = ThreadExecutor,
    ):
        if run_id is not None and not is_name(run_id):
            raise UserError(f"invalid run id {run_id!r}", hint=ID_HINT)
        self.prepared = prepared
        self.spec = prepared.document.spec
        self.requested_run_id = run_id
        self.resume_latest = resume
        self.selection = JobSelection(tuple(jobs or ()), tuple(only or ()), tuple(exclude or ()))
        self.progress_factory = progress_factory
        #: the run's cancel token: SIGINT/SIGTERM cancel it; so may the caller (another thread)
        self.cancel = CancelToken()
        self.make_executor = executor
        self.max_parallel = prepared.settings.max_parallel or self.spec.flow.max_parallel
        self._store = store
        #: the run's id: the one asked for or resumed once known, else a new one
        self.run_id = run_id or new_run_id()
        self._recorded = False  # the run is in the state store (and must end with a status there)
        self._interrupted_by: str | None = None  # the signal that cancelled the run
        self._scheduler: Scheduler | None = None

    def _render_meta(self, value: Any, *path: str | int) -> Any:
        context = {"env": EnvView(self.prepared.env), "vars": named("vars", self.prepared.variables.values)}
        return ENGINE.render(value, context, self.prepared.document.locate(*path))

    def _open_store(self) -> StateStore:
        if self._store is not None:
            return self._store
        return flow_state_location(self.prepared.document, self.prepared.env, self.prepared.settings.state_root, self.prepared.scrubber).open()

    def _work_root(self) -> Path:
        root = self._render_meta(self.spec.flow.workspace.root, "flow", "workspace", "root")
        return Path(str(root)).expanduser()

    # -- run ------------------------------------------------------------------------------

    def _check_parallel_reads(self) -> None:
        """``validate`` checks the flow's own max_parallel; one raised from outside is checked here."""
        if self.max_parallel <= 1 or self.spec.flow.max_parallel > 1:
            return
        source = "--max-parallel / AETHERFLOW_MAX_PARALLEL"
        problems = [
            Problem(self.prepared.document.index.locate(path), message, hint)
            for path, message, hint in parallel_reads(self.spec, self.max_parallel, source)
        ]
        if problems:
            raise SpecError(problems)

    def run(self) -> RunResult:
        self._telemetry = check_available(telemetry_settings(self.prepared.env))
        started = time.time()
        plan = self.selection.plan(self.spec.jobs)
        warnings: list[str] = []
        store: StateStore | None = None
        try:
            try:
                store = self._open_store()
                return self._run(store, plan, started, warnings)
            except (Interrupted, VariableError, SelectionError) as exc:
                if store is not None and self._recorded:
                    self._close_failed(store, self.run_id, started, exc)
                    self._recorded = False
                raise
            except AetherflowError as exc:
                exc.result = self._failed_before_jobs(exc, store, started, warnings)
                raise
            except BaseException as exc:
                # A failure that escaped the jobs (a bug, an early signal): the run and its
                # running job and step still end FAILED, never left RUNNING.
                if store is not None and self._recorded:
                    self._close_failed(store, self.run_id, started, exc)
                    self._recorded = False
                raise
        finally:
            if store is not None and self._store is None:
                store.close()

    def _run(self, store: StateStore, plan: list[JobSpec], started: float, warnings: list[str]) -> RunResult:
        flow_id = self.spec.flow.id
        existing = self._find_run(store, flow_id, warnings)
        if existing is not None:
            self._resume_variables(existing, warnings)
        self.prepared.variables.require()
        upstream = self._upstream_records(store, plan)
        raise_resolution_errors(self.prepared)
        self._check_parallel_reads()
        work_root = self._work_root()
        previous = self._record_run(store, flow_id, existing)
        run_id = self.run_id
        log = get_logger(flow_id=flow_id, run_id=run_id)
        for warning in warnings:
            log.warning("run.warning", extra={"detail": warning})
        session = self._session(store, work_root, log, previous=previous, connectors=self.prepared.resources)
        for record in upstream:
            log.info("job.upstream", extra={"job_id": record.id, "detail": record.reason})
            session.publish(record)
        log.info("run.started", extra={"resumed": bool(previous), "fingerprint": self.prepared.fingerprint, "max_parallel": self.max_parallel})
        records: list[JobRecord] = []
        interrupted: Interrupted | None = None
        with _signals_relayed(self._on_signal):
            try:
                with self._flow_lock(session) as acquired:
                    if acquired:
                        records = self._run_jobs(session, plan)
                    else:
                        records = [JobRecord(job.id, Status.SKIPPED, reason="flow lock held") for job in plan]
            except Interrupted as exc:
                interrupted = exc
            finally:
                session.locks.release_all()
                session.connectors.close()
        if interrupted is None and self._interrupted_by is not None:
            interrupted = Interrupted(f"interrupted by {self._interrupted_by}")
        status = _run_status(records, interrupted)
        duration_ms = ms(time.time() - started)
        persisted, status = self._finish(session, status, duration_ms)
        log.info("run.finished", extra={"status": status, "duration_ms": duration_ms})
        exit_code = 0 if status in DONE_OK else (2 if any(r.user_error for r in records) else 1)
        result = RunResult(
            flow_id, run_id, status, duration_ms, records, exit_code, self.prepared.fingerprint, bool(previous), warnings,
            variables=self.prepared.variables.redacted(), persisted=persisted, started_at=started,
        )
        if self._telemetry is not None:
            export_run(result, self._telemetry, self.prepared.scrubber, profile=self.prepared.settings.profile)
        if interrupted is not None:
            interrupted.result = result
            raise interrupted
        result.handlers = self._handlers(session, outcome_of(run_id, status, records, duration_ms, self.prepared.scrubber))
        self._cleanup(session, [r.id for r in records], status)
        return result

    def _close_failed(self, store: StateStore, run_id: str, started: float, exc: BaseException) -> None:
        """A failure escaped the jobs (a template of the flow lock, or a bug): the run,
        and its job and step that were running, still end FAILED in the state, never
        left RUNNING; the error goes on up."""
        reason = self.prepared.scrubber.scrub(_describe(exc))
        log = get_logger(flow_id=self.spec.flow.id, run_id=run_id)
        try:
            now = time.time()
            _close_running(store, run_id, reason, now)
            store.finish_run(run_id, Status.FAILED, now, ms(now - started))
        except Exception as state_error:  # noqa: BLE001 - the first error is the one to report
            log.error("run.finish_failed", extra={"error": self.prepared.scrubber.scrub(_describe(state_error))})
        log.error("run.finished", extra={"status": Status.FAILED, "reason": reason})

    def _run_jobs(self, session: RunSession, plan: list[JobSpec]) -> list[JobRecord]:
        """The plan's jobs, up to ``max_parallel`` at once; their records in plan order."""
        self._scheduler = Scheduler(session, plan, self.make_executor(session), self.max_parallel)
        try:
            return self._scheduler.run()
        finally:
            self._scheduler = None

    def _on_signal(self, signum: int, count: int) -> None:
        """First SIGINT/SIGTERM: cancel the run (running steps stop, their jobs are
        recorded FAILED). Another one: stop waiting for steps that do not stop."""
        name = signal.Signals(signum).name
        if count == 1:
            self._interrupted_by = name
            self.cancel.cancel(f"interrupted by {name}")
            return
        scheduler = self._scheduler
        if scheduler is not None:
            scheduler.abandon()

    def _session(self, store: StateStore | None, work_root: Path, log, *, previous: dict, connectors: list) -> RunSession:
        settings = self.prepared.settings
        return RunSession(
            prepared=self.prepared,
            run_id=self.run_id,
            store=store,
            previous=previous,
            work_root=work_root,
            connectors=ConnectorManager({r.name: r for r in connectors}, scope=settings.connector_cache, disabled=settings.connector_cache_disabled),
            locks=LockManager(store, self.run_id, log),
            log=log,
            cancel=self.cancel,
            progress_factory=self.progress_factory,
            variables=self.prepared.variables,
            store_values={row.name: row.value for row in store.persisted(self.spec.flow.id)} if store is not None else {},
            persisted=PersistedValues(self.prepared.scrubber),
        )

    def _finish(self, session: RunSession, status: Status, duration_ms: int) -> tuple[dict[str, Any], Status]:
        """Record the final status, with the persisted values when the run succeeded."""
        now = time.time()
        rows = []
        if status in DONE_OK:
            try:
                rows = session.persisted.rows(self.spec.flow.id, self.run_id, now)
            except PersistError as exc:
                session.log.error("run.persist_refused", extra={"error": self.prepared.scrubber.scrub(exc.describe())})
                status = Status.FAILED
        session.store.finish_run(self.run_id, status, now, duration_ms, persist=rows)
        self._recorded = False
        if rows:
            session.log.info("run.persisted", extra={"names": [row.name for row in rows]})
        return {row.name: row.value for row in rows}, status

    def _handlers(self, session: RunSession, outcome: RunOutcome) -> list[JobRecord]:
        if not handler_events(self.spec, outcome.status):
            return []
        # The jobs' connectors are closed; handlers get their own, closed when they end.
        session.connectors = ConnectorManager(
            {r.name: r for r in self.prepared.handler_resources()},
            scope=self.prepared.settings.connector_cache,
            disabled=self.prepared.settings.connector_cache_disabled,
        )
        try:
            return run_handlers(session, outcome)
        finally:
            session.locks.release_all()
            session.connectors.close()

    def _failed_before_jobs(self, exc: AetherflowError, store: StateStore | None, started: float, warnings: list[str]) -> RunResult:
        """The run failed before any job ran: record that if it was recorded, run the
        handlers, and return the result the error carries (``exc.result``)."""
        scrubber = self.prepared.scrubber
        flow_id, duration_ms = self.spec.flow.id, ms(time.time() - started)
        error = scrubber.scrub(exc.describe())
        log = get_logger(flow_id=flow_id, run_id=self.run_id)
        if self._recorded and store is not None:
            _close_running(store, self.run_id, error, time.time())
            store.finish_run(self.run_id, Status.FAILED, time.time(), duration_ms)
            self._recorded = False
        log.error("run.finished", extra={"status": Status.FAILED, "reason": error})
        result = RunResult(
            flow_id, self.run_id, Status.FAILED, duration_ms, [], exc.exit_code, self.prepared.fingerprint, False, warnings,
            variables=self.prepared.variables.redacted(), error=error,
        )
        if handler_events(self.spec, Status.FAILED):
            try:
                work_root = self._work_root()
            except AetherflowError:
                work_root = Path(str(ENGINE.render(DEFAULT_WORK_ROOT, {"env": EnvView(self.prepared.env)}))).expanduser()
            session = self._session(store, work_root, log, previous={}, connectors=[])
            outcome = RunOutcome(Status.FAILED, self.run_id, [], [error], duration_ms)
            result.handlers = self._handlers(session, outcome)
        return result

    # -- the run's record -----------------------------------------------------------------

    def _find_run(self, store: StateStore, flow_id: str, warnings: list[str]) -> RunRow | None:
        """The run to resume (``--run-id`` of an existing run, or ``--resume``), else None."""
        run_id = self.requested_run_id
        if run_id is None and self.resume_latest:
            run_id = store.latest_unfinished_run(flow_id)
            if run_id is None:
                raise UserError(
                    f"no unfinished run of flow {flow_id!r} to resume",
                    hint="run without --resume to start a new run; `aetherflow runs list FLOW` shows its runs",
                )
        existing = store.get_run(run_id) if run_id else None
        if existing is None:
            return None
        self.run_id = run_id
        if existing.flow_id != flow_id:
            raise UserError(
                f"run {run_id!r} belongs to flow {existing.flow_id!r}, not {flow_id!r}",
                hint="pick a new --run-id, or run the flow that owns it",
            )
        if existing.status == Status.RUNNING and existing.host and existing.pid and int(existing.pid) != os.getpid():
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
        if existing.flow_sha256 and existing.flow_sha256 != self.prepared.document.sha256:
            warnings.append(f"the flow file changed since run {run_id} started; finished steps are still reused")
        return existing

    def _variables_salt(self) -> str:
        return f"aetherflow:{self.spec.flow.id}:{self.run_id}:vars"

    def _resume_variables(self, existing: RunRow, warnings: list[str]) -> None:
        """A resumed run takes back its stored variables (resources resolve with them)."""
        variables, notes = self.prepared.variables.resumed(existing.vars or {}, salt=self._variables_salt(), run_id=existing.run_id)
        warnings.extend(notes)
        self.prepared = self.prepared.with_variables(variables)

    def _upstream_records(self, store: StateStore, plan: list[JobSpec]) -> list[JobRecord]:
        """Unselected jobs the selected ones depend on, as their newest successful run left them."""
        upstream = self.selection.upstream(self.spec.jobs, plan)
        if not upstream:
            return []
        found = store.latest_successful_jobs(self.spec.flow.id, upstream)
        missing = [job_id for job_id in upstream if job_id not in found]
        if missing:
            raise self.selection.missing_upstream_error(missing, self.spec.flow.id)
        return [
            JobRecord(job_id, Status.SUCCESS, outputs=found[job_id].outputs, reason=f"outputs from run {found[job_id].run_id}")
            for job_id in upstream
        ]

    def _record_run(self, store: StateStore, flow_id: str, existing: RunRow | None) -> dict[tuple[str, str], StepRunRow]:
        """Record a new run, or reopen the one to resume; its finished steps by (job, step)."""
        document = self.prepared.document
        fingerprint, host, pid = self.prepared.fingerprint, socket.gethostname(), os.getpid()
        variables = self.prepared.variables.stored(salt=self._variables_salt())
        # Marked before the write: a signal landing while it completes must still close the run.
        self._recorded = True
        if existing is None:
            store.create_run(
                RunRow(
                    run_id=self.run_id,
                    flow_id=flow_id,
                    status=Status.RUNNING,
                    started_at=time.time(),
                    profile=self.prepared.settings.profile,
                    flow_path=str(Path(document.path).resolve()) if document.path else None,
                    flow_sha256=document.sha256,
                    fingerprint=fingerprint,
                    host=host,
                    pid=pid,
                    vars=variables,
                )
            )
            return {}
        store.reopen_run(self.run_id, fingerprint=fingerprint, host=host, pid=pid)
        if variables != (existing.vars or {}):
            store.set_run_vars(self.run_id, variables)
        return {(row.job_id, row.step_id): row for row in store.step_runs(self.run_id) if row.status in DONE_OK}

    @contextmanager
    def _flow_lock(self, session: RunSession) -> Iterator[bool]:
        lock = self.spec.flow.lock
        if lock is None:
            yield True
            return
        key = str(self._render_meta(lock.key, "flow", "lock", "key"))
        if not session.locks.acquire(key, lock.ttl_seconds, lock.wait_seconds, self.cancel.event, shared=True):
            if self.cancel.cancelled:
                raise Interrupted(self.cancel.reason or "interrupted")
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
