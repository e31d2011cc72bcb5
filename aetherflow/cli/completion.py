"""Shell completion of values: profile names, job ids and resource names of the flow on
the command line, step types, connectors.

Typer completes commands and options itself (``aetherflow --install-completion``);
these callbacks complete values. They run only when the shell asks for completions:
this module imports nothing from the core at start-up, and a callback that cannot read
what it needs offers nothing rather than failing (the shell then completes file names).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import typer

SHELLS = ("bash", "zsh", "fish")
PROG = "aetherflow"
COMPLETE_VAR = "_AETHERFLOW_COMPLETE"


def _shell(name: str) -> str:
    if name not in SHELLS:
        from aetherflow.core.errors import UserError

        raise UserError(f"no completion for shell {name!r}", hint=f"name one of: {', '.join(SHELLS)}")
    return name


def completion_script(shell: str) -> str:
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=_shell(shell)).strip()


def install_completion(shell: str) -> str:
    """Install the script where the shell reads it; says where, and what to do next."""
    from typer._completion_shared import install

    name, path = install(shell=_shell(shell), prog_name=PROG, complete_var=COMPLETE_VAR)
    return f"{name} completion installed in {path}; it takes effect in a new shell"


def _matching(candidates: Iterable[str], incomplete: str) -> list[str]:
    return sorted(c for c in set(candidates) if c.startswith(incomplete))


def _quietly(read: Callable[[], Iterable[str]]) -> list[str]:
    try:
        return list(read())
    except Exception:  # noqa: BLE001 - a completion never fails the shell
        return []


def _typed_words() -> list[str]:
    """The words of the command line but the one being completed and the option it is
    the value of, as the shell gave them (bash gives the whole line, the others the line
    up to the cursor)."""
    import shlex

    if "COMP_WORDS" in os.environ:  # bash: the words joined by newlines (the script's IFS)
        joined = os.environ["COMP_WORDS"]
        words = joined.split("\n") if "\n" in joined else shlex.split(joined)
        cword = int(os.environ.get("COMP_CWORD", len(words)))
        before, after = words[1:cword], words[cword + 1 :]
    else:  # zsh, fish, PowerShell
        line = os.environ.get("_TYPER_COMPLETE_ARGS", "")
        before, after = shlex.split(line)[1:], []
        if not line.endswith(" "):
            before = before[:-1]
    if before and before[-1].startswith("-"):
        before = before[:-1]
    return before + after


def _params(ctx: typer.Context) -> dict:
    """The command's parameters given so far. While an option's value is being completed
    the command line does not parse (the option lacks its value), so it is parsed again
    without that option."""
    if ctx.params.get("flow"):
        return ctx.params
    words = _typed_words()
    if ctx.info_name in words:
        words = words[words.index(ctx.info_name) + 1 :]
    return ctx.command.make_context(ctx.info_name, words, resilient_parsing=True).params


def _flow_document(ctx: typer.Context):
    from aetherflow.core.spec import load_flow

    flow = _params(ctx).get("flow")
    return load_flow(flow, check=False) if flow else None


def complete_profile(ctx: typer.Context, incomplete: str) -> list[str]:
    """Profiles of the profiles file the command would read: ``--profiles-file``, else
    the environment's, else ``profiles.yaml`` beside the flow."""

    def read():
        from aetherflow.core.profiles import load_profiles

        params = _params(ctx)
        profiles = load_profiles(
            flow_path=params.get("flow"),
            profiles_file=params.get("profiles_file"),
            profiles_json=os.environ.get("AETHERFLOW_PROFILES_JSON"),
            env_profiles_file=os.environ.get("AETHERFLOW_PROFILES_FILE"),
        )
        return profiles.names()

    return _matching(_quietly(read), incomplete)


def complete_job(ctx: typer.Context, incomplete: str) -> list[str]:
    def read():
        document = _flow_document(ctx)
        return [job.id for job in document.spec.jobs] if document else []

    return _matching(_quietly(read), incomplete)


def complete_resource(ctx: typer.Context, incomplete: str) -> list[str]:
    def read():
        document = _flow_document(ctx)
        return list(document.spec.resources) if document else []

    return _matching(_quietly(read), incomplete)


def complete_step_type(incomplete: str) -> list[str]:
    def read():
        from aetherflow.core.steps.registry import step_types

        return step_types()

    return _matching(_quietly(read), incomplete)


def complete_connector(incomplete: str) -> list[str]:
    def read():
        from aetherflow.core.connectors.registry import entries

        return [f"{entry.kind}/{entry.driver}" for entry in entries()]

    return _matching(_quietly(read), incomplete)


def complete_kind(incomplete: str) -> list[str]:
    def read():
        from aetherflow.core.connectors.registry import entries

        return [entry.kind for entry in entries()]

    return _matching(_quietly(read), incomplete)
