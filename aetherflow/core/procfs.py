"""What ``/proc`` says about processes: whether one still runs, which ones share a
process group; and stopping a process group. Linux only: where ``/proc`` is missing
the readers say so (None) and callers fall back to signals.
"""

from __future__ import annotations

import os
import signal
import time


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


def _live_processes() -> list[tuple[int, list[bytes]]] | None:
    """``(pid, stat fields)`` of every live (non-zombie) process; None where /proc is missing."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    found = []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            fields = _stat_fields(entry)
        except (OSError, IndexError):
            continue
        if len(fields) > 3 and fields[0] != b"Z":
            found.append((int(entry), fields))
    return found


def group_members(pgid: int) -> list[int] | None:
    """Live (non-zombie) processes of process group ``pgid``; None where /proc is missing."""
    processes = _live_processes()
    return None if processes is None else [pid for pid, fields in processes if int(fields[2]) == pgid]


def session_alive(sid: int) -> bool | None:
    """Whether a process of the session ``sid`` (a command started in a session of its
    own, whose leader's pid is also its process group) still runs; None without /proc.
    The session is checked too, so a reused id is not taken for the old group."""
    processes = _live_processes()
    if processes is None:
        return None
    return any(int(fields[2]) == sid and int(fields[3]) == sid for _pid, fields in processes)


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still runs (signals tell where /proc is missing)."""
    members = group_members(pgid)
    if members is not None:
        return bool(members)
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to process group ``pgid``; nothing if it is gone."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_group_gone(pgid: int, seconds: float) -> bool:
    end = time.monotonic() + seconds
    delay = 0.005
    while group_alive(pgid):
        if time.monotonic() >= end:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return True


def stop_process_group(pgid: int, grace_seconds: float) -> str:
    """SIGTERM the group, SIGKILL whatever is left after the grace period.

    Returns ``"terminated"`` or ``"killed"``, what it took.
    """
    signal_group(pgid, signal.SIGTERM)
    if _wait_group_gone(pgid, grace_seconds):
        return "terminated"
    signal_group(pgid, signal.SIGKILL)
    _wait_group_gone(pgid, 5.0)
    return "killed"
