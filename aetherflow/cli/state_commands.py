"""``aetherflow runs ...``, ``aetherflow locks ...`` and ``aetherflow store ...``: read
the state store, release locks, inspect and repair persisted values.

The commands parse their options and call :mod:`aetherflow.cli.state`, imported when a
command runs. Which state is read: ``--state PATH`` (a SQLite file), else the state
block of the flow given (``runs list FLOW`` or ``--flow FLOW``), else the default SQLite
file ``<AETHERFLOW_STATE_ROOT or ~/.aetherflow>/state.db`` — the one ``run`` uses for a
flow without ``flow.state``. Reading never creates a state file.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .errors import guard
from .options import EnvFileOpt, FlowArg, FlowOpt, JsonOpt, StateOpt, StateOptions, VerboseOpt

runs_app = typer.Typer(help="Inspect runs recorded in the state store.", no_args_is_help=True, rich_markup_mode=None)
locks_app = typer.Typer(help="Inspect and release locks held in the state store.", no_args_is_help=True, rich_markup_mode=None)
store_app = typer.Typer(
    help="Inspect and repair the values a flow persists between runs (steps' `persist:`).", no_args_is_help=True, rich_markup_mode=None
)
NameArg = Annotated[str, typer.Argument(help="The persisted value's name (read as store.<name>).", metavar="NAME")]


@runs_app.command("list")
def runs_list(
    flow: Annotated[str | None, typer.Argument(help="A flow file: list its runs, from its state.", metavar="FLOW")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Show at most this many runs, newest first (default 20).", min=1, metavar="N", show_default=False)] = 20,
    state: StateOpt = None,
    env_file: EnvFileOpt = None,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """List runs, newest first."""
    from .state import runs_list_command

    with guard(verbose) as session:
        code = runs_list_command(session, StateOptions(flow, state, tuple(env_file or ())), limit, json_output)
    raise typer.Exit(code)


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="The run id (see `aetherflow runs list`).", metavar="RUN_ID")],
    flow: FlowOpt = None,
    state: StateOpt = None,
    env_file: EnvFileOpt = None,
    timeline: Annotated[
        bool, typer.Option("--timeline", help="Draw when each job and step ran (in JSON output: start and end offsets in ms).")
    ] = False,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Show one run: its jobs and steps, attempts, durations and errors."""
    from .state import runs_show_command

    with guard(verbose) as session:
        code = runs_show_command(session, StateOptions(flow, state, tuple(env_file or ())), run_id, json_output, timeline)
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
    from .state import locks_list_command

    with guard(verbose) as session:
        code = locks_list_command(session, StateOptions(flow, state, tuple(env_file or ())), json_output)
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
    from .state import locks_release_command

    with guard(verbose) as session:
        code = locks_release_command(session, StateOptions(flow, state, tuple(env_file or ())), key, force, json_output)
    raise typer.Exit(code)


@store_app.command("list")
def store_list(flow: FlowArg, env_file: EnvFileOpt = None, json_output: JsonOpt = False, verbose: VerboseOpt = False) -> None:
    """List the values a flow persisted, with the run that wrote each."""
    from .state import store_list_command

    with guard(verbose) as session:
        code = store_list_command(session, StateOptions(flow, None, tuple(env_file or ())), json_output)
    raise typer.Exit(code)


@store_app.command("set")
def store_set(
    flow: FlowArg,
    name: NameArg,
    value: Annotated[str, typer.Argument(help="The value: JSON when it parses as JSON (5, true, [1, 2], \"text\"), else text.", metavar="VALUE")],
    env_file: EnvFileOpt = None,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Set a persisted value by hand (the next run reads it as store.NAME)."""
    from .state import store_set_command

    with guard(verbose) as session:
        code = store_set_command(session, StateOptions(flow, None, tuple(env_file or ())), name, value, json_output)
    raise typer.Exit(code)


@store_app.command("delete")
def store_delete(flow: FlowArg, name: NameArg, env_file: EnvFileOpt = None, json_output: JsonOpt = False, verbose: VerboseOpt = False) -> None:
    """Delete a persisted value (the next run reads store.NAME as undefined)."""
    from .state import store_delete_command

    with guard(verbose) as session:
        code = store_delete_command(session, StateOptions(flow, None, tuple(env_file or ())), name, json_output)
    raise typer.Exit(code)
