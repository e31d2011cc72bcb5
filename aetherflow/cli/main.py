"""The ``aetherflow`` command line: a thin Typer app over ``aetherflow.core``.

Only Typer is imported at start-up; each command imports the core modules it needs
when it runs, and rendering (Rich tables, JSON) lives in :mod:`aetherflow.cli.render`.
Errors are mapped to exit codes in one place, :func:`aetherflow.cli.errors.guard`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .compat import OldFlagsCommand
from .completion import complete_connector, complete_job, complete_kind, complete_resource, complete_step_type
from .errors import guard
from .options import (
    EnvFileOpt,
    FlowArg,
    FlowsArg,
    JsonOpt,
    LogFormatOpt,
    MigrateOptions,
    ProfileOpt,
    ProfilesFileOpt,
    QuietOpt,
    ResolveOptions,
    RunOptions,
    VarOpt,
    VarsFileOpt,
    VerboseOpt,
)
from .state_commands import locks_app, runs_app, store_app

app = typer.Typer(
    name="aetherflow",
    help="Run ops-grade ETL and automation flows declared in YAML.",
    add_completion=False,  # our own options: they take the shell as a value
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
connectors_app = typer.Typer(help="Inspect the connector registry.", no_args_is_help=True, rich_markup_mode=None)
steps_app = typer.Typer(help="Inspect the step types.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(connectors_app, name="connectors")
app.add_typer(steps_app, name="steps")
app.add_typer(runs_app, name="runs")
app.add_typer(locks_app, name="locks")
app.add_typer(store_app, name="store")


def _version(value: bool) -> None:
    if value:
        from aetherflow.core import __version__

        typer.echo(f"aetherflow {__version__}")
        raise typer.Exit()


def _show_completion(value: str | None) -> None:
    if value is not None:
        from .completion import completion_script

        with guard(False) as session:
            session.out(completion_script(value))
        raise typer.Exit()


def _install_completion(value: str | None) -> None:
    if value is not None:
        from .completion import install_completion

        with guard(False) as session:
            session.out(install_completion(value))
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    install_completion: Annotated[
        str | None,
        typer.Option(
            "--install-completion",
            metavar="bash|zsh|fish",
            callback=_install_completion,
            is_eager=True,
            help="Install completion for this shell (in ~/.bashrc, ~/.zfunc, fish's completions folder).",
        ),
    ] = None,
    show_completion: Annotated[
        str | None,
        typer.Option(
            "--show-completion",
            metavar="bash|zsh|fish",
            callback=_show_completion,
            is_eager=True,
            help="Print the completion script of this shell, to install it yourself.",
        ),
    ] = None,
) -> None:
    """Run ops-grade ETL and automation flows declared in YAML."""


@app.command(cls=OldFlagsCommand)
def run(
    flow: FlowArg,
    profile: ProfileOpt = None,
    profiles_file: ProfilesFileOpt = None,
    env_file: EnvFileOpt = None,
    var: VarOpt = None,
    vars_file: VarsFileOpt = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Run id; an existing run is resumed.", metavar="ID")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Resume the latest unfinished run of this flow.")] = False,
    job: Annotated[
        list[str] | None,
        typer.Option("--job", help="Run only this job (and its upstream jobs); repeatable.", metavar="JOB", autocompletion=complete_job),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help="Run exactly this job; upstream outputs come from the last successful run; repeatable.",
            metavar="JOB",
            autocompletion=complete_job,
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="Do not run this job; repeatable.", metavar="JOB", autocompletion=complete_job),
    ] = None,
    max_parallel: Annotated[
        int | None,
        typer.Option("--max-parallel", help="Run up to N jobs at once (overrides AETHERFLOW_MAX_PARALLEL and flow.max_parallel).", metavar="N"),
    ] = None,
    json_output: JsonOpt = False,
    log_format: LogFormatOpt = None,
    verbose: VerboseOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Run a flow.

    \b
    Examples:
      aetherflow run flow.yaml --profile prod
      aetherflow run flow.yaml --job load        load and the jobs it depends on
      aetherflow run flow.yaml --resume          continue the latest unfinished run
      aetherflow run flow.yaml --json | jq .status
    """
    from .commands import run_command

    options = RunOptions(
        flow=flow,
        profile=profile,
        profiles_file=profiles_file,
        env_files=tuple(env_file or ()),
        var_pairs=tuple(var or ()),
        vars_files=tuple(vars_file or ()),
        run_id=run_id,
        resume=resume,
        jobs=tuple(job or ()),
        only=tuple(only or ()),
        exclude=tuple(exclude or ()),
        max_parallel=max_parallel,
        json_output=json_output,
        log_format=log_format,
        verbose=verbose,
        quiet=quiet,
    )
    with guard(verbose) as session:
        code = run_command(session, options)
    raise typer.Exit(code)


@app.command(cls=OldFlagsCommand)
def validate(
    flows: FlowsArg,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Check flow files without running anything or connecting; exit 2 when one is invalid.

    \b
    Examples:
      aetherflow validate flow.yaml
      aetherflow validate flows/*.flow.yaml     each file reported, exit code the worst
      aetherflow validate flow.yaml --json      errors with file, line, column, path, hint
    """
    from .commands import validate_command

    with guard(verbose) as session:
        code = validate_command(session, flows, json_output)
    raise typer.Exit(code)


@app.command()
def resolve(
    flow: FlowArg,
    profile: ProfileOpt = None,
    profiles_file: ProfilesFileOpt = None,
    env_file: EnvFileOpt = None,
    var: VarOpt = None,
    vars_file: VarsFileOpt = None,
    resource: Annotated[
        list[str] | None, typer.Option("--resource", help="Only this resource; repeatable.", metavar="NAME", autocompletion=complete_resource)
    ] = None,
    show: Annotated[bool, typer.Option("--show", help="Show final config/options (secrets redacted) and where each value came from.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Build each connector and call check().")] = False,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Resolve resources without running any step (--check connects).

    \b
    Examples:
      aetherflow resolve flow.yaml --profile prod --show    values and where each came from
      aetherflow resolve flow.yaml --resource warehouse --check
    """
    from .commands import resolve_command

    options = ResolveOptions(
        flow=flow,
        profile=profile,
        profiles_file=profiles_file,
        env_files=tuple(env_file or ()),
        var_pairs=tuple(var or ()),
        vars_files=tuple(vars_file or ()),
        resources=tuple(resource or ()),
        show=show,
        check=check,
        json_output=json_output,
    )
    with guard(verbose) as session:
        code = resolve_command(session, options)
    raise typer.Exit(code)


@app.command()
def graph(
    flow: FlowArg,
    format: Annotated[
        str, typer.Option("--format", help="mermaid (for Markdown), dot (Graphviz) or text.", metavar="mermaid|dot|text")
    ] = "text",
    verbose: VerboseOpt = False,
) -> None:
    """Draw the job graph of a flow (Mermaid, DOT or text).

    Dependencies, `when` gates and the resources each job uses; the flow file is only
    read, nothing is resolved or connected.
    """
    from .commands import graph_command

    with guard(verbose) as session:
        code = graph_command(session, flow, format)
    raise typer.Exit(code)


@connectors_app.command("list")
def connectors_list(
    kind: Annotated[str | None, typer.Option("--kind", help="Only connectors of this kind.", metavar="KIND", autocompletion=complete_kind)] = None,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """List registered connectors (built-ins and plugins)."""
    from .commands import connectors_list_command

    with guard(verbose) as session:
        code = connectors_list_command(session, kind, json_output)
    raise typer.Exit(code)


@connectors_app.command("show")
def connectors_show(
    name: Annotated[str, typer.Argument(help="KIND/DRIVER, e.g. db/postgres.", metavar="KIND/DRIVER", autocompletion=complete_connector)],
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Show a connector's configuration schema."""
    from .commands import connectors_show_command

    with guard(verbose) as session:
        code = connectors_show_command(session, name, json_output)
    raise typer.Exit(code)


@steps_app.command("list")
def steps_list(json_output: JsonOpt = False, verbose: VerboseOpt = False) -> None:
    """List step types with their inputs."""
    from .commands import steps_list_command

    with guard(verbose) as session:
        code = steps_list_command(session, json_output)
    raise typer.Exit(code)


@app.command()
def migrate(
    flow: FlowArg,
    profiles_file: ProfilesFileOpt = None,
    write: Annotated[bool, typer.Option("--write", help="Rewrite the files in place (default: print a diff).")] = False,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Rewrite a flow (and its profiles) written for aetherflow-core 0.0.14."""
    from .commands import migrate_command

    options = MigrateOptions(flow=flow, profiles_file=profiles_file, write=write, json_output=json_output)
    with guard(verbose) as session:
        code = migrate_command(session, options)
    raise typer.Exit(code)


@steps_app.command("show")
def steps_show(
    step_type: Annotated[str, typer.Argument(help="The step type, e.g. db_extract.", metavar="TYPE", autocompletion=complete_step_type)],
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Show a step type's inputs (type, default, help) and outputs."""
    from .commands import steps_show_command

    with guard(verbose) as session:
        code = steps_show_command(session, step_type, json_output)
    raise typer.Exit(code)


@app.command()
def schema(
    name: Annotated[str, typer.Argument(help="Whose schema: flow or profiles.", metavar="flow|profiles")],
    output: Annotated[str | None, typer.Option("--output", "-o", help="Write it to this file (atomically) instead of stdout.", metavar="FILE")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Print the JSON Schema of flow or profiles files, with the steps and connectors registered now."""
    from .commands import schema_command

    with guard(verbose) as session:
        code = schema_command(session, name, output)
    raise typer.Exit(code)


@app.command()
def init(
    directory: Annotated[str, typer.Argument(help="Folder of the new project; created when missing.", metavar="DIR")] = ".",
    template: Annotated[str, typer.Option("--template", help="Project template: duckdb (the default) or minimal.", metavar="NAME")] = "duckdb",
    force: Annotated[bool, typer.Option("--force", help="Replace files that already exist.")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Write a small working project: a flow, profiles, .env.example, a plugin, editor schemas."""
    from .commands import init_command

    with guard(verbose) as session:
        code = init_command(session, directory, template, force)
    raise typer.Exit(code)


def main() -> None:
    import os

    if "_AETHERFLOW_COMPLETE" in os.environ:  # the shell asks for completions
        from typer.completion import completion_init

        completion_init()
    app(prog_name="aetherflow")
