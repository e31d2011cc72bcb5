"""Running a flow inside the caller's process: :func:`run_flow`, for orchestrators.

An Airflow task, a Dagster op or any Python program calls ``run_flow`` instead of the
command line and gets back what ``aetherflow run --json`` prints, as typed objects. The
run goes through the same pipeline as ``aetherflow run`` (environment, settings,
plugins, profiles, resources, runner, state), and leaves the process as it found it:
the plugins it loaded are forgotten, the ``aetherflow`` logger gets its own handlers,
level and propagation back, and the signal handlers the runner installs for the run are
restored when it ends.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import IO, Any

from .errors import Interrupted, RunFailed
from .status import Status


@dataclass(frozen=True)
class StepReport:
    """One step of a run, as in ``run --json``."""

    id: str
    type: str
    status: str
    attempts: int
    duration_ms: int
    outputs: dict[str, Any]
    error: str | None


@dataclass(frozen=True)
class JobReport:
    """One job of a run, as in ``run --json``."""

    id: str
    status: str
    outputs: dict[str, Any]
    steps: tuple[StepReport, ...]


@dataclass(frozen=True)
class RunReport:
    """A finished run: the ``run --json`` document as typed objects (``to_dict()`` gives it back)."""

    flow_id: str
    run_id: str
    status: str
    duration_ms: int
    jobs: tuple[JobReport, ...]
    error: str | None = None  # why the run failed before any job ran
    vars: dict[str, Any] = field(default_factory=dict)  # the run variables, secret ones masked
    persisted: dict[str, Any] = field(default_factory=dict)  # values this run wrote to the store
    handlers: tuple[JobReport, ...] = ()  # on_failure / on_success / always, as they ran

    @property
    def ok(self) -> bool:
        """SUCCESS or SKIPPED: what exit code 0 means on the command line."""
        return self.status in (Status.SUCCESS, Status.SKIPPED)

    def job(self, job_id: str) -> JobReport:
        for job in self.jobs:
            if job.id == job_id:
                return job
        raise KeyError(job_id)

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        for key in ("jobs", "handlers"):
            for job in document[key]:
                job["steps"] = list(job["steps"])
            document[key] = list(document[key])
        return document

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> RunReport:
        def step(data: Mapping[str, Any]) -> StepReport:
            return StepReport(**{f.name: data[f.name] for f in fields(StepReport)})

        def jobs(key: str) -> tuple[JobReport, ...]:
            return tuple(JobReport(job["id"], job["status"], job["outputs"], tuple(step(s) for s in job["steps"])) for job in document.get(key) or ())

        return cls(
            document["flow_id"],
            document["run_id"],
            document["status"],
            document["duration_ms"],
            jobs("jobs"),
            document.get("error"),
            dict(document.get("vars") or {}),
            dict(document.get("persisted") or {}),
            jobs("handlers"),
        )



def run_flow(
    path: str | os.PathLike,
    *,
    profile: str | None = None,
    run_id: str | None = None,
    resume: bool = False,
    jobs: Sequence[str] | None = None,
    vars: Mapping[str, Any] | None = None,
    profiles_file: str | os.PathLike | None = None,
    env_files: Sequence[str | os.PathLike] = (),
    env: Mapping[str, str] | None = None,
    check: bool = True,
    log_stream: IO[str] | None = None,
    log_format: str | None = None,
    log_level: str | None = None,
) -> RunReport:
    """Run the flow at ``path`` in this process and return its report.

    ``profile``, ``run_id``, ``resume``, ``jobs``, ``profiles_file`` and ``env_files``
    mean what the ``run`` options of the same names mean, and ``vars`` gives the flow's
    run variables as ``--var`` does (typed values are taken as they are) (a ``run_id`` that exists
    resumes that run). ``env`` replaces ``os.environ`` as the run's environment. Logs
    go to ``log_stream`` (default: standard error) through the run's scrubber, as text
    or JSON lines (``log_format``, default from ``AETHERFLOW_LOG_FORMAT``).

    Raises :class:`RunFailed` when the run ends FAILED (unless ``check=False``, which
    returns the report whatever the status), a :class:`UserError` subclass
    (``SpecError``, ``ProfileError``, ``ResolutionError``, ``TemplateError``,
    ``PluginError``, ...) for input that cannot run, :class:`LockHeldError` when the
    flow lock is held, and :class:`Interrupted` when SIGINT or SIGTERM stopped it (its
    ``report`` holds what had run). All are in :mod:`aetherflow.core.errors`.
    """
    from .errors import UserError
    from .logs import configure_logging
    from .prepare import Invocation, prepare_environment, prepare_flow
    from .registration import registrations_undone
    from .runner import Runner
    from .variables import VarInput

    if run_id is not None and resume:
        raise UserError("run_id and resume cannot be used together", hint="resume picks the latest unfinished run itself")
    invocation = Invocation(
        flow_path=os.fspath(path),
        profile=profile,
        profiles_file=os.fspath(profiles_file) if profiles_file is not None else None,
        env_files=tuple(os.fspath(f) for f in env_files),
        variables=(VarInput(dict(vars), "var:api"),) if vars else (),
        base_env=env,
        log_format=log_format,
        log_level=log_level,
    )
    with registrations_undone(), _logger_restored():
        environment = prepare_environment(invocation, plugins=False)
        settings = environment.settings
        configure_logging(environment.scrubber, fmt=settings.log_format, level=settings.log_level, stream=log_stream or sys.stderr)
        from .plugins import load_plugins

        load_plugins(settings.plugin_paths, strict=settings.plugin_strict)
        prepared = prepare_flow(invocation, environment=environment)
        try:
            result = Runner(prepared, run_id=run_id, resume=resume, jobs=list(jobs) if jobs else None).run()
        except Interrupted as exc:
            if getattr(exc, "result", None) is not None:
                exc.report = RunReport.from_document(exc.result.to_dict())
            raise
    report = RunReport.from_document(result.to_dict())
    if check and not report.ok:
        failed = [job.id for job in report.jobs if job.status in (Status.FAILED, Status.BLOCKED)]
        raise RunFailed(
            f"run {report.run_id} of flow {report.flow_id!r} failed" + (f" (jobs: {', '.join(failed)})" if failed else ""),
            report=report,
            hint="the error's report holds every step's status and error; run again with the same run_id to resume",
        )
    return report


@contextmanager
def _logger_restored() -> Iterator[None]:
    """The ``aetherflow`` logger as it was: handlers, level, propagation."""
    from .logs import LOGGER_NAME

    logger = logging.getLogger(LOGGER_NAME)
    saved = (list(logger.handlers), logger.level, logger.propagate)
    try:
        yield
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            if handler not in saved[0]:
                handler.close()
        for handler in saved[0]:
            logger.addHandler(handler)
        logger.setLevel(saved[1])
        logger.propagate = saved[2]
