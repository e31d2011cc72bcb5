"""``smb/smbprotocol``: SMB2/3 file shares behind the remote-files primitive set.

Paths are relative to the share root and may be written the way users write them:
``dir/file``, ``dir\\file``, ``\\\\server\\share\\dir`` (or ``//server/share/dir``)
and ``SHARE:/dir``. A path naming another server or share is refused, and ``..``
may not climb above the share root.

Every call goes through smbprotocol's high-level ``smbclient`` functions with this
connector's own connection cache, so two resources never share a session (different
credentials or encryption settings stay apart) and :meth:`close` closes exactly this
connector's connections. The port is passed on every call: smbclient otherwise dials
445 again for some operations.

Transfers are pipelined: one unbuffered handle, byte ranges of a fixed size
with several requests outstanding (bounded by the negotiated maximum read/write size
and the credits the server has granted). One request at a time leaves the link idle
for a round trip per chunk and reaches a fraction of Samba's own client; several in
flight fill it. Memory stays bounded by about chunk size times requests in flight
(8 MiB for a download, 4 MiB for an upload), whatever the file size.
"""

from __future__ import annotations

import errno
import io
import posixpath
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Any

from ...errors import AetherflowError, ConnectorConfigError, ConnectorError, ConnectorTimeout
from ..base import Classification, ProgressCallback
from ..families.files import RemoteFile, RemoteFilesConnector, name_matches, temp_name
from ..schema import Field

#: Bytes per request and requests kept outstanding per transfer, for each direction
#: (requests are capped by the server's negotiated maximum read/write size).
#: Writes stay small: smbprotocol copies an outgoing message several times, and at
#: 1 MiB each copy is a fresh mmap whose page faults cost more than the copy itself.
#: Reads are larger: fewer messages means less per-message Python work.
READ_CHUNK_SIZE = 1024 * 1024
READS_IN_FLIGHT = 8
WRITE_CHUNK_SIZE = 384 * 1024
WRITES_IN_FLIGHT = 12
#: Payload bytes one SMB2 credit buys.
_CREDIT_BYTES = 64 * 1024
#: Credits a transfer leaves unspent for other operations on the same connection.
_CREDIT_MARGIN = 8

_FILE_ATTRIBUTE_DIRECTORY = 0x10
_SHARE_PREFIX = re.compile(r"^([^\\/:]+):(.*)$", re.DOTALL)
_SEPARATORS = re.compile(r"[\\/]+")


class _Session:
    """What ``connect()`` returns: this connector's private smbclient connection cache."""

    def __init__(self) -> None:
        self.cache: dict[str, Any] = {}
        self.credit_lock = threading.Lock()


class SMBConnector(RemoteFilesConnector):
    """SMB2/3 file share via smbprotocol; pipelined transfers."""

    kind = "smb"
    driver = "smbprotocol"
    summary = "SMB2/3 file shares via smbprotocol"
    config_schema = {
        "server": Field(str, required=True, help="host name or address of the SMB server"),
        "share": Field(str, required=True, help="share name (the part after \\\\server\\)"),
        "port": Field(int, default=445, help="TCP port"),
        "username": Field(str, help="user name (without domain)"),
        "password": Field(str, secret=True, help="password"),
        "domain": Field(str, help="domain or workgroup of the user, sent as DOMAIN\\username"),
    }
    options_schema = {
        "encrypt": Field(bool, default=False, help="require SMB3 encryption of all traffic"),
        "require_signing": Field(bool, default=True, help="require signed messages"),
        "timeout_seconds": Field(float, default=60.0, help="connect timeout and the longest wait for one response"),
    }

    # -- connection ---------------------------------------------------------------------

    def _kwargs(self, session: _Session) -> dict[str, Any]:
        """The session arguments every smbclient call gets (port included, always)."""
        return {
            "port": self.cfg("port"),
            "username": self._username(),
            "password": self.cfg("password"),
            # None, not False: a server that itself requires encryption must still work.
            "encrypt": True if self.opt("encrypt") else None,
            "require_signing": bool(self.opt("require_signing")),
            "connection_timeout": self._timeout(),
            "connection_cache": session.cache,
        }

    def _username(self) -> str | None:
        user = self.cfg("username")
        domain = self.cfg("domain")
        if user and domain and "\\" not in user and "@" not in user:
            return f"{domain}\\{user}"
        return user

    def _timeout(self) -> int:
        # smbprotocol's socket layer wants a whole number of seconds.
        return max(1, round(float(self.opt("timeout_seconds"))))

    def _connect(self) -> _Session:
        import smbclient

        server, share = self.cfg("server"), self.cfg("share")
        if not server or not share:
            raise self.error("config needs 'server' and 'share'", ConnectorConfigError)
        session = _Session()
        try:
            smbclient.register_session(server, **self._kwargs(session))
            # A tree connect proves the share exists and the user may use it.
            smbclient.stat(self._unc(""), **self._kwargs(session))
        except Exception as exc:
            _reset(session)
            hint = None
            if not self.opt("require_signing") and "ACCESS_DENIED" in str(exc):
                hint = "SMB 3.1.1 servers refuse unsigned requests of a logged-in user: set require_signing to true"
            raise self.translated(exc, f"connect to {self._where('')} as {self._username() or '(no user)'!r}", hint=hint) from exc
        return session

    def _disconnect(self, client: _Session) -> None:
        _reset(client)

    @contextmanager
    def _operation(self, action: str, path: str) -> Iterator[dict[str, Any]]:
        """The session arguments for one operation; its errors name resource and path."""
        session = self.connect()
        with self.translate(f"{action} {self._where(path)}"):
            yield self._kwargs(session)

    def _classify(self, exc: BaseException) -> Classification:
        cls = ConnectorTimeout if self._is_timeout(exc) else ConnectorError
        if isinstance(exc, OSError) and exc.strerror:
            return cls, exc.strerror, None
        text = str(exc).strip() or type(exc).__name__
        name = type(exc).__name__
        if name in ("LogonFailure", "SMBAuthenticationError") or "STATUS_LOGON_FAILURE" in text:
            return cls, f"logon failure: wrong user name or password ({text})", None
        if name == "SMBConnectionClosed" or isinstance(exc, (ConnectionError, EOFError)):
            return cls, f"connection to the server was lost ({text})", None
        return cls, text, None

    def _is_timeout(self, exc: BaseException) -> bool:
        return isinstance(exc, TimeoutError) or "timeout" in str(exc).lower()

    # -- paths --------------------------------------------------------------------------

    def relative(self, path: str) -> str:
        """``path`` in any accepted form as ``a/b/c`` relative to the share root."""
        text = str(path)
        if text.startswith(("\\\\", "//")):
            parts = [p for p in _SEPARATORS.split(text) if p]
            if len(parts) < 2:
                raise self.error(f"SMB path {text!r} has no share: write \\\\server\\share\\path", ConnectorConfigError)
            server, share, rest = parts[0], parts[1], parts[2:]
            if server.lower() != str(self.cfg("server")).lower():
                raise self.error(
                    f"SMB path {text!r} names server {server!r} but this resource connects to {self.cfg('server')!r}",
                    ConnectorConfigError,
                )
            self._check_share(share, text)
        else:
            match = _SHARE_PREFIX.match(text)
            if match:
                self._check_share(match.group(1), text)
                text = match.group(2)
            rest = _SEPARATORS.split(text)
        parts: list[str] = []
        for part in rest:
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    raise self.error(f"SMB path {str(path)!r} climbs above the share root", ConnectorConfigError)
                parts.pop()
                continue
            if "\0" in part:
                raise self.error(f"SMB path {str(path)!r} contains a NUL character", ConnectorConfigError)
            parts.append(part)
        return "/".join(parts)

    def _check_share(self, share: str, text: str) -> None:
        if share.lower() != str(self.cfg("share")).lower():
            raise self.error(
                f"SMB path {text!r} names share {share!r} but this resource uses share {self.cfg('share')!r}",
                ConnectorConfigError,
                hint=f"a path prefix does not switch shares: add a resource with `share: {share}` for that share",
            )

    def _unc(self, relative: str) -> str:
        base = f"\\\\{self.cfg('server')}\\{self.cfg('share')}"
        return base + ("\\" + relative.replace("/", "\\") if relative else "")

    def _where(self, relative: str) -> str:
        """How errors show a path: ``//server:port/share/path``."""
        return f"'//{self.cfg('server')}:{self.cfg('port')}/{self.cfg('share')}/{relative}'"

    # -- primitives ---------------------------------------------------------------------

    def list(self, dir: str = "", pattern: str = "*", recursive: bool = False) -> list[RemoteFile]:
        import smbclient

        root = self.relative(dir)
        entries: list[RemoteFile] = []
        seen_dirs: set[int] = set()
        pending = [root]
        with self._operation("list", root) as kw:
            while pending:
                current = pending.pop()
                with smbclient.scandir(self._unc(current), **kw) as scan:
                    for item in scan:
                        entry = _entry(posixpath.join(current, item.name) if current else item.name, item.smb_info)
                        if name_matches(entry.name, pattern):
                            entries.append(entry)
                        if recursive and entry.is_dir:
                            # A directory reached twice (a symlink loop on the server) is walked once.
                            file_id = item.smb_info.file_id
                            if file_id and file_id in seen_dirs:
                                continue
                            seen_dirs.add(file_id)
                            pending.append(entry.path)
        entries.sort(key=lambda e: e.path)
        return entries

    def stat(self, path: str) -> RemoteFile:
        import smbclient

        rel = self.relative(path)
        with self._operation("stat", rel) as kw:
            st = smbclient.stat(self._unc(rel), **kw)
        return RemoteFile(
            path=rel,
            name=posixpath.basename(rel),
            is_dir=bool(st.st_file_attributes & _FILE_ATTRIBUTE_DIRECTORY),
            size=0 if st.st_file_attributes & _FILE_ATTRIBUTE_DIRECTORY else st.st_size,
            mtime=st.st_mtime,
        )

    def exists(self, path: str) -> bool:
        import smbclient

        rel = self.relative(path)
        with self._operation("exists", rel) as kw:
            try:
                smbclient.stat(self._unc(rel), **kw)
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    return False
                raise
        return True

    @contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        import smbclient

        rel = self.relative(path)
        with self._operation("read", rel) as kw:
            raw = smbclient.open_file(self._unc(rel), "rb", buffering=0, share_access="r", **kw)
        reader = _PipelinedReader(raw, self.connect(), self._timeout(), lambda exc: self.translated(exc, f"read {self._where(rel)}"))
        try:
            yield reader
        finally:
            reader.close()

    def upload_stream(self, reader: IO[bytes], path: str, *, overwrite: bool = True, progress: ProgressCallback | None = None) -> int:
        import smbclient

        rel = self.relative(path)
        if not rel:
            raise self.error("upload needs a file path, not the share root", ConnectorConfigError)
        if not overwrite and self.exists(rel):
            raise self.error(f"upload {self._where(rel)} failed: the file exists and overwrite is false")
        tmp = temp_name(rel)
        with self._operation("upload", rel) as kw:
            raw = smbclient.open_file(self._unc(tmp), "xb", buffering=0, **kw)
            try:
                try:
                    written = _pipelined_write(raw, self.connect(), reader, self._timeout(), progress)
                except BaseException:
                    _best_effort(raw.close)
                    raise
                raw.close()
                self._rename(tmp, rel, overwrite, kw)
            except BaseException:
                # Nothing may stay behind under the final name; the temporary goes too
                # unless the server is gone (then it is a hidden ``.name.part-*`` file).
                _best_effort(lambda: smbclient.remove(self._unc(tmp), **kw))
                raise
        return written

    def delete(self, path: str) -> None:
        """Delete a file, or an empty directory."""
        import smbclient

        rel = self.relative(path)
        if not rel:
            raise self.error("refusing to delete the share root", ConnectorConfigError)
        with self._operation("delete", rel) as kw:
            try:
                smbclient.remove(self._unc(rel), **kw)
            except OSError as exc:
                if exc.errno not in (errno.EISDIR, errno.EACCES) or not self._is_dir(rel, kw):
                    raise
                smbclient.rmdir(self._unc(rel), **kw)

    def _is_dir(self, rel: str, kw: dict[str, Any]) -> bool:
        import smbclient

        return bool(smbclient.stat(self._unc(rel), **kw).st_file_attributes & _FILE_ATTRIBUTE_DIRECTORY)

    def mkdir(self, path: str, parents: bool = True) -> None:
        """Create a directory; an existing directory is fine."""
        import smbclient

        rel = self.relative(path)
        if not rel:
            return
        with self._operation("mkdir", rel) as kw:
            if parents:
                smbclient.makedirs(self._unc(rel), exist_ok=True, **kw)
                return
            try:
                smbclient.mkdir(self._unc(rel), **kw)
            except OSError as exc:
                if exc.errno != errno.EEXIST or not self._is_dir(rel, kw):
                    raise

    def rename(self, src: str, dst: str, *, overwrite: bool = False) -> None:
        source, target = self.relative(src), self.relative(dst)
        if not source or not target:
            raise self.error("rename needs file or directory paths, not the share root", ConnectorConfigError)
        with self._operation("rename", f"{source} -> {target}") as kw:
            self._rename(source, target, overwrite, kw)

    def _rename(self, source: str, target: str, overwrite: bool, kw: dict[str, Any]) -> None:
        """Rename within the share with one SET_INFO on the source handle.

        ``smbclient.rename``/``replace`` first open the destination asking for
        FILE_EXECUTE, which Samba denies on an existing file without the execute
        bit: replacing such a file failed with STATUS_ACCESS_DENIED.
        """
        from smbclient._io import SMBFileTransaction, SMBRawIO, set_info
        from smbprotocol.file_info import FileRenameInformation
        from smbprotocol.open import CreateOptions, FilePipePrinterAccessMask

        raw = SMBRawIO(
            self._unc(source),
            mode="r",
            share_access="rwd",
            desired_access=FilePipePrinterAccessMask.DELETE,
            create_options=CreateOptions.FILE_OPEN_REPARSE_POINT,
            **kw,
        )
        with raw, SMBFileTransaction(raw) as transaction:
            info = FileRenameInformation()
            info["replace_if_exists"] = overwrite
            info["file_name"] = target.replace("/", "\\")
            set_info(transaction, info)


# -- pipelined transfers -------------------------------------------------------------------


class _Pipe:
    """Sends READ/WRITE requests on one open handle and receives them in order.

    Credits are per connection and shared by every thread using this connector:
    checking and spending them happens under the session's credit lock, and a
    pipeline leaves :data:`_CREDIT_MARGIN` credits for other operations. A request
    is cut down to what the granted credits allow rather than failing.
    """

    def __init__(self, raw: Any, session: _Session, timeout: int, operation: str):
        self.open = raw.fd
        self.conn = self.open.connection
        self.sid = self.open.tree_connect.session.session_id
        self.tid = self.open.tree_connect.tree_connect_id
        self.lock = session.credit_lock
        self.timeout = timeout
        if operation == "read":
            chunk, self.depth = READ_CHUNK_SIZE, READS_IN_FLIGHT
        else:
            chunk, self.depth = WRITE_CHUNK_SIZE, WRITES_IN_FLIGHT
        limit = getattr(self.conn, f"max_{operation}_size") or chunk
        self.multi_credit = bool(getattr(self.conn, "supports_multi_credit", False))
        if not self.multi_credit:
            limit = min(limit, _CREDIT_BYTES)
        self.chunk = max(1, min(chunk, limit))
        self.pending: deque[tuple[Any, Any]] = deque()

    def _spare(self) -> int:
        window = self.conn.sequence_window
        return window["high"] - window["low"] - _CREDIT_MARGIN

    @property
    def full(self) -> bool:
        return len(self.pending) >= self.depth

    def try_send(self, build, size: int) -> int:
        """Send a request for up to ``size`` bytes if credits allow; ``build(n)`` makes
        ``(message, tag)``. Returns the bytes requested, 0 when no credit is spare."""
        with self.lock:
            spare = self._spare()
            if spare < 1:
                return 0
            if self.multi_credit:
                size = min(size, spare * _CREDIT_BYTES)
            charge = _charge(size)
            # Ask for more than we spend until a full pipeline fits in the window.
            grow = min(charge, max(0, charge * self.depth - (spare - charge)))
            message, tag = build(size)
            request = self.conn.send(message, sid=self.sid, tid=self.tid, credit_request=charge + grow)
        self.pending.append((request, tag))
        return size

    def wait_for_credits(self) -> None:
        """Other threads hold every credit: wait until their responses return some."""
        deadline = time.monotonic() + self.timeout
        while self._spare() < 1:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server granted no SMB credits within {self.timeout} s")
            time.sleep(0.001)

    def receive(self) -> tuple[bytes, Any]:
        """The data of the oldest outstanding response and its tag."""
        request, tag = self.pending.popleft()
        response = self.conn.receive(request, timeout=self.timeout)
        return response["data"].get_value(), tag

    def drain(self) -> None:
        """Wait for every outstanding response, ignoring errors (used when closing)."""
        while self.pending:
            try:
                self.receive()
            except Exception:  # noqa: BLE001 - the transfer already failed or was abandoned
                pass


class _PipelinedReader(io.RawIOBase):
    """A streaming reader keeping several READ requests of one handle in flight."""

    def __init__(self, raw: Any, session: _Session, timeout: int, failure):
        super().__init__()
        self._raw = raw
        self._failure = failure  # driver exception -> ConnectorError
        self._pipe = _Pipe(raw, session, timeout, "read")
        self._size = raw.fd.end_of_file
        self._next = 0  # offset of the next request to send
        self._chunk = b""  # the response being handed out, from self._pos on
        self._pos = 0
        self._eof = False

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        from smbprotocol.open import SMB2ReadResponse

        pipe = self._pipe
        offset = self._next

        def build(length: int) -> tuple[Any, Any]:
            return self._raw.fd.read(offset, length, send=False)[0], (offset, length)

        while self._next < self._size and not pipe.full:
            offset = self._next
            sent = pipe.try_send(build, min(pipe.chunk, self._size - offset))
            if not sent:
                if pipe.pending:
                    break  # receiving the oldest response returns credits
                pipe.wait_for_credits()
                continue
            self._next += sent
        if not pipe.pending:
            self._eof = True
            return
        data, (offset, length) = pipe.receive()
        response = SMB2ReadResponse()
        response.unpack(data)
        chunk = response["buffer"].get_value()
        if len(chunk) < length:
            chunk += self._read_rest(offset + len(chunk), length - len(chunk))
        self._chunk, self._pos = chunk, 0

    def _read_rest(self, offset: int, length: int) -> bytes:
        """A short read (the protocol allows them): fetch the rest of the range directly."""
        parts = []
        while length > 0:
            piece = self._raw.fd.read(offset, min(length, self._pipe.chunk))
            if not piece:
                break
            parts.append(piece)
            offset += len(piece)
            length -= len(piece)
        return b"".join(parts)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        try:
            while self._pos >= len(self._chunk) and not self._eof:
                self._fill()
        except AetherflowError:
            raise
        except Exception as exc:
            raise self._failure(exc) from exc
        if self._pos == 0 and size >= len(self._chunk):
            piece = self._chunk  # the common case: hand the response over without a copy
        else:
            piece = self._chunk[self._pos : self._pos + size]
        self._pos += len(piece)
        return piece

    def readall(self) -> bytes:
        parts = []
        while True:
            piece = self.read(self._pipe.chunk)
            if not piece:
                return b"".join(parts)
            parts.append(piece)

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._pipe.drain()
            _best_effort(self._raw.close)
        finally:
            super().close()

    def __del__(self) -> None:
        # IOBase.__del__ would close (network I/O) from whatever thread runs the
        # garbage collector, possibly smbprotocol's own worker. open_read closes us.
        pass


def _read_full(reader: IO[bytes], size: int) -> bytes:
    """Up to ``size`` bytes from ``reader``; fewer only at end of stream."""
    data = reader.read(size)
    if not data or len(data) >= size:
        return data or b""
    parts = [data]
    have = len(data)
    while have < size:
        more = reader.read(size - have)
        if not more:
            break
        parts.append(more)
        have += len(more)
    return b"".join(parts)


def _pipelined_write(raw: Any, session: _Session, reader: IO[bytes], timeout: int, progress: ProgressCallback | None) -> int:
    from smbprotocol.open import SMB2WriteResponse

    pipe = _Pipe(raw, session, timeout, "write")

    def finish_one() -> None:
        data, expected = pipe.receive()
        response = SMB2WriteResponse()
        response.unpack(data)
        count = response["count"].get_value()
        if count != expected:
            raise OSError(errno.EIO, f"server wrote {count} of {expected} bytes")
        if progress is not None:
            progress(count)

    offset = 0
    try:
        while True:
            chunk = _read_full(reader, pipe.chunk)
            if not chunk:
                break
            done = 0
            while done < len(chunk):

                def build(length: int, chunk: bytes = chunk, done: int = done, offset: int = offset) -> tuple[Any, Any]:
                    piece = chunk if (done == 0 and length == len(chunk)) else chunk[done : done + length]
                    return raw.fd.write(piece, offset=offset + done, send=False)[0], length

                if pipe.full:
                    finish_one()
                    continue
                sent = pipe.try_send(build, len(chunk) - done)
                if not sent:
                    if pipe.pending:
                        finish_one()
                    else:
                        pipe.wait_for_credits()
                    continue
                done += sent
            offset += len(chunk)
        while pipe.pending:
            finish_one()
    except BaseException:
        pipe.drain()
        raise
    raw.fd.end_of_file = max(raw.fd.end_of_file, offset)
    return offset


# -- helpers -------------------------------------------------------------------------------


def _charge(size: int) -> int:
    """Credits a request of ``size`` payload bytes costs."""
    return max(1, (size - 1) // _CREDIT_BYTES + 1)


def _entry(path: str, info: Any) -> RemoteFile:
    is_dir = bool(info.file_attributes & _FILE_ATTRIBUTE_DIRECTORY)
    return RemoteFile(
        path=path,
        name=posixpath.basename(path),
        is_dir=is_dir,
        size=0 if is_dir else int(info.end_of_file),
        mtime=_timestamp(info.last_write_time),
    )


def _timestamp(value: Any) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    return float(value or 0)


def _reset(session: _Session) -> None:
    import smbclient

    _best_effort(lambda: smbclient.reset_connection_cache(fail_on_error=False, connection_cache=session.cache))


def _best_effort(action) -> None:
    try:
        action()
    except Exception:  # noqa: BLE001 - cleanup after a failure must not mask it
        pass
