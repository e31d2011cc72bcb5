"""Real servers for integration tests, started from the machine's binaries.

Each module here exposes a context manager that starts one server on 127.0.0.1 in a
temporary directory and stops it on exit; the ``conftest.py`` of a test package wraps
it in a session fixture. The benchmarks reuse the same context managers.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time

INSTALL_HINT = "install the test servers with `make services`"


def services_required() -> bool:
    return os.environ.get("AETHERFLOW_REQUIRE_SERVICES", "").strip().lower() in {"1", "true", "yes"}


def unavailable(reason: str, install: str = INSTALL_HINT):
    """Skip the test, or fail it when AETHERFLOW_REQUIRE_SERVICES=1 (CI)."""
    import pytest

    message = f"{reason}; {install}"
    if services_required():
        pytest.fail(f"required service unavailable: {message}", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_gone(pid: int) -> bool:
    """True when ``pid`` has exited (a zombie counts as gone; PID 1 reaps slowly here)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(") ", 1)[1].startswith("Z")
    except (FileNotFoundError, IndexError):
        return True


class ServiceUnavailable(RuntimeError):
    """A server's binaries are missing or cannot run here (the caller decides: skip or fail)."""


def find_binary(name: str, package: str) -> str:
    path = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None)
    if path is None:
        raise ServiceUnavailable(f"{package}'s {name} not found")
    return path


def descendants(pid: int) -> list[int]:
    """Every descendant process of ``pid`` (servers fork per connection)."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:
            with open(f"/proc/{parent}/task/{parent}/children", encoding="ascii") as fh:
                kids = [int(p) for p in fh.read().split()]
        except (FileNotFoundError, ProcessLookupError, ValueError):
            kids = []
        found.extend(kids)
        pending.extend(kids)
    return found


def ensure_system_user(name: str) -> pwd.struct_passwd:
    """A Unix account for a test server, created (no home, no shell) if missing."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    if os.geteuid() != 0:
        raise ServiceUnavailable(f"the Unix user {name!r} is missing and only root can create it")
    proc = subprocess.run(
        [find_binary("useradd", "passwd"), "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if proc.returncode not in (0, 9):  # 9: the user appeared meanwhile
        raise ServiceUnavailable(f"useradd {name} failed: {proc.stderr.strip()}")
    return pwd.getpwnam(name)


def stop_process_tree(proc: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` to a server and every process it forked, then make sure all are gone.

    Servers fork per connection and the children often call setsid(), so a process
    group signal would miss them: the descendants are collected first.
    """
    pids = [proc.pid, *descendants(proc.pid)]
    for pid in reversed(pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    for pid in pids[1:]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 15
    for pid in pids[1:]:
        while not process_gone(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
