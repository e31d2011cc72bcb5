"""The ``aetherflow`` command line. :func:`main` is the program; the commands are in
:mod:`.main`."""

from __future__ import annotations

import signal
import sys


class Stopped(BaseException):
    """SIGINT/SIGTERM arrived before a run had its own handlers (or after it removed
    them). A BaseException, so no ``except Exception`` takes it for a failure; a run
    that is already recorded still closes its state on the way out."""

    def __init__(self, signum: int):
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


def _stop(signum: int, frame) -> None:
    raise Stopped(signum)


def main() -> None:
    """SIGINT/SIGTERM are handled from the first instruction, before anything slow is
    imported: the program then ends with exit code 130 (as an interrupted run does)
    instead of dying from the signal with nothing written."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # nohup and '&' in a shell without job control
        signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        from .main import main as commands

        commands()
    except Stopped as exc:
        sys.stderr.write(f"{exc}\n")
        sys.stderr.flush()
        raise SystemExit(130) from None
