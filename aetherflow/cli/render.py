"""Human output: Rich tables on a terminal, plain lines otherwise (CI logs).

Every line goes through the session's scrubber. Rich is imported only when the output
is a terminal.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from aetherflow.core.status import Status

from .errors import Session

_STATUS_STYLE = {Status.SUCCESS: "green", Status.SKIPPED: "yellow", Status.FAILED: "red", Status.BLOCKED: "magenta"}


def counted(n: int, noun: str) -> str:
    """``1 job``, ``2 jobs``: a count with its noun in the right number."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


_CONSOLE = None


def _stderr_console():
    """The one Rich console on stderr: event lines and live progress bars share it, so
    lines printed while bars are drawn land above them."""
    global _CONSOLE
    if _CONSOLE is None:
        from rich.console import Console

        _CONSOLE = Console(stderr=True, highlight=False)
    return _CONSOLE


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
    if result.persisted:
        session.out("persisted: " + ", ".join(f"{name}={json.dumps(value, default=str)}" for name, value in result.persisted.items()))
    handlers_summary(session, result)
    for warning in result.warnings:
        session.err(f"warning: {warning}")


def handlers_summary(session: Session, result) -> None:
    """The handlers that ran after the run, one line each, with a failed step's error."""
    for handler in result.handlers:
        line = f"handlers.{handler.id}: {handler.status}"
        errors = [f"{step.id}: {step.error}" for step in handler.steps if step.error]
        session.out(line + (f" ({'; '.join(errors)})" if errors else ""))


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


def store_table(session: Session, values: list[dict[str, Any]], *, flow_id: str | None, where: str) -> None:
    if not values:
        session.out(f"no values persisted for flow {flow_id!r} in {where}")
        return
    body = [
        [v["name"], json.dumps(v["value"], default=str, ensure_ascii=False), v["updated_at"], v["run_id"] or "set by hand"] for v in values
    ]
    table(session, f"values persisted for flow {flow_id} in {where}", ["name", "value", "updated (UTC)", "written by"], body)


def _terminal_width() -> int:
    import shutil

    return shutil.get_terminal_size((100, 24)).columns


def timeline_chart(session: Session, document: dict[str, Any]) -> None:
    """A text Gantt chart of a run: one line per job and step, a bar from its start to
    its end on a common time axis, then its status and duration."""
    rows = document["rows"]
    total = max(document["duration_ms"] or 0, *(row["end_ms"] or 0 for row in rows), 1)
    labels = [row["job"] if row["step"] is None else f"  {row['step']}" for row in rows]
    label_width = max([len(label) for label in labels] + [3])
    width = max(_terminal_width() - label_width - 26, 20)
    session.out(f"run {document['run_id']} of flow {document['flow_id']}: {document['status']}, {total} ms, started {document['started_at']}")
    session.out(f"{'':<{label_width}} |0{'':<{width - len(str(total)) - 3}}{total} ms|")
    for label, row in zip(labels, rows):
        start, end = row["start_ms"], row["end_ms"]
        if start is None:
            bar, took = " " * width, ""
        else:
            first = min(int(start * width / total), width - 1)
            last = max(first + 1, min(round((end if end is not None else total) * width / total), width))
            mark = "=" if row["step"] is None else "#"
            bar = " " * first + mark * (last - first) + " " * (width - last)
            took = f"{(end - start) if end is not None else '?'} ms"
        session.out(f"{label:<{label_width}} |{bar}| {row['status']:<8} {took}".rstrip())


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
    if show and document["vars"]:
        values = [[var["name"], json.dumps(var["value"], default=str, ensure_ascii=False), var["source"]] for var in document["vars"]]
        table(session, "variables", ["variable", "value", "source"], values)
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


class _ProgressBoard:
    """One live Rich display for every progress bar of the run: jobs running in
    parallel each add their bars to it (Rich allows one live display at a time). It
    starts with the first bar and stops when the last one closes."""

    def __init__(self):
        import threading

        self._guard = threading.Lock()
        self._progress = None
        self._open = 0

    def bar(self, description: str, total: float | None, unit: str) -> _Bar:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with self._guard:
            if self._progress is None:
                columns = [
                    TextColumn("{task.description}"),
                    BarColumn(),
                    TextColumn("{task.fields[amount]}"),
                    TextColumn("{task.fields[rate]}"),
                    TimeElapsedColumn(),
                ]
                self._progress = Progress(*columns, transient=True, console=_stderr_console())
                self._progress.start()
            self._open += 1
            task = self._progress.add_task(description, total=total, amount="", rate="")
            return _Bar(self, task, unit)

    def update(self, task, amount: float, fields: dict) -> None:
        with self._guard:
            if self._progress is not None:
                self._progress.update(task, advance=amount, **fields)

    def speed(self, task) -> float:
        with self._guard:
            return (self._progress.tasks[task].speed if self._progress is not None else None) or 0

    def completed(self, task) -> float:
        with self._guard:
            return self._progress.tasks[task].completed if self._progress is not None else 0

    def remove(self, task) -> None:
        with self._guard:
            if self._progress is None:
                return
            self._progress.remove_task(task)
            self._open -= 1
            if self._open == 0:
                self._progress.stop()
                self._progress = None


class _Bar:
    def __init__(self, board: _ProgressBoard, task, unit: str):
        self._board, self._task, self._unit = board, task, unit
        self._closed = False

    def advance(self, amount: float = 1) -> None:
        board, task, unit = self._board, self._task, self._unit
        done = board.completed(task) + amount
        speed = board.speed(task)
        if unit == "B":
            fields = {"amount": _bytes(done), "rate": f"{_bytes(speed)}/s"}
        else:
            fields = {"amount": f"{done:,.0f} {unit}", "rate": f"{speed:,.0f} {unit}/s"}
        board.update(task, amount, fields)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._board.remove(self._task)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _bytes(value: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000
    return f"{value:,.1f} GB"


def progress_factory():
    """Live progress bars when stderr is a terminal, nothing otherwise. Bars of jobs
    running at the same time are drawn together, one line each."""
    from aetherflow.core.context import no_progress

    if not is_terminal(sys.stderr):
        return no_progress
    board = _ProgressBoard()
    return lambda description, total=None, unit="": board.bar(description, total, unit)


def terminal_event_handler(scrubber):
    """A logging handler drawing events for a person at a terminal: one coloured line per
    job and step event, plain text for the rest. Every line is scrubbed.

    When jobs may run in parallel (``max_parallel`` above 1), step lines name their
    job, and a job's start line lists the jobs running with it."""
    import logging
    import threading

    from rich.markup import escape

    from aetherflow.core.logs import TextFormatter, event_fields

    console = _stderr_console()
    fallback = TextFormatter()

    class Handler(logging.Handler):
        parallel = False
        running: list[str] = []
        guard = threading.Lock()

        def track(self, event: str, fields: dict) -> None:
            with self.guard:
                if event == "run.started":
                    self.parallel = int(fields.get("max_parallel") or 1) > 1
                    self.running = []
                elif event == "job.started":
                    self.running = self.running + [str(fields.get("job_id"))]
                elif event == "job.finished":
                    self.running = [j for j in self.running if j != str(fields.get("job_id"))]

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
            self.track(event, fields)
            clean = lambda value: escape(scrubber.scrub(str(value)))  # noqa: E731
            job = f"[bold]{clean(fields.get('job_id'))}[/] " if self.parallel and fields.get("job_id") else ""
            status = fields.get("status")
            style = _STATUS_STYLE.get(status or "", "white")
            ms = f" [dim]{fields['duration_ms']} ms[/]" if fields.get("duration_ms") is not None else ""
            if event == "step.started":
                return None
            if event == "run.started":
                return f"[bold]run[/] {clean(fields.get('run_id'))} [dim]flow {clean(fields.get('flow_id'))}[/]"
            if event == "job.started":
                others = [j for j in self.running if j != str(fields.get("job_id"))]
                with_others = f" [dim](running with {clean(', '.join(others))})[/]" if others else ""
                return f"[bold]job[/] {clean(fields.get('job_id'))}{with_others}"
            if event in ("step.finished", "step.failed", "step.reused", "step.interrupted"):
                text = f"  {job}{clean(fields.get('step_id'))} [dim]{clean(fields.get('step_type'))}[/] [{style}]{clean(status)}[/]{ms}"
                if event == "step.reused":
                    text += " [dim](reused)[/]"
                if fields.get("error"):
                    text += f"\n    [red]{clean(fields['error'])}[/]"
                if fields.get("traceback"):
                    text += f"\n[dim]{clean(fields['traceback'])}[/]"
                return text
            if event == "step.attempt_failed":
                return (
                    f"  {job}{clean(fields.get('step_id'))} [yellow]attempt {fields.get('attempt')}/{fields.get('max_attempts')} failed[/]"
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
        session.err(f"validate finds {counted(len(migration.problems), 'problem')} in the migrated flow (listed above)")
    elif show_diff and migration.changed:
        session.err("the migrated flow validates; run again with --write to apply")
