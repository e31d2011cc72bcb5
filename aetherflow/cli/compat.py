"""Command-line flags of aetherflow-core 0.0.14, answered with the command to type.

``run --flow-yaml F --flow-job J`` would otherwise fail with a bare "no such option".
The commands that had these flags use :class:`OldFlagsCommand`, which finds them before
the arguments are parsed and stops with a usage error (exit 2) showing the same command
written for this version.
"""

from __future__ import annotations

import shlex
from typing import Any

import typer
from typer.core import TyperCommand

OLD_FLAGS = ("--flow-yaml", "--flow-job")


def rewrite_args(args: list[str], *, job_flag: str = "--job") -> tuple[list[str], list[str]] | None:
    """``args`` with the old flags rewritten, and the old flags found; None without any."""
    flow: str | None = None
    rest: list[str] = []
    found: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        name, sep, value = arg.partition("=")
        if arg == "--" or name not in OLD_FLAGS:
            rest.append(arg)
            i += 1
            continue
        found.append(name)
        if not sep:
            value = args[i + 1] if i + 1 < len(args) else ""
            i += 1
        i += 1
        if name == "--flow-yaml":
            flow = value
        else:
            rest += [job_flag, value]
    if not found:
        return None
    return ([flow] if flow else []) + rest, found


class OldFlagsCommand(TyperCommand):
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        has_only = any("--only" in getattr(param, "opts", ()) for param in self.params)
        rewritten = rewrite_args(args, job_flag="--only" if has_only else "--job")
        if rewritten is None:
            return super().parse_args(ctx, args)
        new_args, found = rewritten
        note = "" if has_only or "--flow-job" not in found else " (--job also runs the jobs it depends on)"
        command = shlex.join(["aetherflow", ctx.info_name or self.name or "", *new_args])
        typer.echo(f"error: {' and '.join(found)} {'is' if len(found) == 1 else 'are'} aetherflow-core's flag{'s' if len(found) > 1 else ''}", err=True)
        typer.echo(f"  hint: here write: {command}{note}", err=True)
        raise typer.Exit(2)
