"""``sftp/paramiko``: files on an SSH server through paramiko.

Security: the server's host key is verified before any credential is sent, against a
pinned fingerprint (``host_key_fingerprint``) and/or a ``known_hosts`` file. Nothing
is read implicitly — not ``~/.ssh/known_hosts``, not the SSH agent, not default key
files — so a flow means the same on every machine; point ``known_hosts`` at
``~/.ssh/known_hosts`` to use it. An unknown key is refused unless
``accept_unknown_host_keys`` is set; a key that contradicts a pin or a known_hosts
entry is always refused.

Speed (benchmarks/bench_sftp.py): AES-GCM is preferred over paramiko's default
AES-CTR + HMAC; requests are 128 KiB when the server announces it accepts them
(OpenSSH does), else paramiko's 32 KiB; downloads use paramiko's read-ahead (every
read request in flight at once, with a fix for its race, see ``_guard_prefetch``);
uploads use pipelined writes fed in 1 MiB pieces.

Paths are relative to the login directory unless absolute; uploads go to a hidden
temporary name beside the target, are checked for size and renamed into place.

One SSH connection per connector; each concurrent operation gets its own SFTP
channel from a small pool, so the connector can be shared between threads.
"""

from __future__ import annotations

import errno
import logging
import os
import posixpath
import pwd
import socket
import stat as stat_module
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any

from ...atomic import atomic_open
from ...cancel import current_cancel
from ...errors import ConnectorConfigError, ConnectorError, ConnectorTimeout
from ..base import Classification, ProgressCallback
from ..families.files import CHUNK_SIZE, RemoteFile, RemoteFilesConnector, join_path, name_matches, temp_name
from ..schema import Field

log = logging.getLogger("aetherflow.connectors.sftp")


class _OnlyWhenDebugging(logging.Filter):
    """paramiko's own messages repeat what our errors already say, and log tracebacks
    (a handshake timeout prints one at ERROR level): shown only at debug level (-v)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return log.isEnabledFor(logging.DEBUG)


#: paramiko's transport messages, below our logger so the run's logging setup formats
#: and scrubs them, instead of Python's last-resort handler printing them raw.
paramiko_log = logging.getLogger(f"{log.name}.paramiko")
paramiko_log.addFilter(_OnlyWhenDebugging())

#: SFTP read/write request size for servers that do not announce their limits
#: (paramiko's default, which every server accepts).
BLOCK_SIZE = 32768

#: Request size used when the server announces larger limits (OpenSSH's
#: ``limits@openssh.com``: 255 KiB). 128 KiB moved the most bytes per second over
#: loopback in both directions; 32 KiB requests left downloads at ~0.6x OpenSSH.
LARGE_BLOCK_SIZE = 128 * 1024

#: Ciphers tried first, in order, when the installed paramiko offers them: in
#: paramiko, AES-GCM needs no separate HMAC pass and moved the most bytes per second.
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


def expand_home(path: str) -> str:
    """``~`` and ``~user`` expanded from the password database, never from ``$HOME``."""
    if not path.startswith("~"):
        return path
    head, sep, rest = path[1:].partition("/")
    try:
        home = pwd.getpwnam(head).pw_dir if head else pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return path
    return home + (sep + rest if sep else "")


def normalize_fingerprint(text: str) -> str:
    """``SHA256:<base64>`` (padding dropped) or ``MD5:<hex:hex...>`` (lower case)."""
    value = str(text).strip()
    algo, sep, digest = value.partition(":")
    if not sep:
        raise ValueError(value)
    algo = algo.upper()
    if algo == "SHA256" and digest:
        return "SHA256:" + digest.rstrip("=")
    if algo == "MD5" and digest:
        return "MD5:" + digest.lower()
    raise ValueError(value)


def fingerprints_of(key: Any) -> set[str]:
    md5 = ":".join(f"{b:02x}" for b in key.get_fingerprint())
    return {key.fingerprint, f"MD5:{md5}"}


class _Session:
    """One SSH transport and a pool of idle SFTP channels on it."""

    def __init__(self, transport: Any, timeout: float):
        self.transport = transport
        self.timeout = timeout
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self.read_size: int | None = None
        self.write_size: int | None = None

    def checkout(self) -> Any:
        import paramiko

        with self._lock:
            while self._idle:
                client = self._idle.pop()
                if not client.get_channel().closed:
                    return client
        client = paramiko.SFTPClient.from_transport(self.transport)
        if client is None:
            raise ConnectionError("the server refused to open an SFTP channel")
        client.get_channel().settimeout(self.timeout)
        if self.read_size is None:
            self.read_size, self.write_size = _request_sizes(client)
        client.af_read_size, client.af_write_size = self.read_size, self.write_size
        return client

    def checkin(self, client: Any) -> None:
        with self._lock:
            self._idle.append(client)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for client in idle:
            with suppress(Exception):
                client.close()
        self.transport.close()


class SFTPConnector(RemoteFilesConnector):
    kind = "sftp"
    driver = "paramiko"
    summary = "SFTP files over SSH via paramiko"
    config_schema = {
        "host": Field(str, required=True, help="server name or address"),
        "port": Field(int, default=22, help="SSH port"),
        "username": Field(str, required=True, help="login name"),
        "password": Field(str, secret=True, help="password (also tried after a refused key)"),
        "private_key_path": Field(str, help="private key file (OpenSSH or PEM; RSA, Ed25519, ECDSA)"),
        "passphrase": Field(str, secret=True, help="passphrase of the private key"),
        "known_hosts": Field(str, help="known_hosts file to verify the server's host key against"),
        "host_key_fingerprint": Field(
            (str, list), help="pinned host key fingerprint(s), 'SHA256:...' as `ssh-keygen -lf` prints it"
        ),
    }
    options_schema = {
        "timeout_seconds": Field(float, default=30.0, help="connect, handshake and per-request timeout"),
        "accept_unknown_host_keys": Field(
            bool, default=False, help="connect even when no pin or known_hosts entry vouches for the host key"
        ),
    }

    #: Whether to try OpenSSH's atomic posix-rename (cleared when the server lacks it).
    _posix_rename = True

    # -- connection ---------------------------------------------------------------------

    @property
    def _address(self) -> str:
        return f"{self.cfg('host')}:{self.cfg('port')}"

    def _connect(self) -> _Session:
        import paramiko

        host, port = self.cfg("host"), int(self.cfg("port"))
        timeout = float(self.opt("timeout_seconds"))
        pins = self._pins()
        known = self._known_host_keys()
        if self.cfg("password") is None and not self.cfg("private_key_path"):
            raise self.error("config needs a password or a private_key_path", ConnectorConfigError)
        pkey = self._load_key() if self.cfg("private_key_path") else None

        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except TimeoutError as exc:
            raise self.error(f"connecting to {self._address} timed out after {timeout:g} s", ConnectorTimeout) from exc
        except OSError as exc:
            raise self.error(f"cannot connect to {self._address}: {exc.strerror or exc}") from exc
        transport = paramiko.Transport(sock)
        transport.set_log_channel(paramiko_log.name)
        try:
            transport.banner_timeout = timeout
            transport.handshake_timeout = timeout
            transport.auth_timeout = timeout
            self._prefer_algorithms(transport, known)
            try:
                transport.start_client(timeout=timeout)
            except paramiko.SSHException as exc:
                if isinstance(exc.__context__, (TimeoutError, socket.timeout)):
                    raise self.error(
                        f"SSH handshake with {self._address} did not finish within {timeout:g} s", ConnectorTimeout
                    ) from exc
                raise self.error(f"SSH handshake with {self._address} failed: {exc}") from exc
            try:
                server_key = transport.get_remote_server_key()
            except paramiko.SSHException:
                # start_client returns quietly when its timeout passes mid-handshake.
                raise self.error(
                    f"SSH handshake with {self._address} did not finish within {timeout:g} s", ConnectorTimeout
                ) from None
            self._verify_host_key(server_key, pins, known)
            self._authenticate(transport, pkey)
            return _Session(transport, timeout)
        except BaseException:
            transport.close()
            raise

    def _disconnect(self, client: _Session) -> None:
        client.close()

    def _prefer_algorithms(self, transport: Any, known: dict[str, Any] | None) -> None:
        options = transport.get_security_options()
        ciphers = tuple(options.ciphers)
        first = tuple(c for c in PREFERRED_CIPHERS if c in ciphers)
        options.ciphers = first + tuple(c for c in ciphers if c not in first)
        if known:
            # Ask for the key type known_hosts lists, as OpenSSH does, so a server with
            # several host keys presents the one we can check.
            types = tuple(options.key_types)
            listed = tuple(t for t in types if t in known or (t.startswith("rsa-sha2") and "ssh-rsa" in known))
            options.key_types = listed + tuple(t for t in types if t not in listed)

    def _pins(self) -> set[str]:
        value = self.cfg("host_key_fingerprint")
        if value in (None, []):
            return set()
        items = value if isinstance(value, list) else [part for part in str(value).split(",")]
        pins = set()
        for item in items:
            if not str(item).strip():
                continue
            try:
                pins.add(normalize_fingerprint(item))
            except ValueError:
                raise self.error(
                    f"host_key_fingerprint {str(item).strip()!r} is not a fingerprint",
                    ConnectorConfigError,
                    hint="write it as OpenSSH prints it: `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` "
                    "on the server gives 'SHA256:...'",
                ) from None
        return pins

    def _known_host_keys(self) -> dict[str, Any] | None:
        """Keys ``known_hosts`` lists for this host and port, by type (None: no file)."""
        path = self.cfg("known_hosts")
        if not path:
            return None
        import paramiko

        path = expand_home(str(path))
        keys = paramiko.HostKeys()
        try:
            keys.load(path)
        except FileNotFoundError:
            raise self.error(f"known_hosts file {path!r} does not exist", ConnectorConfigError) from None
        except OSError as exc:
            raise self.error(f"cannot read known_hosts file {path!r}: {exc.strerror or exc}", ConnectorConfigError) from None
        host, port = self.cfg("host"), int(self.cfg("port"))
        name = host if port == 22 else f"[{host}]:{port}"
        found = keys.lookup(name)
        return dict(found) if found else {}

    def _verify_host_key(self, key: Any, pins: set[str], known: dict[str, Any] | None) -> None:
        kind, fingerprint = key.get_name(), key.fingerprint
        presented = f"{kind} {fingerprint}"
        vouched = False
        if pins:
            if not (fingerprints_of(key) & pins):
                raise self.error(
                    f"host key of {self._address} does not match host_key_fingerprint: the server presented {presented}",
                    hint="if the server's key was changed on purpose, pin the new fingerprint; otherwise someone "
                    "may be intercepting the connection",
                )
            vouched = True
        if known:
            listed = known.get(kind)
            if listed is not None:
                if listed.asbytes() != key.asbytes():
                    raise self.error(
                        f"host key of {self._address} does not match its entry in {self.cfg('known_hosts')}: "
                        f"the server presented {presented}",
                        hint="if the server's key was changed on purpose, replace the entry (ssh-keygen -R); "
                        "otherwise someone may be intercepting the connection",
                    )
                vouched = True
        if vouched:
            return
        if self.opt("accept_unknown_host_keys"):
            log.warning(
                "accepting unknown host key",
                extra={"resource": self.name, "host": self._address, "host_key": presented},
            )
            return
        host, port = self.cfg("host"), self.cfg("port")
        raise self.error(
            f"host key of {self._address} is not known: the server presented {presented}",
            hint=f"after checking it with the server's owner, pin it with config.host_key_fingerprint: "
            f"'{fingerprint}', or add the host to a known_hosts file (ssh-keyscan -p {port} {host} >> FILE) and "
            "set config.known_hosts; options.accept_unknown_host_keys: true skips the check (not recommended)",
        )

    def _load_key(self) -> Any:
        import paramiko

        path = expand_home(str(self.cfg("private_key_path")))
        passphrase = self.cfg("passphrase")
        secret = str(passphrase).encode("utf-8") if passphrase is not None else None
        try:
            try:
                return paramiko.PKey.from_path(path, password=secret)
            except TypeError:
                if secret is None:
                    raise
                # cryptography refuses a passphrase for a key that has none; like
                # OpenSSH, simply do without it.
                return paramiko.PKey.from_path(path, password=None)
        except FileNotFoundError:
            raise self.error(f"private key file {path!r} does not exist", ConnectorConfigError) from None
        except PermissionError:
            raise self.error(f"private key file {path!r} is not readable", ConnectorConfigError) from None
        except (paramiko.PasswordRequiredException, TypeError):
            raise self.error(
                f"private key {path!r} is encrypted and no passphrase was given", ConnectorConfigError
            ) from None
        except (ValueError, paramiko.SSHException) as exc:
            reason = "wrong passphrase, or not a supported private key" if secret else "not a supported private key"
            raise self.error(f"cannot load private key {path!r}: {reason} ({type(exc).__name__})", ConnectorConfigError) from None

    def _authenticate(self, transport: Any, pkey: Any) -> None:
        import paramiko

        user = self.cfg("username")
        password = self.cfg("password")
        refused: list[str] = []
        if pkey is not None:
            try:
                transport.auth_publickey(user, pkey)
                return
            except paramiko.AuthenticationException:
                refused.append(f"key {pkey.get_name()} {pkey.fingerprint}")
        if password is not None:
            try:
                transport.auth_password(user, password)
                return
            except paramiko.BadAuthenticationType as exc:
                refused.append(f"password (the server allows only {', '.join(exc.allowed_types)})")
            except paramiko.AuthenticationException:
                refused.append("password")
        raise self.error(f"authentication as {user!r} at {self._address} failed: refused {' and '.join(refused)}")

    def _session(self) -> _Session:
        session = self.connect()
        if not session.transport.is_active():
            # The connection died (server restart, network): the failed operation was
            # reported; the next one starts a new connection.
            with self.lock:
                if self.__dict__.get("_client") is session:
                    self.close()
            session = self.connect()
        return session

    def _checkout(self, action: str) -> tuple[_Session, Any]:
        with self.translate(action):
            session = self._session()
            return session, session.checkout()

    @contextmanager
    def _sftp(self, action: str) -> Iterator[Any]:
        """An SFTP channel for one operation. Driver errors become ConnectorErrors
        naming ``action``; a channel that saw an error is closed, not reused (closing
        it also abandons read-ahead answers still on their way)."""
        session, client = self._checkout(action)
        # A cancelled step (Ctrl-C, timeout_seconds) closes the channel: a blocked read or
        # write returns at once, and the operation's clean-up removes its partial file.
        with self.translate(action), current_cancel().on_cancel(client.get_channel().close):
            try:
                yield client
            except BaseException:
                _abandon(client)
                raise
        session.checkin(client)

    def _classify(self, exc: BaseException) -> Classification:
        import paramiko

        lost = f"connection to {self._address} lost"
        if isinstance(exc, TimeoutError):
            return ConnectorTimeout, f"no answer from {self._address} within {self.opt('timeout_seconds'):g} s", None
        if isinstance(exc, FileNotFoundError) or (isinstance(exc, OSError) and exc.errno == errno.ENOENT):
            return ConnectorError, "no such file or directory", None
        if isinstance(exc, PermissionError) or (isinstance(exc, OSError) and exc.errno == errno.EACCES):
            return ConnectorError, "permission denied", None
        if isinstance(exc, (EOFError, paramiko.SSHException, ConnectionError)):
            detail = str(exc).strip().rstrip(":")
            if isinstance(exc, EOFError) or not detail or "connection dropped" in detail.lower():
                return ConnectorError, lost, None
            return ConnectorError, f"{lost} ({detail})", None
        if isinstance(exc, OSError):
            if str(exc) == "Socket is closed":  # paramiko's word for a channel that died
                return ConnectorError, lost, None
            return ConnectorError, exc.strerror or str(exc).strip() or type(exc).__name__, None
        return super()._classify(exc)

    # -- primitives ---------------------------------------------------------------------

    def _entry(self, path: str, attrs: Any, name: str | None = None) -> RemoteFile:
        is_dir = stat_module.S_ISDIR(attrs.st_mode or 0)
        return RemoteFile(
            path=path,
            name=name if name is not None else (posixpath.basename(path.rstrip("/")) or path),
            is_dir=is_dir,
            size=0 if is_dir else int(attrs.st_size or 0),
            mtime=float(attrs.st_mtime or 0),
        )

    def list(self, dir: str = "", pattern: str = "*", recursive: bool = False) -> list[RemoteFile]:
        entries: list[RemoteFile] = []
        with self._sftp(f"list {dir or '.'!r}") as sftp:
            pending = [dir]
            while pending:
                current = pending.pop()
                for attrs in sftp.listdir_attr(current or "."):
                    name = attrs.filename
                    path = join_path(current, name)
                    is_link = stat_module.S_ISLNK(attrs.st_mode or 0)
                    if is_link:
                        try:
                            attrs = sftp.stat(path)  # what the link points to
                        except FileNotFoundError:
                            continue  # a dangling link
                    entry = self._entry(path, attrs, name)
                    if name_matches(name, pattern):
                        entries.append(entry)
                    if recursive and entry.is_dir and not is_link:
                        pending.append(path)
        entries.sort(key=lambda e: e.path)
        return entries

    def stat(self, path: str) -> RemoteFile:
        with self._sftp(f"stat {path!r}") as sftp:
            return self._entry(path, sftp.stat(path))

    def exists(self, path: str) -> bool:
        with self._sftp(f"stat {path!r}") as sftp:
            return _exists(sftp, path)

    @contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        action = f"read {path!r}"
        session, client = self._checkout(action)
        with self.translate(action):
            try:
                remote, _size = _open_prefetching(client, path)
            except BaseException:
                _abandon(client)
                raise
        reader = _PrefetchedReader(remote, client.af_read_size, self, action)
        try:
            yield reader
        except BaseException:
            _abandon(client)
            raise
        if not reader.at_eof:
            _abandon(client)  # closing the file would first fetch the unread rest
            return
        with self.translate(action):
            remote.close()
        session.checkin(client)

    def download(self, path: str, local: str | os.PathLike, *, progress: ProgressCallback | None = None) -> int:
        with self._sftp(f"download {path!r}") as sftp:
            remote, size = _open_prefetching(sftp, path)
            block_size = sftp.af_read_size
            total = 0
            with atomic_open(local) as fh:
                read, write = remote.read, fh.write
                while True:
                    block = read(block_size)
                    if not block:
                        break
                    write(block)
                    total += len(block)
                    if progress is not None:
                        progress(len(block))
                if total < size:
                    raise self.error(f"download {path!r} failed: the transfer ended after {total} of {size} bytes")
            remote.close()
            return total

    def upload_stream(self, reader: IO[bytes], path: str, *, overwrite: bool = True, progress: ProgressCallback | None = None) -> int:
        tmp = temp_name(path)
        with self._sftp(f"upload to {path!r}") as sftp:
            if not overwrite and _exists(sftp, path):
                raise self.error(f"upload to {path!r} refused: the file exists and overwrite is off")
            try:
                written = 0
                with sftp.open(tmp, "wb") as remote:
                    remote.MAX_REQUEST_SIZE = sftp.af_write_size
                    remote.set_pipelined(True)
                    while True:
                        chunk = reader.read(CHUNK_SIZE)
                        if not chunk:
                            break
                        remote.write(chunk)
                        written += len(chunk)
                        if progress is not None:
                            progress(len(chunk))
                # Pipelined writes report late errors unreliably: the size on the server
                # is the proof that every byte arrived.
                landed = sftp.stat(tmp).st_size
                if landed != written:
                    raise self.error(f"upload to {path!r} failed: {landed} of {written} bytes arrived")
                self._move(sftp, tmp, path, overwrite)
            except BaseException:
                with suppress(Exception):
                    sftp.remove(tmp)
                raise
        return written

    def _move(self, sftp: Any, src: str, dst: str, overwrite: bool) -> None:
        if not overwrite:
            # SSH_FXP_RENAME refuses an existing target (OpenSSH links, then unlinks).
            if _exists(sftp, dst):
                raise self.error(f"rename to {dst!r} refused: the target exists and overwrite is off")
            sftp.rename(src, dst)
            return
        if self._posix_rename:
            try:
                sftp.posix_rename(src, dst)
                return
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.EACCES):
                    raise
                self._posix_rename = False  # the server lacks the extension: fall back below
        # Without posix-rename there is no atomic replace in SFTP v3.
        if _exists(sftp, dst):
            sftp.remove(dst)
        sftp.rename(src, dst)

    def delete(self, path: str) -> None:
        with self._sftp(f"delete {path!r}") as sftp:
            if stat_module.S_ISDIR(sftp.lstat(path).st_mode or 0):
                sftp.rmdir(path)
            else:
                sftp.remove(path)

    def mkdir(self, path: str, parents: bool = True) -> None:
        with self._sftp(f"mkdir {path!r}") as sftp:
            missing: list[str] = []
            current = path.rstrip("/") or path
            while current not in ("", ".", "/"):
                try:
                    attrs = sftp.stat(current)
                except FileNotFoundError:
                    missing.append(current)
                    if not parents:
                        break
                    current = posixpath.dirname(current)
                    continue
                if not stat_module.S_ISDIR(attrs.st_mode or 0):
                    raise self.error(f"mkdir {path!r} failed: {current!r} exists and is not a directory")
                break
            for directory in reversed(missing):
                try:
                    sftp.mkdir(directory)
                except OSError:
                    # Created meanwhile by someone else is fine; anything else is not.
                    if not _is_dir(sftp, directory):
                        raise

    def rename(self, src: str, dst: str, *, overwrite: bool = False) -> None:
        with self._sftp(f"rename {src!r} to {dst!r}") as sftp:
            self._move(sftp, src, dst, overwrite)


def _request_sizes(client: Any) -> tuple[int, int]:
    """Read and write request sizes for this server: larger ones when it announces
    them through OpenSSH's ``limits@openssh.com``, else paramiko's safe 32 KiB."""
    from paramiko.sftp import CMD_EXTENDED, CMD_EXTENDED_REPLY

    try:
        kind, msg = client._request(CMD_EXTENDED, "limits@openssh.com")
    except OSError:
        return BLOCK_SIZE, BLOCK_SIZE  # the server does not know the extension
    if kind != CMD_EXTENDED_REPLY:
        return BLOCK_SIZE, BLOCK_SIZE
    _max_packet, max_read, max_write = msg.get_int64(), msg.get_int64(), msg.get_int64()

    def pick(limit: int) -> int:
        return min(LARGE_BLOCK_SIZE, limit) if limit >= BLOCK_SIZE else BLOCK_SIZE

    return pick(max_read), pick(max_write)


def _open_prefetching(client: Any, path: str) -> tuple[Any, int]:
    """``path`` opened for reading with paramiko's read-ahead started for all of it."""
    remote = client.open(path, "rb")
    remote.MAX_REQUEST_SIZE = client.af_read_size
    size = remote.stat().st_size
    _guard_prefetch(remote)
    remote.prefetch(size)
    return remote, size


def _guard_prefetch(remote: Any) -> None:
    """Two fixes to paramiko's read-ahead, made on this one file object.

    1. paramiko marks the read-ahead finished as soon as every request *sent so far*
       is answered. When its sending thread falls behind (a busy machine), the reader
       catches up, sees "finished", and switches to one request per round trip for the
       rest of the file while the remaining answers pile up unread in memory
       (paramiko#2418; the fix proposed in paramiko PR #2519 is not released). Here it
       is finished only once the thread has sent everything.
    2. The sending thread raises (and prints a traceback) when the channel is closed
       under it, which is how an abandoned or failed transfer ends. The reader reports
       the failure; the thread only needs to stop quietly.

    If a future paramiko renames these internals, nothing is patched: transfers stay
    correct, just without the fixes.
    """
    internals = ("_prefetch_thread", "_async_response", "_prefetch_lock", "_prefetch_extents", "_prefetch_done")
    if not all(hasattr(remote, name) for name in internals):
        return
    send_requests, take_answer = remote._prefetch_thread, remote._async_response
    all_sent = False

    def prefetch_thread(*args: Any, **kwargs: Any) -> None:
        nonlocal all_sent
        try:
            send_requests(*args, **kwargs)
        except Exception:  # noqa: BLE001 - see 2. above
            pass
        finally:
            with remote._prefetch_lock:
                all_sent = True
                if not remote._prefetch_extents:
                    remote._prefetch_done = True

    def async_response(kind: int, msg: Any, num: int) -> None:
        take_answer(kind, msg, num)
        with remote._prefetch_lock:
            if not all_sent:
                remote._prefetch_done = False

    remote._prefetch_thread = prefetch_thread
    remote._async_response = async_response


def _abandon(client: Any) -> None:
    with suppress(Exception):
        client.close()


def _exists(sftp: Any, path: str) -> bool:
    try:
        sftp.stat(path)
    except FileNotFoundError:
        return False
    return True


def _is_dir(sftp: Any, path: str) -> bool:
    try:
        return stat_module.S_ISDIR(sftp.stat(path).st_mode or 0)
    except OSError:
        return False


class _PrefetchedReader:
    """A binary reader over a prefetching SFTP file. ``read(n)`` gathers whole
    request-sized blocks into one buffer (paramiko's own ``read(n)`` re-concatenates
    its buffer per block), and its errors name the source resource, so a failing
    source is not blamed on the target of a copy."""

    def __init__(self, remote: Any, block_size: int, connector: SFTPConnector, action: str):
        self._remote = remote
        self._block_size = block_size
        self._connector = connector
        self._action = action
        self.at_eof = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        parts: list[bytes] = []
        got = 0
        with self._connector.translate(self._action):
            while size is None or size < 0 or got < size:
                want = self._block_size if size is None or size < 0 else min(self._block_size, size - got)
                block = self._remote.read(want)
                if not block:
                    self.at_eof = True
                    break
                parts.append(block)
                got += len(block)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        pass
