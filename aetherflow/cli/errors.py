"""One place that maps errors to exit codes and messages (scrubbed, no locals)."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import typer

from aetherflow.core.errors import AetherflowError
from aetherflow.core.redaction import Scrubber


@dataclass
class Session:
    """Per-invocation state shared by a command and its error handler."""

    scrubber: Scrubber = field(default_factory=Scrubber)
    stdout_closed: bool = False  # the reader of stdout went away (`| head`)

    def err(self, text: str) -> None:
        sys.stderr.write(self.scrubber.scrub(text) + "\n")
        sys.stderr.flush()

    def out(self, text: str) -> None:
        if self.stdout_closed:
            return
        try:
            sys.stdout.write(self.scrubber.scrub(text) + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            self.stdout_closed = True
            stdout_gone()


def stdout_gone() -> None:
    """The reader of stdout went away: what is still buffered, and whatever is printed
    later, goes nowhere, so that neither the command nor the interpreter's last flush
    fails. The command itself carries on and exits with its own code."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def _traceback_text(exc: BaseException) -> str:
    # Plain traceback: file, line and source only, never local variables.
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


@contextmanager
def guard(verbose: bool) -> Iterator[Session]:
    session = Session()
    try:
        yield session
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except AetherflowError as exc:
        if verbose:
            session.err(_traceback_text(exc))
        for error in getattr(exc, "errors", None) or [exc]:  # ResolutionErrors: one line each
            session.err(f"error: {error.describe()}")
        raise typer.Exit(exc.exit_code) from None
    except BrokenPipeError:
        # Output written outside Session.out (a Rich table) found its reader gone.
        stdout_gone()
        raise typer.Exit(0) from None
    except KeyboardInterrupt:
        session.err("interrupted")
        raise typer.Exit(130) from None
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if verbose:
            session.err(_traceback_text(exc))
            session.err(f"internal error: {type(exc).__name__}: {exc}")
        else:
            session.err(f"internal error: {type(exc).__name__}: {exc}\n  hint: run again with -v for the traceback")
        raise typer.Exit(1) from None
