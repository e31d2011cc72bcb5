"""A throwaway OpenSSH ``sshd`` serving SFTP, for tests and benchmarks.

``sshd_server()`` writes a private ``sshd_config`` in a temporary directory with its
own ed25519 host key, authorized keys and pid file, listens on a free port of
127.0.0.1, lets only the test user in (password or key), and serves nothing but
``internal-sftp`` started in a data directory of that temporary directory (so
relative SFTP paths land there). It stops the server, and every session process it
forked, on exit, whatever happened.

Facts this relies on (see SERVICES.md): sshd wants ``/run/sshd`` and an absolute
path; with ``UsePAM no`` the user needs a real password (a locked account is
refused); ``StrictModes no`` because the keys live in a temporary directory; the
user must be able to read the authorized keys file, so the directories are 0755.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from . import DaemonProcess, ServiceUnavailable, ensure_system_user, find_binary, free_port, record_boot

INSTALL = "install OpenSSH with `make services` (apt-get install -y openssh-server openssh-client)"
TEST_USER = "aetherflow-sftp"
TEST_PASSWORD = "S3cr3t-Pa55-xyz"
KEY_PASSPHRASE = "K3y-Pa55phrase-xyz"
SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class ClientKey:
    """A client key pair in OpenSSH format; ``passphrase`` is None for a plain key."""

    path: Path
    public_line: str
    passphrase: str | None = field(default=None, repr=False)


@dataclass
class SshServer(DaemonProcess):
    kind: ClassVar[str] = "sshd"
    greeting: ClassVar[bytes] = b"SSH-"

    host: str
    port: int
    username: str
    password: str = field(repr=False)
    #: ed25519 key without passphrase, ed25519 and RSA keys with ``KEY_PASSPHRASE``.
    key: ClientKey
    encrypted_key: ClientKey
    rsa_key: ClientKey
    host_key_line: str  # "ssh-ed25519 AAAA..." as in the host's .pub file
    host_key_fingerprint: str  # "SHA256:..." as ``ssh-keygen -l`` prints it
    known_hosts: Path  # a known_hosts file naming this server
    data_dir: Path  # where the SFTP session starts; owned by the test user
    base: Path
    log: Path
    argv: list[str] = field(default_factory=list, repr=False)
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def config(self, **overrides) -> dict:
        """An ``sftp/paramiko`` config for this server: password auth, known_hosts."""
        config = {
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "known_hosts": str(self.known_hosts),
        }
        config.update(overrides)
        return {k: v for k, v in config.items() if v is not None}

    def sftp_batch_argv(self, batch_file: str | os.PathLike) -> list[str]:
        """OpenSSH's ``sftp -b`` against this server: key auth, strict host key check,
        no user configuration (the benchmark baseline)."""
        return [
            shutil.which("sftp") or "/usr/bin/sftp",
            "-F", "/dev/null",
            "-b", str(batch_file),
            "-i", str(self.key.path),
            "-P", str(self.port),
            "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes",
            "-o", "IdentityAgent=none",
            f"{self.username}@{self.host}",
        ]


def _run(argv: list[str], what: str, input: str | None = None) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, input=input)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
    return proc.stdout


def _ensure_user(name: str, password: str) -> pwd.struct_passwd:
    """The test user, created if missing, with ``password`` set (sshd refuses locked
    accounts when PAM is off). Its shell is nologin: the server only offers SFTP."""
    account = ensure_system_user(name)
    _run([find_binary("chpasswd", "passwd")], "chpasswd", input=f"{name}:{password}\n")
    return account


def fingerprint_of(pub_file: Path) -> str:
    """``SHA256:...`` of a public key file, as ``ssh-keygen -l`` prints it."""
    out = _run([find_binary("ssh-keygen", "OpenSSH"), "-l", "-E", "sha256", "-f", str(pub_file)], "ssh-keygen -l")
    return out.split()[1]


def _keygen(path: Path, kind: str, passphrase: str | None, bits: int | None = None) -> ClientKey:
    argv = [find_binary("ssh-keygen", "OpenSSH"), "-q", "-t", kind, "-N", passphrase or "", "-C", f"aetherflow-test-{kind}", "-f", str(path)]
    if bits:
        argv[2:2] = ["-b", str(bits)]
    _run(argv, f"ssh-keygen -t {kind}")
    return ClientKey(path=path, public_line=path.with_suffix(".pub").read_text().strip(), passphrase=passphrase)


def _write_config(base: Path, port: int, user: str, data_dir: Path, host_key: Path, keys_dir: Path) -> Path:
    conf = base / "sshd_config"
    conf.write_text(
        f"""Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {base / 'sshd.pid'}
AuthorizedKeysFile {keys_dir}/%u
StrictModes no
UsePAM no
PasswordAuthentication yes
PubkeyAuthentication yes
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers {user}
UseDNS no
MaxStartups 50:30:100
MaxSessions 50
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PermitTTY no
LogLevel INFO
Subsystem sftp internal-sftp -d {data_dir}
ForceCommand internal-sftp -d {data_dir}
""",
        encoding="utf-8",
    )
    return conf


@contextlib.contextmanager
def sshd_server(*, user: str = TEST_USER, password: str = TEST_PASSWORD) -> Iterator[SshServer]:
    """Start a private sshd; yield its connection facts; always stop and clean up."""
    since = time.monotonic()
    if not os.access(SSHD, os.X_OK):
        raise ServiceUnavailable(f"{SSHD} not found", INSTALL)
    if os.geteuid() != 0:
        raise ServiceUnavailable("the test sshd runs as root (it switches to the test user)", INSTALL)
    account = _ensure_user(user, password)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)

    base = Path(tempfile.mkdtemp(prefix="aetherflow-sshd-"))
    os.chmod(base, 0o755)
    server: SshServer | None = None
    try:
        keys_dir = base / "keys"
        client_dir = base / "client"
        data_dir = base / "data"
        for path in (keys_dir, client_dir, data_dir):
            path.mkdir(mode=0o755)
        os.chown(data_dir, account.pw_uid, account.pw_gid)

        host_key = base / "ssh_host_ed25519_key"
        _keygen(host_key, "ed25519", None)
        host_key_line = " ".join(host_key.with_suffix(".pub").read_text().split()[:2])
        plain = _keygen(client_dir / "id_ed25519", "ed25519", None)
        encrypted = _keygen(client_dir / "id_ed25519_pass", "ed25519", KEY_PASSPHRASE)
        rsa = _keygen(client_dir / "id_rsa_pass", "rsa", KEY_PASSPHRASE, bits=2048)
        authorized = keys_dir / user
        authorized.write_text("\n".join(k.public_line for k in (plain, encrypted, rsa)) + "\n")
        os.chmod(authorized, 0o644)

        port = free_port()
        known_hosts = client_dir / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{port} {host_key_line}\n")
        conf = _write_config(base, port, user, data_dir, host_key, keys_dir)
        _run([SSHD, "-t", "-f", str(conf)], "sshd -t")

        server = SshServer(
            host="127.0.0.1",
            port=port,
            username=user,
            password=password,
            key=plain,
            encrypted_key=encrypted,
            rsa_key=rsa,
            host_key_line=host_key_line,
            host_key_fingerprint=fingerprint_of(host_key.with_suffix(".pub")),
            known_hosts=known_hosts,
            data_dir=data_dir,
            base=base,
            log=base / "sshd.log",
            argv=[SSHD, "-D", "-e", "-f", str(conf)],
        )
        server.launch()
        record_boot(server.kind, server.host, port, since)
        yield server
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)

