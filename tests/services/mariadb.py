"""A throwaway MariaDB server for tests and benchmarks.

``mariadb_server()`` creates the system tables in a temporary directory with
``mariadbd --bootstrap`` (only the tables a server needs: no help tables, no ``sys``
schema, which make ``mariadb-install-db`` several times slower), adds a login user with a
password that may connect from 127.0.0.1 and a utf8mb4 database it owns, starts the
server on a free port of 127.0.0.1, and stops it and removes everything on exit,
whatever happened.

mariadbd refuses to run as root: when the tests run as root it runs as the ``mysql``
user (``--user=mysql``) and the temporary directory is given to that user. Durability is
switched off (``innodb_flush_log_at_trx_commit=0``, no doublewrite buffer, no binary
log): the data is thrown away anyway.
"""

from __future__ import annotations

import contextlib
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
from typing import ClassVar

from . import DaemonProcess, ServiceUnavailable, find_binary, free_port, record_boot, wait_until_listening

INSTALL = "install MariaDB with `make services` (apt-get install -y mariadb-server)"
TEST_PASSWORD = "M4ria-S3cr3t-xyz"
_SYSTEM_SQL = ("mysql_system_tables.sql", "mysql_performance_tables.sql", "mysql_system_tables_data.sql")
# What every start shares: small logs and buffers, nothing synced, utf8mb4 throughout.
_SERVER_OPTIONS = (
    "--innodb-log-file-size=16M",
    "--innodb-buffer-pool-size=128M",
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-doublewrite=0",
    "--skip-log-bin",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_unicode_ci",
)


@dataclass
class MariaDBServer(DaemonProcess):
    kind: ClassVar[str] = "mariadb"

    host: str
    port: int
    user: str  # the login of the tests (``username`` is the Unix account running mariadbd)
    password: str = field(repr=False)
    database: str
    data_dir: Path
    socket: Path
    username: str
    log: Path
    argv: list[str] = field(default_factory=list, repr=False)
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def config(self, **overrides) -> dict:
        """A ``db/mysql`` resource config reaching the server over TCP with a password."""
        return {"host": self.host, "port": self.port, "user": self.user, "password": self.password, "database": self.database, **overrides}

    def url(self, database: str | None = None, driver: str = "pymysql") -> str:
        """A SQLAlchemy URL of the server (password included)."""
        return f"mysql+{driver}://{self.user}:{self.password}@{self.host}:{self.port}/{database or self.database}?charset=utf8mb4"

    def client_argv(self, *args: str, database: str | None = None) -> list[str]:
        """The ``mariadb`` command-line client as the test user over TCP (password in
        ``MYSQL_PWD``, see :meth:`client_env`)."""
        client = shutil.which("mariadb") or shutil.which("mysql") or "mariadb"
        return [client, "--no-defaults", "--default-character-set=utf8mb4", "-h", self.host, "-P", str(self.port), "-u", self.user,
                database or self.database, *args]

    def client_env(self) -> dict[str, str]:
        return {**os.environ, "MYSQL_PWD": self.password}

    def admin(self, sql: str) -> None:
        """Run ``sql`` as root over the unix socket (root has no password and no TCP login)."""
        client = shutil.which("mariadb") or shutil.which("mysql") or "mariadb"
        argv = [client, "--no-defaults", "--default-character-set=utf8mb4", "-S", str(self.socket), "-u", "root", "-e", sql]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"mariadb -e failed: {proc.stderr.strip()}")

    @contextlib.contextmanager
    def fresh_database(self) -> Iterator[str]:
        """A new, empty utf8mb4 database, dropped afterwards; yields its name."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.admin(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        try:
            yield name
        finally:
            self.admin(f"DROP DATABASE IF EXISTS `{name}`")

    def wait_ready(self) -> None:
        assert self.proc is not None
        wait_until_listening(self.port, self.proc, self.log, self.kind, timeout=60)


def _bootstrap(mariadbd: str, data_dir: Path, runas: list[str], user: str, password: str, database: str) -> None:
    share = Path("/usr/share/mysql")
    missing = [name for name in _SYSTEM_SQL if not (share / name).is_file()]
    if missing:
        raise ServiceUnavailable(f"MariaDB's system table scripts are missing ({', '.join(missing)} in {share})", INSTALL)
    quoted = password.replace("\\", "\\\\").replace("'", "\\'")
    script = "\n".join(
        [
            "CREATE DATABASE IF NOT EXISTS mysql;",
            "USE mysql;",
            "SET @auth_root_socket=NULL;",
            *((share / name).read_text() for name in _SYSTEM_SQL),
            # Bootstrap mode skips the grant tables until they are loaded.
            "FLUSH PRIVILEGES;",
            f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{quoted}';",
            f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;",
            f"GRANT ALL PRIVILEGES ON *.* TO '{user}'@'127.0.0.1';",
            "",
        ]
    )
    proc = subprocess.run(
        [mariadbd, "--no-defaults", "--bootstrap", "--silent-startup", f"--datadir={data_dir}", *runas,
         "--log-warnings=0", "--enforce-storage-engine=", *_SERVER_OPTIONS],
        input=script,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"mariadbd --bootstrap failed ({proc.returncode}): {proc.stdout}{proc.stderr}")


@contextlib.contextmanager
def mariadb_server(
    *, user: str = "aetherflow", password: str = TEST_PASSWORD, database: str = "aetherflow_test"
) -> Iterator[MariaDBServer]:
    """Start a private MariaDB; yield its connection facts; always stop and clean up."""
    since = time.monotonic()
    try:
        mariadbd = find_binary("mariadbd", "mariadb-server")
    except ServiceUnavailable as exc:
        raise ServiceUnavailable(str(exc), INSTALL) from None
    if shutil.which("mariadb") is None and shutil.which("mysql") is None:
        raise ServiceUnavailable("the mariadb command-line client is missing", INSTALL)
    runas: list[str] = []
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("mysql")
        except KeyError:
            raise ServiceUnavailable("running as root and there is no 'mysql' user to run the server", INSTALL) from None
        runas = ["--user=mysql"]

    tmp = Path(tempfile.mkdtemp(prefix="aetherflow-mariadb-"))
    data_dir = tmp / "data"
    data_dir.mkdir()
    if owner is not None:
        for path in (tmp, data_dir):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    os.chmod(tmp, 0o700)
    port = free_port()
    socket = tmp / "mariadb.sock"
    server = MariaDBServer(
        host="127.0.0.1",
        port=port,
        user=user,
        password=password,
        database=database,
        data_dir=data_dir,
        socket=socket,
        username=owner.pw_name if owner is not None else pwd.getpwuid(os.geteuid()).pw_name,
        log=tmp / "server.log",
        argv=[
            mariadbd, "--no-defaults", f"--datadir={data_dir}", *runas, f"--port={port}", "--bind-address=127.0.0.1",
            f"--socket={socket}", f"--pid-file={tmp / 'mariadb.pid'}", "--skip-name-resolve", "--performance-schema=OFF",
            "--max-connections=60", *_SERVER_OPTIONS,
        ],
    )
    try:
        _bootstrap(mariadbd, data_dir, runas, user, password, database)
        server.launch()
        record_boot(server.kind, server.host, server.port, since)
        yield server
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
