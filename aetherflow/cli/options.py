"""The command-line options shared by several commands, and the invocation objects the
command implementations receive.

Only Typer and the standard library are imported here: the Typer modules import this
at start-up, so the core is imported later, by the command that needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from .completion import complete_profile

if TYPE_CHECKING:
    from aetherflow.core.prepare import Invocation

FlowArg = Annotated[str, typer.Argument(help="Path of the flow YAML file.", metavar="FLOW")]
FlowsArg = Annotated[list[str], typer.Argument(help="Paths of flow YAML files; each is checked on its own.", metavar="FLOW...")]
ProfileOpt = Annotated[
    str | None, typer.Option("--profile", help="Profile to apply (overrides AETHERFLOW_PROFILE).", metavar="PROFILE", autocompletion=complete_profile)
]
ProfilesFileOpt = Annotated[
    str | None, typer.Option("--profiles-file", help="Profiles YAML file (default: profiles.yaml beside the flow).", metavar="FILE")
]
EnvFileOpt = Annotated[
    list[str] | None, typer.Option("--env-file", help="Dotenv file overlaid on the environment; repeatable, in order.", metavar="FILE")
]
VarOpt = Annotated[
    list[str] | None,
    typer.Option("--var", help="Run variable NAME=VALUE, declared under `vars:` in the flow; repeatable; wins over --vars-file.", metavar="NAME=VALUE"),
]
VarsFileOpt = Annotated[
    list[str] | None,
    typer.Option("--vars-file", help="YAML or JSON file mapping run variables to values; repeatable, later files win.", metavar="FILE"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logs, and tracebacks with errors.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors in the logs.")]
LogFormatOpt = Annotated[str | None, typer.Option("--log-format", help="Log format on stderr: text or json.", metavar="text|json")]
StateOpt = Annotated[
    str | None,
    typer.Option("--state", help="SQLite state file (default: $AETHERFLOW_STATE_ROOT/state.db, else ~/.aetherflow/state.db).", metavar="PATH"),
]
FlowOpt = Annotated[str | None, typer.Option("--flow", help="Use the state settings of this flow file.", metavar="FLOW")]


@dataclass(frozen=True)
class FlowOptions:
    """Which flow, and what its resources are resolved with."""

    flow: str
    profile: str | None = None
    profiles_file: str | None = None
    env_files: tuple[str, ...] = ()
    var_pairs: tuple[str, ...] = ()  # --var NAME=VALUE
    vars_files: tuple[str, ...] = ()  # --vars-file FILE

    def invocation(self, **fields) -> Invocation:
        from aetherflow.core.prepare import Invocation
        from aetherflow.core.variables import parse_var_pairs, read_vars_file

        variables = [read_vars_file(path) for path in self.vars_files]
        if self.var_pairs:
            variables.append(parse_var_pairs(self.var_pairs))
        return Invocation(
            flow_path=self.flow,
            profile=self.profile,
            profiles_file=self.profiles_file,
            env_files=self.env_files,
            variables=variables,
            **fields,
        )


@dataclass(frozen=True)
class RunOptions(FlowOptions):
    """``aetherflow run``."""

    run_id: str | None = None
    resume: bool = False
    jobs: tuple[str, ...] = ()  # --job: with their upstream jobs
    only: tuple[str, ...] = ()  # --only: exactly these jobs
    exclude: tuple[str, ...] = ()  # --exclude
    max_parallel: int | None = None
    json_output: bool = False
    log_format: str | None = None
    verbose: bool = False
    quiet: bool = False


@dataclass(frozen=True)
class ResolveOptions(FlowOptions):
    """``aetherflow resolve``."""

    resources: tuple[str, ...] = ()
    show: bool = False
    check: bool = False
    json_output: bool = False


@dataclass(frozen=True)
class MigrateOptions(FlowOptions):
    """``aetherflow migrate``."""

    write: bool = False
    json_output: bool = False


@dataclass(frozen=True)
class StateOptions:
    """Which state store the ``runs`` and ``locks`` commands read: ``--state``, else the
    flow's own, else the default SQLite file."""

    flow: str | None = None
    state: str | None = None
    env_files: tuple[str, ...] = ()
