"""A throwaway Samba ``smbd`` for tests and benchmarks.

``smbd_server()`` writes a private ``smb.conf`` in a temporary directory (every state,
lock, cache, pid and private directory and the tdbsam password database inside it),
serves one writable share from that directory on a free port of 127.0.0.1, gives a
Unix test user a Samba password, starts ``smbd --foreground`` and stops it on exit,
whatever happened.

``smbd`` is never started with ``--no-process-group``: with it, stopping smbd signals
the caller's whole process group, the test runner included.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from . import DaemonProcess, ServiceUnavailable, ensure_system_user, find_binary, free_port, record_boot

INSTALL = "install Samba with `make services` (apt-get install -y samba smbclient)"
TEST_USER = "aetherflow-smb"
TEST_PASSWORD = "S3cr3t-Pa55-xyz"
SHARE = "share"


@dataclass
class SmbServer(DaemonProcess):
    kind: ClassVar[str] = "smbd"

    server: str
    port: int
    share: str
    username: str
    password: str = field(repr=False)
    share_dir: Path
    conf: Path
    log: Path
    argv: list[str] = field(default_factory=list, repr=False)
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def config(self, **overrides) -> dict:
        """An ``smb/smbprotocol`` resource config for this server."""
        config = {
            "server": self.server,
            "port": self.port,
            "share": self.share,
            "username": self.username,
            "password": self.password,
        }
        config.update(overrides)
        return config

    def smbclient_argv(self, command: str) -> list[str]:
        """Samba's ``smbclient`` running ``command`` on the share (the benchmark baseline)."""
        return [
            shutil.which("smbclient") or "/usr/bin/smbclient",
            f"//{self.server}/{self.share}",
            "-p", str(self.port),
            "-U", f"{self.username}%{self.password}",
            "-s", str(self.conf),
            "-m", "SMB3",
            "-c", command,
        ]


def _write_conf(base: Path, port: int, user: str, share_dir: Path) -> Path:
    dirs = {key: base / key for key in ("private", "lock", "state", "cache", "pid", "ncalrpc", "bind-dns", "usershares")}
    for path in dirs.values():
        path.mkdir(mode=0o755)
    conf = base / "smb.conf"
    conf.write_text(
        f"""[global]
    server role = standalone server
    workgroup = AETHERFLOW
    smb ports = {port}
    interfaces = 127.0.0.1
    bind interfaces only = yes
    disable netbios = yes
    load printers = no
    printing = bsd
    printcap name = /dev/null
    disable spoolss = yes
    server min protocol = SMB2_10
    passdb backend = tdbsam:{dirs['private']}/passdb.tdb
    private dir = {dirs['private']}
    lock directory = {dirs['lock']}
    state directory = {dirs['state']}
    cache directory = {dirs['cache']}
    pid directory = {dirs['pid']}
    ncalrpc dir = {dirs['ncalrpc']}
    binddns dir = {dirs['bind-dns']}
    usershare path = {dirs['usershares']}
    max log size = 0
    log level = 1
    map to guest = never
    restrict anonymous = 2
    server signing = auto
    smb encrypt = if_required

[{SHARE}]
    path = {share_dir}
    read only = no
    browseable = yes
    force user = {user}
    create mask = 0644
    directory mask = 0755
""",
        encoding="utf-8",
    )
    return conf


@contextlib.contextmanager
def smbd_server(*, user: str = TEST_USER, password: str = TEST_PASSWORD) -> Iterator[SmbServer]:
    """Start a private smbd; yield its connection facts; always stop and clean up."""
    since = time.monotonic()
    smbd = find_binary("smbd", "Samba")
    smbpasswd = find_binary("smbpasswd", "Samba")
    if os.geteuid() != 0:
        raise ServiceUnavailable("the test smbd runs as root (it switches to the share's forced user)", INSTALL)
    account = ensure_system_user(user)

    base = Path(tempfile.mkdtemp(prefix="aetherflow-smbd-"))
    os.chmod(base, 0o755)
    share_dir = base / "share"
    share_dir.mkdir()
    os.chown(share_dir, account.pw_uid, account.pw_gid)
    port = free_port()
    conf = _write_conf(base, port, user, share_dir)
    server = SmbServer(
        server="127.0.0.1",
        port=port,
        share=SHARE,
        username=user,
        password=password,
        share_dir=share_dir,
        conf=conf,
        log=base / "smbd.out",
        argv=[smbd, "--foreground", f"--configfile={conf}", "--debug-stdout"],
    )
    try:
        proc = subprocess.run(
            [smbpasswd, "-c", str(conf), "-s", "-a", user],
            input=f"{password}\n{password}\n",
            capture_output=True,
            text=True,
            timeout=30,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"smbpasswd failed: {proc.stdout}{proc.stderr}")
        server.launch()
        record_boot(server.kind, server.server, port, since)
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
