"""What ``/proc`` says about processes: whether one still runs, which ones share a
process group. Linux only: where ``/proc`` is missing the readers say so (None) and
callers fall back to signals.
"""

from __future__ import annotations

import os


def _stat_fields(pid: int | str) -> list[bytes]:
    """The fields of ``/proc/PID/stat`` after the command name: state, ppid, pgrp, ...
    Raises :class:`FileNotFoundError` when the process does not exist."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        # The command name may hold spaces and parentheses: cut after its last ")".
        return fh.read().rsplit(b") ", 1)[1].split()


def process_alive(pid: int) -> bool | None:
    """Whether ``pid`` runs on this machine (a zombie has exited); None when it cannot be known."""
    if os.path.isdir("/proc/self"):
        try:
            return _stat_fields(pid)[0] != b"Z"
        except FileNotFoundError:
            return False
        except (OSError, IndexError):
            return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return None
    return True


def group_members(pgid: int) -> list[int] | None:
    """Live (non-zombie) processes of process group ``pgid``; None where /proc is missing."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    members = []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            fields = _stat_fields(entry)
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            members.append(int(entry))
    return members
