"""A throwaway PostgreSQL server for tests and benchmarks.

``postgres_server()`` runs ``initdb`` in a temporary directory, starts the server on a
free port of 127.0.0.1 with its unix socket in the same directory, creates a login
role with a password (scram-sha-256 over TCP, so password tests are real) and a
database it owns, and stops and removes everything on exit, whatever happened.

``initdb`` refuses to run as root: when the tests run as root, the binaries run as the
``postgres`` user (``runuser -u postgres --``) and the temporary directory is given to
that user. Durability is switched off (``fsync``, ``synchronous_commit``,
``full_page_writes``): the data is thrown away anyway.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import ServiceUnavailable, free_port, process_gone, record_boot, record_restart

INSTALL = "install PostgreSQL with `make services` (apt-get install -y postgresql)"
TEST_PASSWORD = "S3cr3t-Pa55-xyz"


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    dbname: str
    socket_dir: str
    data_dir: str
    bin_dir: str
    _runas: list[str] = field(default_factory=list, repr=False)
    _log: str = field(default="", repr=False)

    @property
    def superuser_conninfo(self) -> str:
        """Over the unix socket, as the ``postgres`` superuser (trust auth, local only)."""
        return f"host={self.socket_dir} port={self.port} user=postgres dbname=postgres"

    @contextlib.contextmanager
    def fresh_database(self) -> Iterator[str]:
        """A new, empty database owned by the test role, dropped afterwards; yields its
        URL (with the password)."""
        import psycopg
        from psycopg import sql

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.superuser_conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(self.user)))
        try:
            yield self.url(dbname=name)
        finally:
            with psycopg.connect(self.superuser_conninfo, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def config(self, **overrides) -> dict:
        """A ``db/postgres`` resource config reaching the server over TCP with a password."""
        config = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": self.dbname,
        }
        config.update(overrides)
        return config

    def url(self, dbname: str | None = None) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{dbname or self.dbname}"

    def psql_argv(self, command: str) -> list[str]:
        """``psql`` running ``command`` as the test user over TCP (password via PGPASSWORD)."""
        psql = shutil.which("psql") or os.path.join(self.bin_dir, "psql")
        return [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.host, "-p", str(self.port),
                "-U", self.user, "-d", self.dbname, "-c", command]

    def psql_env(self) -> dict[str, str]:
        return {**os.environ, "PGPASSWORD": self.password}

    def running(self) -> bool:
        pid = _postmaster_pid(self.data_dir)
        return pid is not None and not process_gone(pid)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate`` drops every connection at once)."""
        pid = _postmaster_pid(self.data_dir)
        if pid is None:
            return
        subprocess.run(
            [*self._runas, os.path.join(self.bin_dir, "pg_ctl"), "-D", self.data_dir, "-m", mode, "-w", "stop"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        deadline = time.monotonic() + 30
        while not process_gone(pid) and time.monotonic() < deadline:
            time.sleep(0.02)

    def start(self) -> None:
        """Start the server again, after a test stopped it (same port, socket and data)."""
        if not self.running():
            self._launch()
            record_restart("postgres")

    def _launch(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.socket_dir}",
                "-c listen_addresses=127.0.0.1",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=40",
                "-c shared_buffers=64MB",
            ]
        )
        proc = subprocess.run(
            [*self._runas, os.path.join(self.bin_dir, "pg_ctl"), "-D", self.data_dir, "-l", self._log,
             "-o", options, "-w", "-t", "60", "start"],
            capture_output=True,
            text=True,
            timeout=90,
        )
        if proc.returncode != 0:
            log = Path(self._log).read_text(errors="replace") if os.path.exists(self._log) else ""
            raise RuntimeError(f"pg_ctl start failed: {proc.stdout}{proc.stderr}\n{log[-2000:]}")


def find_bin_dir() -> str:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has initdb and pg_ctl."""
    candidates = [
        os.path.dirname(path)
        for path in glob.glob("/usr/lib/postgresql/*/bin/initdb")
        if os.access(os.path.join(os.path.dirname(path), "pg_ctl"), os.X_OK)
    ]
    if not candidates:
        raise ServiceUnavailable("PostgreSQL binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin", INSTALL)

    def version(path: str) -> tuple[int, ...]:
        number = Path(path).parent.name
        return tuple(int(p) for p in number.split(".") if p.isdigit())

    return max(candidates, key=version)


def _postmaster_pid(data_dir: str) -> int | None:
    try:
        with open(os.path.join(data_dir, "postmaster.pid"), encoding="ascii") as fh:
            return int(fh.readline().strip())
    except (FileNotFoundError, ValueError, PermissionError):
        return None


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")


@contextlib.contextmanager
def postgres_server(
    *, user: str = "aetherflow", password: str = TEST_PASSWORD, dbname: str = "aetherflow_test"
) -> Iterator[PostgresServer]:
    """Start a private PostgreSQL; yield its connection facts; always stop and clean up."""
    since = time.monotonic()
    bin_dir = find_bin_dir()
    runas: list[str] = []
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise ServiceUnavailable("running as root and there is no 'postgres' user to run the server", INSTALL) from None
        runas = ["runuser", "-u", "postgres", "--"]

    tmp = tempfile.mkdtemp(prefix="aetherflow-pg-")
    data_dir = os.path.join(tmp, "data")
    socket_dir = os.path.join(tmp, "sock")
    os.makedirs(socket_dir)
    if owner is not None:
        for path in (tmp, socket_dir):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    os.chmod(tmp, 0o700)

    server = PostgresServer(
        host="127.0.0.1",
        port=free_port(),
        user=user,
        password=password,
        dbname=dbname,
        socket_dir=socket_dir,
        data_dir=data_dir,
        bin_dir=bin_dir,
        _runas=runas,
        _log=os.path.join(tmp, "server.log"),
    )
    try:
        _run(
            [*runas, os.path.join(bin_dir, "initdb"), "-D", data_dir, "-U", "postgres", "-E", "UTF8",
             "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"],
            "initdb",
        )
        server._launch()
        _create_role_and_database(server)
        record_boot("postgres", server.host, server.port, since)
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(tmp, ignore_errors=True)


def _create_role_and_database(server: PostgresServer) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(server.superuser_conninfo, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(server.user), sql.Literal(server.password))
        )
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(server.dbname), sql.Identifier(server.user)))
