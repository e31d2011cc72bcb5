"""Human output: Rich tables on a terminal, plain lines otherwise (CI logs).

Every line goes through the session's scrubber. Rich is imported only when the output
is a terminal.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from aetherflow_core.status import Status

from .errors import Session

_STATUS_STYLE = {Status.SUCCESS: "green", Status.SKIPPED: "yellow", Status.FAILED: "red", Status.BLOCKED: "magenta"}


def counted(n: int, noun: str) -> str:
    """``1 job``, ``2 jobs``: a count with its noun in the right number."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def is_terminal(stream=None) -> bool:
    stream = stream or sys.stdout
    return hasattr(stream, "isatty") and stream.isatty()


def dump_json(session: Session, document: Any) -> None:
    """The one JSON document of a ``--json`` command, scrubbed, on stdout."""
    session.out(json.dumps(session.scrubber.scrub_data(document), indent=2, default=str, ensure_ascii=False))


def _rich_table(session: Session, title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=session.scrubber.scrub(title) if title else None, show_lines=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        cells = []
        for value in row:
            text = session.scrubber.scrub("" if value is None else str(value))
            style = _STATUS_STYLE.get(text)
            cells.append(f"[{style}]{text}[/]" if style else text.replace("[", "\\["))
        table.add_row(*cells)
    Console().print(table)


def _plain_table(session: Session, title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    if title:
        session.out(title)
    # A cell of several lines (an error and its hint) continues under its own column.
    cells = [[("" if v is None else str(v)).splitlines() or [""] for v in row] for row in rows]
    widths = [max([len(c)] + [len(line) for r in cells for line in r[i]]) for i, c in enumerate(columns)]
    session.out("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip())
    for row in cells:
        for n in range(max(len(cell) for cell in row)):
            session.out("  ".join((cell[n] if n < len(cell) else "").ljust(w) for cell, w in zip(row, widths)).rstrip())


def table(session: Session, title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    (_rich_table if is_terminal() else _plain_table)(session, title, columns, rows)


def run_summary(session: Session, result) -> None:
    rows = []
    for job in result.jobs:
        rows.append([job.id, "", "", job.status, "", job.duration_ms, job.reason or ""])
        for step in job.steps:
            note = step.error or ("reused from an earlier attempt of this run" if step.resumed else "")
            attempts = step.attempts if step.attempts else ""
            rows.append(["", step.id, step.type, step.status, attempts, step.duration_ms, note])
    title = f"run {result.run_id} of flow {result.flow_id}: {result.status} in {result.duration_ms} ms"
    table(session, title, ["job", "step", "type", "status", "attempts", "ms", "note"], rows)
    for warning in result.warnings:
        session.err(f"warning: {warning}")


def _run_note(run: dict[str, Any]) -> str:
    if run["process_alive"] is False:
        return f"process gone: resume with --run-id {run['run_id']}"
    if (run["invocations"] or 1) > 1:
        return f"resumed {run['invocations'] - 1}x"
    return ""


def runs_table(session: Session, runs: list[dict[str, Any]], *, flow_id: str | None, where: str) -> None:
    if not runs:
        session.out(f"no runs{' of flow ' + repr(flow_id) if flow_id else ''} in {where}")
        return
    body = [
        [r["run_id"], r["flow_id"], r["status"], r["started_at"], r["duration_ms"], f"{r['host']}:{r['pid']}", _run_note(r)]
        for r in runs
    ]
    table(session, f"runs in {where}", ["run", "flow", "status", "started (UTC)", "ms", "host:pid", "note"], body)


def run_report(session: Session, run: dict[str, Any]) -> None:
    """One run as ``runs show`` prints it: its facts, then its jobs and their steps."""
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
    table(session, None, ["job", "step", "type", "status", "attempts", "started (UTC)", "ms", "error"], body)


def lock_state(lock: dict[str, Any]) -> str:
    children = lock.get("holder_children_alive")
    running = f"; its children still run (process group {', '.join(map(str, children))})" if children else ""
    if lock["expired"]:
        return "expired (free to take" + (", which stops them" + running[1:] if children else "") + ")"
    if lock["holder_alive"] is False:
        return f"holder process gone{running} (expires on its own)"
    return "held"


def locks_table(session: Session, locks: list[dict[str, Any]], *, where: str) -> None:
    if not locks:
        session.out(f"no locks in {where}")
        return
    body = [[lock["key"], lock["owner"], lock["acquired_at"], lock["expires_in_seconds"], lock_state(lock)] for lock in locks]
    table(session, f"locks in {where}", ["key", "owner (run@host:pid)", "acquired (UTC)", "expires in s", "state"], body)


def _flatten(data: dict, prefix: str) -> list[tuple[str, Any]]:
    items = []
    for key, value in data.items():
        path = f"{prefix}.{key}"
        if isinstance(value, dict) and value:
            items.extend(_flatten(value, path))
        else:
            items.append((path, value))
    return items


def _source(row: dict, path: str) -> str:
    source = row["sources"].get(path, "")
    if source.startswith("env:"):
        origin = row.get("env_origins", {}).get(source[4:], "process")
        if origin != "process":
            source += f" ({origin})"
    return source


def resolve_report(session: Session, document: dict, *, show: bool, check: bool) -> None:
    rows = []
    for row in document["resources"]:
        status = "OK" if row["ok"] else "ERROR"
        line = [row["name"], f"{row['kind']}/{row['driver']}", row["profile"] or "", row["connector"] or "", status]
        if check:
            result = row["check"]
            line.append("" if result is None else (f"OK {result['ms']} ms" if result["ok"] else f"FAILED {result['ms']} ms"))
        rows.append(line)
    columns = ["resource", "kind/driver", "profile", "connector", "resolved"] + (["check"] if check else [])
    table(session, f"flow {document['flow_id']} (profile: {document['profile'] or 'none'})", columns, rows)
    for row in document["resources"]:
        if row["error"]:
            session.err(f"error: {row['error']}")
        if row["check"] and not row["check"]["ok"]:
            session.err(f"check failed: resource {row['name']!r}: {row['check']['error']}")
        if show and row["ok"]:
            leaves = _flatten(row["config"], "config") + _flatten(row["options"], "options")
            values = [[path, json.dumps(value, default=str, ensure_ascii=False), _source(row, path)] for path, value in leaves]
            table(session, f"resource {row['name']} ({row['kind']}/{row['driver']})", ["key", "value", "source"], values)
    if document["fingerprint"]:
        session.out(f"fingerprint: {document['fingerprint']}")


def validate_report(session: Session, checks) -> None:
    """Each file's verdict: OK with its size on stdout, or every problem on stderr."""
    for check in checks:
        for problem in check.warnings:
            session.err(problem.describe(prefix="warning: "))
        if check.ok:
            spec = check.document.spec
            steps = sum(len(job.steps) for job in spec.jobs)
            counts = ", ".join((counted(len(spec.jobs), "job"), counted(steps, "step"), counted(len(spec.resources), "resource")))
            summary = f"{check.path}: OK ({counts})"
            if check.warnings:
                summary += f" with {counted(len(check.warnings), 'warning')}"
            session.out(summary)
        else:
            for problem in check.problems:
                session.err(problem.describe())
            session.err(f"{counted(len(check.problems), 'problem')} found in {check.path}")
    if len(checks) > 1:
        bad = sum(not check.ok for check in checks)
        session.out(f"{len(checks)} files checked: {len(checks) - bad} OK, {bad} with problems")


def init_report(session: Session, project) -> None:
    where = project.directory
    session.out(f"created {len(project.files)} files in {where} (template {project.template}, flow id {project.flow_id}):")
    for path in project.files:
        session.out(f"  {path.relative_to(where)}")
    flows = sorted(p.name for p in project.files if p.name.endswith(".flow.yaml"))
    session.out("next:")
    if str(where) != ".":
        session.out(f"  cd {where}")
    for flow in flows:
        session.out(f"  aetherflow validate {flow}")
        session.out(f"  aetherflow run {flow} --profile dev")


def connectors_table(session: Session, rows: list[dict]) -> None:
    body = []
    for row in rows:
        available = "yes" if row["available"] else f"no ({row['install'] or 'missing ' + ', '.join(row['requires'])})"
        body.append([row["kind"], row["driver"], row["origin"], available, row["summary"], row["class"]])
    table(session, None, ["kind", "driver", "origin", "available", "summary", "class"], body)


def connector_schema(session: Session, row: dict) -> None:
    session.out(f"{row['kind']}/{row['driver']}: {row['summary']}")
    session.out(f"class: {row['class']} ({row['origin']})")
    for section in ("config", "options"):
        schema = row.get(f"{section}_schema")
        if schema is None:
            session.out(f"{section}: not declared (any keys accepted)")
            continue
        body = [
            [key, f["type"], "yes" if f["required"] else "", "" if f["default"] is None else json.dumps(f["default"]), "yes" if f["secret"] else "", f["help"]]
            for key, f in schema.items()
        ]
        table(session, section, ["key", "type", "required", "default", "secret", "help"], body)


def steps_table(session: Session, rows: list[dict]) -> None:
    body = []
    for row in rows:
        if row["inputs"] is None:
            required = ", ".join(f"{k}*" for k in row["required_inputs"])
            inputs = f"(not declared; {required})" if required else "(not declared)"
        else:
            inputs = ", ".join(f"{k}*" if v["required"] else k for k, v in row["inputs"].items())
        body.append([row["type"], row["summary"], inputs, ", ".join(row["outputs"]), row["origin"]])
    table(session, None, ["type", "summary", "inputs (* required)", "outputs", "origin"], body)


def step_schema(session: Session, row: dict) -> None:
    session.out(f"{row['type']}: {row['summary']}")
    session.out(f"origin: {row['origin']}")
    if row["inputs"] is None:
        required = ", ".join(row["required_inputs"])
        session.out(f"inputs: not declared (any accepted){'; required: ' + required if required else ''}")
    else:
        body = [
            [key, f["type"], "yes" if f["required"] else "", "" if f["default"] is None else json.dumps(f["default"], default=str), f["help"]]
            for key, f in row["inputs"].items()
        ]
        table(session, "inputs", ["input", "type", "required", "default", "help"], body)
    session.out(f"outputs: {', '.join(row['outputs']) or 'none declared'}")


class _RichProgress:
    def __init__(self, description: str, total: float | None, unit: str):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            ProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )
        from rich.text import Text

        class RateColumn(ProgressColumn):
            def render(self, task):
                return Text(f"{task.speed or 0:,.0f} {unit}/s")

        columns = [TextColumn("{task.description}"), BarColumn()]
        if unit == "B":
            columns += [DownloadColumn(), TransferSpeedColumn()]
        else:
            columns += [TextColumn("{task.completed:,.0f} " + unit), RateColumn()]
        columns.append(TimeElapsedColumn())
        self._progress = Progress(*columns, transient=True, console=Console(stderr=True))
        self._task = self._progress.add_task(description, total=total)
        self._progress.start()

    def advance(self, amount: float = 1) -> None:
        self._progress.advance(self._task, amount)

    def close(self) -> None:
        self._progress.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def progress_factory():
    """Live progress bars when stderr is a terminal, nothing otherwise."""
    from aetherflow_core.context import no_progress

    if not is_terminal(sys.stderr):
        return no_progress
    return lambda description, total=None, unit="": _RichProgress(description, total, unit)


def terminal_event_handler(scrubber):
    """A logging handler drawing events for a person at a terminal: one coloured line per
    job and step event, plain text for the rest. Every line is scrubbed."""
    import logging

    from rich.console import Console
    from rich.markup import escape

    from aetherflow_core.logs import TextFormatter, event_fields

    console = Console(stderr=True, highlight=False)
    fallback = TextFormatter()

    class Handler(logging.Handler):
        def emit(self, record):
            try:
                line = self.render(record)
                if line is not None:
                    console.print(line)
            except Exception:  # noqa: BLE001 - logging must never break a run
                self.handleError(record)

        def render(self, record):
            fields = event_fields(record)
            event = record.getMessage()
            clean = lambda value: escape(scrubber.scrub(str(value)))  # noqa: E731
            status = fields.get("status")
            style = _STATUS_STYLE.get(status or "", "white")
            ms = f" [dim]{fields['duration_ms']} ms[/]" if fields.get("duration_ms") is not None else ""
            if event == "step.started":
                return None
            if event == "run.started":
                return f"[bold]run[/] {clean(fields.get('run_id'))} [dim]flow {clean(fields.get('flow_id'))}[/]"
            if event == "job.started":
                return f"[bold]job[/] {clean(fields.get('job_id'))}"
            if event in ("step.finished", "step.failed", "step.reused", "step.interrupted"):
                text = f"  {clean(fields.get('step_id'))} [dim]{clean(fields.get('step_type'))}[/] [{style}]{clean(status)}[/]{ms}"
                if event == "step.reused":
                    text += " [dim](reused)[/]"
                if fields.get("error"):
                    text += f"\n    [red]{clean(fields['error'])}[/]"
                if fields.get("traceback"):
                    text += f"\n[dim]{clean(fields['traceback'])}[/]"
                return text
            if event == "step.attempt_failed":
                return (
                    f"  {clean(fields.get('step_id'))} [yellow]attempt {fields.get('attempt')}/{fields.get('max_attempts')} failed[/]"
                    f" (retry in {fields.get('retry_in_seconds')} s): {clean(fields.get('error'))}"
                )
            if event == "job.finished":
                reason = f" [dim]({clean(fields['reason'])})[/]" if fields.get("reason") else ""
                return f"[bold]job[/] {clean(fields.get('job_id'))} [{style}]{clean(status)}[/]{ms}{reason}"
            if event == "run.finished":
                return None
            level = {"WARNING": "yellow", "ERROR": "red"}.get(record.levelname, "dim")
            return f"[{level}]{clean(fallback.format(record))}[/]"

    return Handler()


def migration_report(session: Session, migration, written: list[str], *, show_diff: bool) -> None:
    """The diff on stdout (unless written); what was rewritten and what was not on stderr."""
    for item in migration.files:
        if show_diff and item.changed:
            sys.stdout.write(session.scrubber.scrub(item.diff()))
            sys.stdout.flush()
        for title, findings in (("rewritten", item.rewritten), ("not rewritten, for you to decide", item.remaining)):
            if findings:
                session.err(f"{title}:")
                for finding in findings:
                    session.err("  " + finding.describe(item.path).replace("\n", "\n  "))
    for path in written:
        session.err(f"wrote {path}")
    if not migration.changed:
        session.err(f"{migration.files[0].path}: nothing to migrate")
    if migration.problems:
        session.err(f"validate finds {len(migration.problems)} problem(s) in the migrated flow (listed above)")
    elif show_diff and migration.changed:
        session.err("the migrated flow validates; run again with --write to apply")
