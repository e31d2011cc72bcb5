"""Command implementations: parse nothing, call the core, hand results to rendering."""

from __future__ import annotations

import sys
import time
from typing import Any

from aetherflow.core.errors import AetherflowError, Interrupted, UserError

from . import render
from .errors import Session
from .options import MigrateOptions, ResolveOptions, RunOptions


def _environment(session: Session, invocation, *, verbose: bool = False, quiet: bool = False):
    """Env snapshot and settings, then logging, then plugins (so plugin warnings are logged)."""
    from aetherflow.core.logs import configure_logging
    from aetherflow.core.plugins import load_plugins
    from aetherflow.core.prepare import prepare_environment

    if invocation.log_format is not None and invocation.log_format not in ("text", "json"):
        raise UserError(f"--log-format {invocation.log_format!r} is not supported", hint="use text or json")
    environment = prepare_environment(invocation, session.scrubber, plugins=False)
    settings = environment.settings
    level = "DEBUG" if verbose else "WARNING" if quiet else settings.log_level
    handler = None
    if settings.log_format == "text" and render.is_terminal(sys.stderr):
        handler = render.terminal_event_handler(session.scrubber)
    configure_logging(session.scrubber, fmt=settings.log_format, level=level, handler=handler)
    load_plugins(settings.plugin_paths, strict=settings.plugin_strict)
    return environment


def run_command(session: Session, options: RunOptions) -> int:
    from aetherflow.core.prepare import prepare_flow
    from aetherflow.core.runner import Runner

    if options.run_id is not None and options.resume:
        raise UserError("--run-id and --resume cannot be used together", hint="--resume picks the latest unfinished run itself")
    if options.max_parallel is not None:
        from aetherflow.core.settings import parse_max_parallel

        parse_max_parallel(options.max_parallel, "--max-parallel")
    invocation = options.invocation(log_format=options.log_format, max_parallel=options.max_parallel)
    environment = _environment(session, invocation, verbose=options.verbose, quiet=options.quiet)
    prepared = prepare_flow(invocation, environment=environment)
    runner = Runner(
        prepared,
        run_id=options.run_id,
        resume=options.resume,
        jobs=list(options.jobs),
        only=list(options.only),
        exclude=list(options.exclude),
        progress_factory=render.progress_factory(),
    )
    try:
        result = runner.run()
    except Interrupted as exc:
        result = getattr(exc, "result", None)
        if result is None:
            raise
        exit_code = exc.exit_code
    except AetherflowError as exc:
        # Failed before any job ran: the error is the message; with --json the document
        # (status, error, handlers) is printed too.
        result = getattr(exc, "result", None)
        if result is not None and options.json_output:
            render.dump_json(session, result.to_dict())
        elif result is not None:
            render.handlers_summary(session, result)
        raise
    else:
        exit_code = result.exit_code
    if options.json_output:
        render.dump_json(session, result.to_dict())
    else:
        render.run_summary(session, result)
    return exit_code


def validate_command(session, flows: list[str], json_output: bool) -> int:
    from aetherflow.core.prepare import Invocation
    from aetherflow.core.spec import check_flows

    _environment(session, Invocation())
    checks = check_flows(flows)
    if json_output:
        render.dump_json(
            session,
            {
                "ok": all(check.ok for check in checks),
                "errors": [problem.to_dict() for check in checks for problem in check.problems],
                "warnings": [problem.to_dict() for check in checks for problem in check.warnings],
                "files": [{"file": check.path, "ok": check.ok} for check in checks],
            },
        )
    else:
        render.validate_report(session, checks)
    return 0 if all(check.ok for check in checks) else 2


def graph_command(session: Session, flow: str, output_format: str) -> int:
    from aetherflow.core.prepare import Invocation
    from aetherflow.core.spec import load_flow

    from .graph import FORMATS, RENDERERS, flow_graph

    if output_format not in FORMATS:
        raise UserError(f"--format {output_format!r} is not supported", hint=f"use {', '.join(FORMATS)}")
    _environment(session, Invocation(flow_path=flow))
    session.out(RENDERERS[output_format](flow_graph(load_flow(flow))))
    return 0


def schema_command(session, name: str, output: str | None) -> int:
    from aetherflow.core.prepare import Invocation
    from aetherflow.core.spec.json_schema import dumps, schema_for

    _environment(session, Invocation())
    text = dumps(schema_for(name))
    if output is None:
        session.out(text.rstrip("\n"))
        return 0
    from aetherflow.core.atomic import atomic_open

    with atomic_open(output) as fh:
        fh.write(text.encode("utf-8"))
    session.err(f"wrote the {name} schema to {output}")
    return 0


def init_command(session, directory: str, template: str, force: bool) -> int:
    from aetherflow.core.scaffold import create_project

    render.init_report(session, create_project(directory, template=template, force=force))
    return 0


def _check(resource) -> dict[str, Any]:
    from aetherflow.core.connectors.manager import ConnectorManager

    manager = ConnectorManager({resource.name: resource}, scope="none")
    started = time.perf_counter()
    try:
        manager[resource.name].check()
    except AetherflowError as exc:
        return {"ok": False, "ms": round((time.perf_counter() - started) * 1000, 1), "error": exc.describe()}
    except Exception as exc:  # noqa: BLE001 - plugin check() is foreign code
        return {"ok": False, "ms": round((time.perf_counter() - started) * 1000, 1), "error": f"{type(exc).__name__}: {exc}"}
    finally:
        manager.close()
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1), "error": None}


def resolve_command(session: Session, options: ResolveOptions) -> int:
    from aetherflow.core.prepare import prepare_flow

    invocation = options.invocation()
    environment = _environment(session, invocation)
    prepared = prepare_flow(invocation, environment=environment, resource_names=list(options.resources) or None)
    prepared.variables.require()
    if prepared.profile_error is not None:
        raise prepared.profile_error
    rows = []
    for res in prepared.resources:
        config, resource_options = res.redacted()
        row = {
            "name": res.name,
            "kind": res.kind,
            "driver": res.driver,
            "profile": res.profile,
            "connector": res.connector,
            "ok": res.ok,
            "error": res.error.describe() if res.error else None,
            "config": config,
            "options": resource_options,
            "sources": dict(sorted(res.sources.items())),
            "env_origins": dict(sorted(res.env_origins.items())),
            "check": None,
        }
        if options.check and res.ok:
            row["check"] = _check(res)
        rows.append(row)
    document = {
        "flow_id": prepared.document.spec.flow.id,
        "profile": prepared.settings.profile,
        # A fingerprint identifies a resolved configuration: there is none when a resource failed.
        "fingerprint": prepared.fingerprint if all(row["ok"] for row in rows) else None,
        "vars": prepared.variables.describe(),
        "resources": rows,
    }
    if options.json_output:
        render.dump_json(session, document)
    else:
        render.resolve_report(session, document, show=options.show, check=options.check)
    if any(not row["ok"] for row in rows):
        return 2
    if options.check and any(row["check"] and not row["check"]["ok"] for row in rows):
        return 1
    return 0


def connectors_list_command(session, kind, json_output) -> int:
    from aetherflow.core.connectors.registry import list_connectors
    from aetherflow.core.prepare import Invocation

    _environment(session, Invocation())
    rows = list_connectors(kind, with_schema=json_output)
    if kind and not rows:
        from aetherflow.core.connectors.registry import entries
        from aetherflow.core.errors import suggest

        kinds = sorted({e.kind for e in entries()})
        raise UserError(f"no connectors of kind {kind!r}{suggest(kind, kinds)}", hint=f"kinds: {', '.join(kinds)}")
    if json_output:
        render.dump_json(session, rows)
    else:
        render.connectors_table(session, rows)
    return 0


def connectors_show_command(session, name, json_output) -> int:
    from aetherflow.core.connectors.registry import get_entry, list_connectors
    from aetherflow.core.prepare import Invocation

    _environment(session, Invocation())
    kind, sep, driver = name.partition("/")
    if not sep or not kind or not driver:
        raise UserError(f"expected KIND/DRIVER, got {name!r}", hint="for example: aetherflow connectors show db/postgres")
    get_entry(kind, driver)
    row = next(r for r in list_connectors(kind, with_schema=True) if r["driver"] == driver)
    if json_output:
        render.dump_json(session, row)
    else:
        render.connector_schema(session, row)
    return 0


def steps_list_command(session, json_output) -> int:
    from aetherflow.core.prepare import Invocation
    from aetherflow.core.steps.registry import list_steps

    _environment(session, Invocation())
    rows = list_steps()
    if json_output:
        render.dump_json(session, rows)
    else:
        render.steps_table(session, rows)
    return 0


def migrate_command(session: Session, options: MigrateOptions) -> int:
    from aetherflow.core.migrate import migrate_flow, write_migration

    environment = _environment(session, options.invocation())
    migration = migrate_flow(options.flow, environment.settings.profiles_file)
    # The diff shows the files' own text: the secrets written in them are masked there.
    session.scrubber.add(*migration.secret_values())
    written = write_migration(migration) if options.write else []
    if options.json_output:
        document = migration.to_dict()
        document["written"] = written
        for item, row in zip(migration.files, document["files"]):
            row["diff"] = item.diff()
        render.dump_json(session, document)
    else:
        render.migration_report(session, migration, written, show_diff=not options.write)
    return 0 if not migration.problems else 2


def steps_show_command(session, type_name: str, json_output: bool) -> int:
    from aetherflow.core.prepare import Invocation
    from aetherflow.core.steps.registry import describe_step, step_types

    _environment(session, Invocation())
    if type_name not in step_types():
        from aetherflow.core.errors import suggest

        raise UserError(f"unknown step type {type_name!r}{suggest(type_name, step_types())}", hint="list them with `aetherflow steps list`")
    row = describe_step(type_name)
    if json_output:
        render.dump_json(session, row)
    else:
        render.step_schema(session, row)
    return 0
