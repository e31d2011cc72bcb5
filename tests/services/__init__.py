"""Real servers for integration tests, started from the machine's binaries.

Each module here exposes a context manager that starts one server on 127.0.0.1 in a
temporary directory and stops it on exit (``postgres_server``, ``mariadb_server``,
``sshd_server``, ``smbd_server``, ``smtp_server``, ``http_server``). The benchmarks use these context
managers directly; the tests never do: ``tests/services/plugin.py`` (registered once for
the whole suite by ``tests/conftest.py``) wraps each in one session fixture, so a full run
starts every server at most once, on first use, and says so in its summary
(``services: postgres 127.0.0.1:PORT started in 1.3 s (once)``). A server started a
second time in one session fails the run.

Adding a server (a Dask scheduler, ...):

1. ``tests/services/<name>.py``: a ``@contextlib.contextmanager`` that starts the server
   and yields a dataclass of its connection facts (``host``, ``port``, credentials, a
   ``config()`` giving the resource config). Raise :class:`ServiceUnavailable` (with an
   ``install`` hint naming ``make services``) when the binaries or libraries are
   missing; any other exception is a real failure. Call ``record_boot(kind, host, port,
   since)`` just before ``yield``. A daemon with one process can subclass
   :class:`DaemonProcess` for start, stop, kill and restart.
2. ``tests/services/plugin.py``: one session fixture, ``yield from serve(your_server)``,
   plus any cheap function-scoped fixture for per-test isolation (a fresh database, a
   directory of its own...).
3. New Debian packages go into ``SERVICE_PACKAGES`` in the Makefile.

No conftest starts a server or redefines these fixtures: ``serve`` is the one place that
turns a missing server into a skip, or into a failure under
``AETHERFLOW_REQUIRE_SERVICES=1`` (CI).
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
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

INSTALL_HINT = "install the test servers with `make services`"
TEST_EXTRAS_HINT = "install the test extras with `make .venv/.installed-test` (pip install -e '.[test]')"


def services_required() -> bool:
    return os.environ.get("AETHERFLOW_REQUIRE_SERVICES", "").strip().lower() in {"1", "true", "yes"}


def unavailable(reason: str, install: str = INSTALL_HINT):
    """Skip the test, or fail it when AETHERFLOW_REQUIRE_SERVICES=1 (CI)."""
    import pytest

    message = f"{reason}; {install}"
    if services_required():
        pytest.fail(f"required service unavailable: {message}", pytrace=False)
    pytest.skip(message)


class ServiceUnavailable(RuntimeError):
    """A server's binaries are missing or cannot run here (the caller decides: skip or fail)."""

    def __init__(self, reason: str, install: str = INSTALL_HINT):
        super().__init__(reason)
        self.install = install


def require_modules(*names: str) -> None:
    """Raise :class:`ServiceUnavailable` unless every Python module ``names`` imports."""
    for name in names:
        try:
            __import__(name)
        except ImportError:
            raise ServiceUnavailable(f"{name} is not installed", TEST_EXTRAS_HINT) from None


# -- which servers a session started -------------------------------------------------------


@dataclass
class Boot:
    kind: str
    address: str
    seconds: float
    restarts: int = 0


class Ledger:
    """The servers one pytest session booted (the plugin opens one per session)."""

    def __init__(self) -> None:
        self.boots: list[Boot] = []

    def twice(self) -> list[str]:
        """The kinds of server booted more than once."""
        kinds = [boot.kind for boot in self.boots]
        return sorted({kind for kind in kinds if kinds.count(kind) > 1})

    def lines(self) -> list[str]:
        lines = []
        for kind in dict.fromkeys(boot.kind for boot in self.boots):
            boots = [boot for boot in self.boots if boot.kind == kind]
            first = boots[0]
            line = f"{kind} {first.address} started in {first.seconds:.2f} s"
            if len(boots) == 1:
                line += " (once)"
            else:
                line += f", then {len(boots) - 1} more time(s): one session fixture per server (tests/services/plugin.py)"
            restarts = sum(boot.restarts for boot in boots)
            if restarts:
                line += f"; restarted {restarts}x by tests that stop it"
            lines.append(line)
        return lines


_ledgers: list[Ledger] = []


def open_ledger() -> Ledger:
    """Record the boots of every server started from now until ``close_ledger``."""
    book = Ledger()
    _ledgers.append(book)
    return book


def close_ledger(book: Ledger) -> None:
    _ledgers.remove(book)


def record_boot(kind: str, host: str, port: int, since: float) -> None:
    """A server of ``kind`` answers on ``host:port``, ``since`` being ``time.monotonic()``
    when its context manager began."""
    if _ledgers:
        _ledgers[-1].boots.append(Boot(kind, f"{host}:{port}", time.monotonic() - since))


def record_restart(kind: str) -> None:
    """A test stopped a server of ``kind`` and it was started again (same port, same data)."""
    if _ledgers:
        for boot in reversed(_ledgers[-1].boots):
            if boot.kind == kind:
                boot.restarts += 1
                return


# -- processes -----------------------------------------------------------------------------


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


def wait_until_listening(port: int, proc: subprocess.Popen, log: Path, what: str, greeting: bytes = b"", timeout: float = 20) -> None:
    """Wait until 127.0.0.1:``port`` accepts connections (and, with ``greeting``, sends a
    first line starting with it); fail at once, with the log's tail, if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening:\n{text}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                if not greeting:
                    return
                with contextlib.suppress(OSError):
                    if sock.recv(64).startswith(greeting):
                        return
        time.sleep(0.03)
    raise RuntimeError(f"{what} did not answer on 127.0.0.1:{port} within {timeout:.0f} s")


class DaemonProcess:
    """One server process in the foreground of a ``Popen`` (sshd, smbd): started, stopped,
    killed with every process it forked, and started again on the same port and files.

    Subclasses are dataclasses with ``port``, ``username``, ``log``, ``argv`` and ``proc``
    fields, and set ``kind`` (the name in the session summary) and ``greeting``.
    """

    kind: ClassVar[str]
    greeting: ClassVar[bytes] = b""
    port: int
    username: str
    log: Path
    argv: list[str]
    proc: subprocess.Popen | None

    def launch(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        self.wait_ready()

    def wait_ready(self) -> None:
        """Return once the server serves (override for a server that does not listen)."""
        assert self.proc is not None
        wait_until_listening(self.port, self.proc, self.log, self.kind, self.greeting)

    def start(self) -> None:
        """Start the server again after a test stopped or killed it."""
        if not self.running():
            self.launch()
            record_restart(self.kind)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """Stop the server at once (SIGKILL to it and every process it forked)."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after a grace period) and wait for it."""
        self._signal(signal.SIGTERM)

    def chown_to_user(self, path: str | os.PathLike) -> None:
        """Give ``path`` and everything below it (made by the test as root) to the
        server's user, as if the server had written it."""
        account = pwd.getpwnam(self.username)
        for root, dirs, files in os.walk(path):
            os.chown(root, account.pw_uid, account.pw_gid)
            for name in dirs + files:
                os.lchown(os.path.join(root, name), account.pw_uid, account.pw_gid)

    def _signal(self, sig: int) -> None:
        if self.proc is not None:
            stop_process_tree(self.proc, sig)
        self.proc = None
