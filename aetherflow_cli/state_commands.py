"""``aetherflow runs ...`` and ``aetherflow locks ...``: read the state store, release locks.

The commands parse their options and call :mod:`aetherflow_cli.state`, imported when a
command runs. Which state is read: ``--state PATH`` (a SQLite file), else the state
block of the flow given (``runs list FLOW`` or ``--flow FLOW``), else the default SQLite
file ``<AETHERFLOW_STATE_ROOT or ~/.aetherflow>/state.db`` — the one ``run`` uses for a
flow without ``flow.state``. Reading never creates a state file.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .errors import guard
from .options import EnvFileOpt, FlowOpt, JsonOpt, StateOpt, StateOptions, VerboseOpt

runs_app = typer.Typer(help="Inspect runs recorded in the state store.", no_args_is_help=True, rich_markup_mode=None)
locks_app = typer.Typer(help="Inspect and release locks held in the state store.", no_args_is_help=True, rich_markup_mode=None)


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
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Show one run: its jobs and steps, attempts, durations and errors."""
    from .state import runs_show_command

    with guard(verbose) as session:
        code = runs_show_command(session, StateOptions(flow, state, tuple(env_file or ())), run_id, json_output)
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
