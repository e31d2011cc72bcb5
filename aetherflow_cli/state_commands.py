"""``aetherflow runs ...`` and ``aetherflow locks ...``: read the state store, release locks.

Which state is read: ``--state PATH`` (a SQLite file), else the state block of the flow
given (``runs list FLOW`` or ``--flow FLOW``), else the default SQLite file
``<AETHERFLOW_STATE_ROOT or ~/.aetherflow>/state.db`` — the one ``run`` uses for a flow
without ``flow.state``. Reading never creates a state file.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from . import render
from .errors import Session, guard

runs_app = typer.Typer(help="Inspect runs recorded in the state store.", no_args_is_help=True, rich_markup_mode=None)
locks_app = typer.Typer(help="Inspect and release locks held in the state store.", no_args_is_help=True, rich_markup_mode=None)

StateOpt = Annotated[
    str | None,
    typer.Option("--state", help="SQLite state file (default: $AETHERFLOW_STATE_ROOT/state.db, else ~/.aetherflow/state.db).", metavar="PATH"),
]
FlowOpt = Annotated[str | None, typer.Option("--flow", help="Use the state settings of this flow file.", metavar="FLOW")]
EnvFileOpt = Annotated[list[str] | None, typer.Option("--env-file", help="Dotenv file overlaid on the environment (for templated state settings); repeatable.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Tracebacks on errors.")]


# -- commands -----------------------------------------------------------------------------


@runs_app.command("list")
def runs_list(
    flow: Annotated[str | None, typer.Argument(help="A flow file: list its runs, from its state.", metavar="FLOW")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Show at most this many runs, newest first.", min=1)] = 20,
    state: StateOpt = None,
    env_file: EnvFileOpt = None,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """List runs, newest first."""
    with guard(verbose) as session:
        code = runs_list_command(session, flow, limit, state, env_file or [], json_output)
    raise typer.Exit(code)


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="The run id (see `aetherflow runs list`).", metavar="RUN_ID")],
    flow: FlowOpt = None,
    state: StateOpt = None,
    env_file: EnvFileOpt = None,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Show one run: its jobs and steps, attempts, durations and errors."""
    with guard(verbose) as session:
        code = runs_show_command(session, run_id, flow, state, env_file or [], json_output)
    raise typer.Exit(code)


@locks_app.command("list")
def locks_list(
    flow: FlowOpt = None,
    state: StateOpt = None,
    env_file: EnvFileOpt = None,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """List locks with their owner (run id, host, pid) and expiry."""
    with guard(verbose) as session:
        code = locks_list_command(session, flow, state, env_file or [], json_output)
    raise typer.Exit(code)


@locks_app.command("release")
def locks_release(
    key: Annotated[str, typer.Argument(help="The lock key.", metavar="KEY")],
    force: Annotated[bool, typer.Option("--force", help="Release without asking (required without a terminal).")] = False,
    flow: FlowOpt = None,
    state: StateOpt = None,
    env_file: EnvFileOpt = None,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Release a lock whoever holds it (after confirmation, or with --force)."""
    with guard(verbose) as session:
        code = locks_release_command(session, key, force, flow, state, env_file or [], json_output)
    raise typer.Exit(code)


# -- implementations ----------------------------------------------------------------------


class _State:
    """The opened store (None when a SQLite file does not exist yet) and its description."""

    def __init__(self, session: Session, flow: str | None, state_path: str | None, env_files: list[str]):
        from pathlib import Path

        from aetherflow_core.errors import UserError
        from aetherflow_core.prepare import Invocation, prepare_environment
        from aetherflow_core.state import StateLocation, default_state_path, flow_state_location

        if flow and state_path:
            raise UserError("give a flow or --state, not both", hint="--state names a SQLite file; a flow names its own state")
        environment = prepare_environment(Invocation(flow_path=flow, env_files=env_files), session.scrubber, plugins=False)
        self.flow_id: str | None = None
        if state_path:
            location = StateLocation("sqlite", path=str(Path(state_path).expanduser().resolve()))
        elif flow:
            from aetherflow_core.spec import load_flow

            document = load_flow(flow, check=False)  # only flow.id and flow.state are needed
            self.flow_id = document.spec.flow.id
            location = flow_state_location(document, environment.env, environment.settings.state_root, session.scrubber)
        else:
            location = StateLocation("sqlite", path=str(default_state_path(environment.settings.state_root)))
        self.location = location
        self.store = None
        if location.backend != "sqlite" or Path(location.path).exists():
            self.store = location.open()

    def __enter__(self) -> _State:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.store is not None:
            self.store.close()



def _run_document(row) -> dict[str, Any]:
    from aetherflow_core.locks import process_alive
    from aetherflow_core.status import Status
    from aetherflow_core.times import iso_utc

    alive = process_alive(row.host, row.pid) if row.status == Status.RUNNING and row.host and row.pid else None
    return {
        "run_id": row.run_id,
        "flow_id": row.flow_id,
        "status": row.status,
        "profile": row.profile,
        "started_at": iso_utc(row.started_at),
        "ended_at": iso_utc(row.ended_at),
        "duration_ms": row.duration_ms,
        "host": row.host,
        "pid": row.pid,
        "invocations": row.invocations,
        "flow_path": row.flow_path,
        "flow_sha256": row.flow_sha256,
        "fingerprint": row.fingerprint,
        "process_alive": alive,
    }


def _run_note(run: dict[str, Any]) -> str:
    if run["process_alive"] is False:
        return f"process gone: resume with --run-id {run['run_id']}"
    if (run["invocations"] or 1) > 1:
        return f"resumed {run['invocations'] - 1}x"
    return ""


def runs_list_command(session: Session, flow: str | None, limit: int, state_path: str | None, env_files: list[str], json_output: bool) -> int:

    with _State(session, flow, state_path, env_files) as state:
        rows = state.store.list_runs(state.flow_id, limit) if state.store is not None else []
        runs = [_run_document(row) for row in rows]
    if json_output:
        render.dump_json(session, runs)
        return 0
    if not runs:
        session.out(f"no runs{' of flow ' + repr(state.flow_id) if state.flow_id else ''} in {state.location.describe()}")
        return 0
    body = [
        [r["run_id"], r["flow_id"], r["status"], r["started_at"], r["duration_ms"], f"{r['host']}:{r['pid']}", _run_note(r)]
        for r in runs
    ]
    render.table(session, f"runs in {state.location.describe()}", ["run", "flow", "status", "started (UTC)", "ms", "host:pid", "note"], body)
    return 0


def runs_show_command(session: Session, run_id: str, flow: str | None, state_path: str | None, env_files: list[str], json_output: bool) -> int:
    from aetherflow_core.errors import UserError
    from aetherflow_core.times import iso_utc

    with _State(session, flow, state_path, env_files) as state:
        row = state.store.get_run(run_id) if state.store is not None else None
        if row is None:
            raise UserError(f"no run {run_id!r} in {state.location.describe()}", hint="list runs with `aetherflow runs list`")
        run = _run_document(row)
        jobs = state.store.job_runs(run_id)
        steps = state.store.step_runs(run_id)
    by_job: dict[str, list[dict[str, Any]]] = {}
    for step in steps:
        by_job.setdefault(step.job_id, []).append(
            {
                "id": step.step_id,
                "type": step.step_type,
                "status": step.status,
                "attempts": step.attempts,
                "started_at": iso_utc(step.started_at),
                "ended_at": iso_utc(step.ended_at),
                "duration_ms": step.duration_ms,
                "outputs": step.outputs,
                "error": step.error,
            }
        )
    run["jobs"] = [
        {
            "id": job.job_id,
            "status": job.status,
            "started_at": iso_utc(job.started_at),
            "ended_at": iso_utc(job.ended_at),
            "duration_ms": job.duration_ms,
            "outputs": job.outputs,
            "error": job.error,
            "steps": by_job.pop(job.job_id, []),
        }
        for job in jobs
    ]
    if json_output:
        render.dump_json(session, run)
        return 0
    session.out(f"run {run['run_id']} of flow {run['flow_id']}: {run['status']}")
    facts = [
        ("started", run["started_at"]), ("ended", run["ended_at"]), ("duration_ms", run["duration_ms"]),
        ("host:pid", f"{run['host']}:{run['pid']}"), ("profile", run["profile"]), ("invocations", run["invocations"]),
        ("flow file", run["flow_path"]), ("note", _run_note(run)),
    ]
    for name, value in facts:
        if value not in (None, ""):
            session.out(f"  {name}: {value}")
    body = []
    for job in run["jobs"]:
        body.append([job["id"], "", "", job["status"], "", job["started_at"], job["duration_ms"], job["error"] or ""])
        for step in job["steps"]:
            body.append(["", step["id"], step["type"], step["status"], step["attempts"], step["started_at"], step["duration_ms"], step["error"] or ""])
    render.table(session, None, ["job", "step", "type", "status", "attempts", "started (UTC)", "ms", "error"], body)
    return 0


def _lock_documents(store) -> list[dict[str, Any]]:
    from aetherflow_core.locks import process_alive
    from aetherflow_core.state.base import LockOwner
    from aetherflow_core.times import iso_utc

    now = store.now()
    documents = []
    for lock in store.list_locks():
        owner = LockOwner.decode(lock.owner)
        documents.append(
            {
                "key": lock.key,
                "owner": lock.owner,
                "run_id": owner.run_id if owner else None,
                "host": owner.host if owner else None,
                "pid": owner.pid if owner else None,
                "acquired_at": iso_utc(lock.acquired_at),
                "expires_at": iso_utc(lock.expires_at),
                "expires_in_seconds": round(lock.expires_at - now, 1),
                "expired": lock.expires_at < now,
                "holder_alive": process_alive(owner.host, owner.pid) if owner else None,
            }
        )
    return documents


def _lock_state(lock: dict[str, Any]) -> str:
    if lock["expired"]:
        return "expired (free to take)"
    if lock["holder_alive"] is False:
        return "holder process gone (expires on its own)"
    return "held"


def locks_list_command(session: Session, flow: str | None, state_path: str | None, env_files: list[str], json_output: bool) -> int:

    with _State(session, flow, state_path, env_files) as state:
        locks = _lock_documents(state.store) if state.store is not None else []
    if json_output:
        render.dump_json(session, locks)
        return 0
    if not locks:
        session.out(f"no locks in {state.location.describe()}")
        return 0
    body = [[lock["key"], lock["owner"], lock["acquired_at"], lock["expires_in_seconds"], _lock_state(lock)] for lock in locks]
    render.table(session, f"locks in {state.location.describe()}", ["key", "owner (run@host:pid)", "acquired (UTC)", "expires in s", "state"], body)
    return 0


def locks_release_command(
    session: Session, key: str, force: bool, flow: str | None, state_path: str | None, env_files: list[str], json_output: bool
) -> int:
    from aetherflow_core.errors import UserError

    with _State(session, flow, state_path, env_files) as state:
        lock = next((lock for lock in _lock_documents(state.store) if lock["key"] == key), None) if state.store is not None else None
        if lock is None:
            raise UserError(f"no lock {key!r} in {state.location.describe()}", hint="list locks with `aetherflow locks list`")
        if not force:
            if not (sys.stdin.isatty() and sys.stderr.isatty()):
                raise UserError(
                    f"not releasing lock {key!r} (held by {lock['owner']}) without confirmation: no terminal to ask on",
                    hint="pass --force to release it anyway",
                )
            question = f"Release lock {key!r} held by {lock['owner']} ({_lock_state(lock)}, expires in {lock['expires_in_seconds']:g}s)?"
            if not typer.confirm(question, default=False, err=True):
                session.err("not released")
                return 1
        released = state.store.release_lock(key)
    if json_output:
        render.dump_json(session, {"key": key, "released": released, "owner": lock["owner"]})
    else:
        session.out(f"released lock {key!r} (was held by {lock['owner']})" if released else f"lock {key!r} was already gone")
    return 0
