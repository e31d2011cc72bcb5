"""What the ``runs``, ``locks`` and ``store`` commands do: open the state store they are
pointed at, turn its rows into documents (JSON as printed by ``--json``), and hand them
to :mod:`aetherflow.cli.render`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from aetherflow.core.errors import UserError
from aetherflow.core.state import StateLocation
from aetherflow.core.state.base import StateStore
from aetherflow.core.state.rows import JobRunRow, RunRow, StepRunRow
from aetherflow.core.status import Status
from aetherflow.core.times import iso_utc

from . import render
from .errors import Session
from .options import StateOptions


@dataclass
class OpenedState:
    location: StateLocation
    store: StateStore | None  # None: the SQLite file does not exist (yet)
    flow_id: str | None  # the flow given, whose runs are listed


@contextmanager
def open_state(session: Session, options: StateOptions) -> Iterator[OpenedState]:
    from aetherflow.core.prepare import Invocation, prepare_environment
    from aetherflow.core.state import default_state_path, flow_state_location

    if options.flow and options.state:
        raise UserError("give a flow or --state, not both", hint="--state names a SQLite file; a flow names its own state")
    environment = prepare_environment(Invocation(flow_path=options.flow, env_files=options.env_files), session.scrubber, plugins=False)
    flow_id = None
    if options.state:
        location = StateLocation("sqlite", path=str(Path(options.state).expanduser().resolve()))
    elif options.flow:
        from aetherflow.core.spec import load_flow

        document = load_flow(options.flow, check=False)  # only flow.id and flow.state are needed
        flow_id = document.spec.flow.id
        location = flow_state_location(document, environment.env, environment.settings.state_root, session.scrubber)
    else:
        location = StateLocation("sqlite", path=str(default_state_path(environment.settings.state_root)))
    store = location.open() if location.backend != "sqlite" or Path(location.path).exists() else None
    try:
        yield OpenedState(location, store, flow_id)
    finally:
        if store is not None:
            store.close()


# -- documents ------------------------------------------------------------------------------


def run_document(row: RunRow) -> dict[str, Any]:
    from aetherflow.core.locks import process_alive

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
        "vars": row.vars,
        "process_alive": alive,
    }


def _step_document(step: StepRunRow) -> dict[str, Any]:
    return {
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


def _job_document(job: JobRunRow, steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": job.job_id,
        "status": job.status,
        "started_at": iso_utc(job.started_at),
        "ended_at": iso_utc(job.ended_at),
        "duration_ms": job.duration_ms,
        "outputs": job.outputs,
        "error": job.error,
        "steps": steps,
    }


def timeline_document(run: RunRow, jobs: list[JobRunRow], steps: list[StepRunRow]) -> dict[str, Any]:
    """When each job and step ran, as offsets in milliseconds from the run's start: the
    jobs in plan order, each followed by its steps. Rows that never started (blocked,
    skipped steps) have no offsets."""

    def offsets(started: float | None, ended: float | None) -> tuple[int | None, int | None]:
        if started is None:
            return None, None
        start = round((started - run.started_at) * 1000)
        return start, None if ended is None else max(start, round((ended - run.started_at) * 1000))

    by_job: dict[str, list[StepRunRow]] = {}
    for step in steps:
        by_job.setdefault(step.job_id, []).append(step)
    rows = []
    for job in jobs:
        start, end = offsets(job.started_at, job.ended_at)
        rows.append({"job": job.job_id, "step": None, "status": job.status, "start_ms": start, "end_ms": end})
        for step in by_job.get(job.job_id, []):
            start, end = offsets(step.started_at, step.ended_at)
            rows.append({"job": job.job_id, "step": step.step_id, "status": step.status, "start_ms": start, "end_ms": end})
    ends = [row["end_ms"] for row in rows if row["end_ms"] is not None]
    # The run's duration is counted from a moment just after its row was written: the
    # axis spans both, so no bar ends past it.
    total = max([run.duration_ms or 0, *ends])
    return {"run_id": run.run_id, "flow_id": run.flow_id, "status": run.status, "started_at": iso_utc(run.started_at), "duration_ms": total, "rows": rows}


def lock_documents(store: StateStore) -> list[dict[str, Any]]:
    from aetherflow.core.locks import leftover_groups, process_alive
    from aetherflow.core.state.base import LockOwner

    now = store.now()
    documents = []
    for lock in store.list_locks():
        owner = LockOwner.decode(lock.owner)
        holder_alive = process_alive(owner.host, owner.pid) if owner else None
        # A holder that is gone may have left children running: the groups its steps recorded.
        children = [pgid for _row, pgid, alive in leftover_groups(store, owner.run_id) if alive] if owner and holder_alive is False else []
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
                "holder_alive": holder_alive,
                "holder_children_alive": children,
            }
        )
    return documents


# -- commands -------------------------------------------------------------------------------


def runs_list_command(session: Session, options: StateOptions, limit: int, json_output: bool) -> int:
    with open_state(session, options) as state:
        rows = state.store.list_runs(state.flow_id, limit) if state.store is not None else []
        runs = [run_document(row) for row in rows]
    if json_output:
        render.dump_json(session, runs)
    else:
        render.runs_table(session, runs, flow_id=state.flow_id, where=state.location.describe())
    return 0


def runs_show_command(session: Session, options: StateOptions, run_id: str, json_output: bool, timeline: bool = False) -> int:
    with open_state(session, options) as state:
        row = state.store.get_run(run_id) if state.store is not None else None
        if row is None:
            raise UserError(f"no run {run_id!r} in {state.location.describe()}", hint="list runs with `aetherflow runs list`")
        run = run_document(row)
        jobs = state.store.job_runs(run_id)
        steps = state.store.step_runs(run_id)
    if timeline:
        document = timeline_document(row, jobs, steps)
        if json_output:
            render.dump_json(session, document)
        else:
            render.timeline_chart(session, document)
        return 0
    by_job: dict[str, list[dict[str, Any]]] = {}
    for step in steps:
        by_job.setdefault(step.job_id, []).append(_step_document(step))
    run["jobs"] = [_job_document(job, by_job.pop(job.job_id, [])) for job in jobs]
    if json_output:
        render.dump_json(session, run)
    else:
        render.run_report(session, run)
    return 0


def locks_list_command(session: Session, options: StateOptions, json_output: bool) -> int:
    with open_state(session, options) as state:
        locks = lock_documents(state.store) if state.store is not None else []
    if json_output:
        render.dump_json(session, locks)
    else:
        render.locks_table(session, locks, where=state.location.describe())
    return 0


def locks_release_command(session: Session, options: StateOptions, key: str, force: bool, json_output: bool) -> int:
    with open_state(session, options) as state:
        lock = next((lock for lock in lock_documents(state.store) if lock["key"] == key), None) if state.store is not None else None
        if lock is None:
            raise UserError(f"no lock {key!r} in {state.location.describe()}", hint="list locks with `aetherflow locks list`")
        if not force:
            if not (sys.stdin.isatty() and sys.stderr.isatty()):
                raise UserError(
                    f"not releasing lock {key!r} (held by {lock['owner']}) without confirmation: no terminal to ask on",
                    hint="pass --force to release it anyway",
                )
            question = f"Lock {key!r} is held by {lock['owner']}: {render.lock_state(lock)}, expires in {lock['expires_in_seconds']:g} s. Release it?"
            if not typer.confirm(question, default=False, err=True):
                session.err("not released")
                return 1
        released = state.store.release_lock(key)
    if json_output:
        render.dump_json(session, {"key": key, "released": released, "owner": lock["owner"]})
    else:
        session.out(f"released lock {key!r} (was held by {lock['owner']})" if released else f"lock {key!r} was already gone")
    return 0


# -- persisted values -----------------------------------------------------------------------


def _persisted_document(row) -> dict[str, Any]:
    return {"name": row.name, "value": row.value, "updated_at": iso_utc(row.updated_at), "run_id": row.run_id}


@contextmanager
def _flow_store(session: Session, options: StateOptions, *, create: bool) -> Iterator[OpenedState]:
    """The flow's state; ``create`` opens (and creates) a SQLite file that does not exist yet."""
    with open_state(session, options) as state:
        if state.store is None and create:
            state.store = state.location.open()
            try:
                yield state
            finally:
                state.store.close()
            return
        yield state


def store_list_command(session: Session, options: StateOptions, json_output: bool) -> int:
    with _flow_store(session, options, create=False) as state:
        rows = state.store.persisted(state.flow_id) if state.store is not None else []
        values = [_persisted_document(row) for row in rows]
    if json_output:
        render.dump_json(session, {"flow_id": state.flow_id, "values": values})
    else:
        render.store_table(session, values, flow_id=state.flow_id, where=state.location.describe())
    return 0


def store_set_command(session: Session, options: StateOptions, name: str, text: str, json_output: bool) -> int:
    import json
    import re
    import time

    from aetherflow.core.errors import PersistError
    from aetherflow.core.runner.persist import check_not_secret
    from aetherflow.core.state.rows import PersistedRow
    from aetherflow.core.variables import VAR_NAME_PATTERN

    if not re.match(VAR_NAME_PATTERN, name):
        raise UserError(f"invalid name {name!r}", hint="names start with a letter or '_' and use letters, digits and '_'")
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    try:
        check_not_secret(name, value, session.scrubber)
    except PersistError as exc:
        raise UserError(exc.message, hint=exc.hint) from None
    with _flow_store(session, options, create=True) as state:
        row = PersistedRow.of(state.flow_id, name, value, updated_at=time.time())
        state.store.set_persisted(row)
    if json_output:
        render.dump_json(session, _persisted_document(row))
    else:
        session.out(f"set {name} = {json.dumps(value, ensure_ascii=False)} for flow {state.flow_id}")
    return 0


def store_delete_command(session: Session, options: StateOptions, name: str, json_output: bool) -> int:
    with _flow_store(session, options, create=False) as state:
        deleted = state.store.delete_persisted(state.flow_id, name) if state.store is not None else False
        if not deleted:
            names = [row.name for row in state.store.persisted(state.flow_id)] if state.store is not None else []
            raise UserError(
                f"no value {name!r} persisted for flow {state.flow_id!r} in {state.location.describe()}",
                hint=f"persisted names: {', '.join(names)}" if names else "the flow has no persisted values",
            )
    if json_output:
        render.dump_json(session, {"flow_id": state.flow_id, "name": name, "deleted": True})
    else:
        session.out(f"deleted {name} for flow {state.flow_id}")
    return 0
