"""Fixtures for the state, resume and lock tests: both backends, "hosts", flow files.

``backend`` runs a test against SQLite (the default state file under
AETHERFLOW_STATE_ROOT) and against the session's PostgreSQL server (a fresh database per
test, ``pg_database`` from tests/services/plugin.py, reached over TCP with a password). A :class:`Host` is one runner's view of the world:
its own working directory and AETHERFLOW_WORK_ROOT; with PostgreSQL two hosts share
only the state, as two machines would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import CliResult, base_env, run_cli
from tests.services import process_gone

PLUGINS = Path(__file__).parent / "plugins"


@dataclass
class Backend:
    name: str
    root: Path
    dsn: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def state_yaml(self) -> str | None:
        """The ``flow.state`` block (None: the default SQLite file under AETHERFLOW_STATE_ROOT)."""
        if self.name == "postgres":
            return '{backend: postgres, dsn: "{{ env.AF_STATE_DSN }}"}'
        return None

    @property
    def sqlite_path(self) -> Path:
        return self.root / "state" / "state.db"

    def open(self):
        from aetherflow.core.state import open_state_store

        if self.name == "postgres":
            return open_state_store("postgres", dsn=self.dsn)
        return open_state_store("sqlite", path=str(self.sqlite_path))

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check`` of the SQLite file (PostgreSQL: 'ok' when it answers)."""
        if self.name == "postgres":
            store = self.open()
            try:
                store.list_runs(limit=1)
            finally:
                store.close()
            return "ok"
        import sqlite3

        if not self.sqlite_path.exists():
            return "ok"  # killed before the state file was created: nothing to be corrupt
        conn = sqlite3.connect(f"file:{self.sqlite_path}?mode=rw", uri=True)
        try:
            return conn.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            conn.close()


def postgres_backend(dsn: str, root: Path) -> Backend:
    return Backend("postgres", root, dsn=dsn, env={"AF_STATE_DSN": dsn})


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", tmp_path)
    return postgres_backend(request.getfixturevalue("pg_database"), tmp_path)


@pytest.fixture
def pg_backend(pg_database, tmp_path) -> Backend:
    return postgres_backend(pg_database, tmp_path)


@dataclass
class Host:
    """One runner: its own cwd and work root; the state is the backend's."""

    name: str
    root: Path
    env: dict[str, str]

    @property
    def work_root(self) -> Path:
        return self.root / "work"

    def run(self, *args: str, timeout: float = 120) -> CliResult:
        return run_cli(*args, env=self.env, cwd=self.root, timeout=timeout)

    def spawn(self, *args: str) -> subprocess.Popen:
        """Start ``aetherflow ARGS`` without waiting; output goes to files in the host dir."""
        tag = uuid.uuid4().hex[:6]
        out = open(self.root / f"out-{tag}.txt", "w")
        err = open(self.root / f"err-{tag}.txt", "w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "aetherflow.cli", *map(str, args)],
            cwd=self.root,
            env=self.env,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
        out.close()
        err.close()
        proc.out_path = self.root / f"out-{tag}.txt"  # type: ignore[attr-defined]
        proc.err_path = self.root / f"err-{tag}.txt"  # type: ignore[attr-defined]
        return proc


def make_host(backend: Backend, name: str, **extra: str) -> Host:
    root = backend.root / name
    root.mkdir(parents=True, exist_ok=True)
    env = base_env(
        None,
        AETHERFLOW_WORK_ROOT=str(root / "work"),
        AETHERFLOW_STATE_ROOT=str(backend.root / "state"),
        AETHERFLOW_PLUGIN_PATHS=str(PLUGINS),
        **backend.env,
        **extra,
    )
    return Host(name, root, env)


@pytest.fixture
def hosts(backend) -> tuple[Host, Host]:
    """Two runners. With SQLite they share the machine's state file; with PostgreSQL, the server."""
    return make_host(backend, "host-a"), make_host(backend, "host-b")


def flow_yaml(flow_id: str, jobs: str, *, state: str | None = None, lock: str | None = None) -> str:
    head = f"version: 1\nflow:\n  id: {flow_id}\n"
    if state:
        head += f"  state: {state}\n"
    if lock:
        head += f"  lock: {lock}\n"
    return head + "jobs:\n" + textwrap.indent(textwrap.dedent(jobs).strip("\n"), "  ") + "\n"


def write_flow_for(hosts: tuple[Host, ...], name: str, text: str) -> str:
    """The same flow file in each host's working directory; returns its relative name."""
    for host in hosts:
        (host.root / name).write_text(text, encoding="utf-8")
    return name


def wait_for(predicate, timeout: float = 30, interval: float = 0.005, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def kill9(proc: subprocess.Popen) -> int:
    try:
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    code = proc.wait(timeout=30)
    wait_for(lambda: process_gone(proc.pid), what=f"pid {proc.pid} to be gone")
    return code
