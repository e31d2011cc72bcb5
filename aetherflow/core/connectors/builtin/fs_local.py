"""``fs/local``: a local directory behind the remote-files API.

Paths are relative to ``root`` and may not leave it (``..`` and absolute paths
outside the root are refused, and so is a path that leaves it through a symbolic link;
listings leave such links out), so a flow can treat a mounted share, an inbox
directory or a test fixture exactly like an SFTP server.
"""

from __future__ import annotations

import os
import stat as stat_module
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from ...atomic import atomic_open
from ...errors import ConnectorConfigError, ConnectorError
from ...paths import is_within, really_within
from ..base import Classification, ProgressCallback
from ..families.files import RemoteFile, RemoteFilesConnector, copy_stream, join_path, name_matches
from ..schema import Field


class LocalFilesConnector(RemoteFilesConnector):
    kind = "fs"
    driver = "local"
    summary = "Local directory behind the remote-files API"
    config_schema = {
        "root": Field(str, required=True, help="directory that relative paths are resolved in (they may not leave it)"),
    }
    options_schema = {}

    def _connect(self) -> Path:
        root = self.cfg("root")
        if not root:
            raise self.error("config.root is required", ConnectorConfigError)
        path = Path(os.path.abspath(root))
        if not path.is_dir():
            raise self.error(f"root {str(path)!r} is not a directory", ConnectorConfigError)
        return path

    def _disconnect(self, client: Path) -> None:
        pass

    # -- paths --------------------------------------------------------------------------

    def local_path(self, path: str) -> Path:
        """The absolute local path of ``path``; refuses anything outside the root, also
        when a symbolic link on the way leads out of it."""
        root: Path = self.connect()
        text = str(path).replace("\\", "/")
        candidate = Path(os.path.normpath(text if os.path.isabs(text) else os.path.join(root, text)))
        if not is_within(candidate, root):
            raise self.error(f"path {path!r} is outside root {str(root)!r}", ConnectorConfigError)
        if not really_within(candidate, root):
            real = os.path.realpath(candidate)
            raise self.error(f"path {path!r} leads outside root {str(root)!r} through a symbolic link (to {real!r})", ConnectorConfigError)
        return candidate

    def _classify(self, exc: BaseException) -> Classification:
        if isinstance(exc, FileNotFoundError):
            return ConnectorError, f"no such file or directory ({exc.filename})", None
        if isinstance(exc, FileExistsError):
            return ConnectorError, f"{exc.filename} already exists", None
        if isinstance(exc, OSError) and exc.strerror:
            return ConnectorError, exc.strerror, None
        return super()._classify(exc)

    def _entry(self, path: str, local: Path, st: os.stat_result) -> RemoteFile:
        is_dir = stat_module.S_ISDIR(st.st_mode)
        return RemoteFile(path=path, name=local.name, is_dir=is_dir, size=0 if is_dir else st.st_size, mtime=st.st_mtime)

    # -- primitives ---------------------------------------------------------------------

    def list(self, dir: str = "", pattern: str = "*", recursive: bool = False) -> list[RemoteFile]:
        entries: list[RemoteFile] = []
        pending = [(dir, self.local_path(dir))]
        with self.translate(f"list {dir!r}"):
            while pending:
                rel, local = pending.pop()
                with os.scandir(local) as scan:
                    for item in scan:
                        if item.is_symlink() and not really_within(item.path, self.connect()):
                            continue  # a link out of the root: unreachable, so not listed
                        try:
                            st = item.stat()  # follows links, like a server would show them
                        except FileNotFoundError:
                            continue  # a dangling link or a file removed meanwhile
                        entry = self._entry(join_path(rel, item.name), Path(item.path), st)
                        if name_matches(entry.name, pattern):
                            entries.append(entry)
                        if recursive and entry.is_dir and not item.is_symlink():
                            pending.append((entry.path, Path(item.path)))
        entries.sort(key=lambda e: e.path)
        return entries

    def stat(self, path: str) -> RemoteFile:
        local = self.local_path(path)
        with self.translate(f"stat {path!r}"):
            return self._entry(path, local, local.stat())

    def exists(self, path: str) -> bool:
        return self.local_path(path).exists()

    @contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        local = self.local_path(path)
        with self.translate(f"read {path!r}"):
            reader = open(local, "rb")
        with reader:
            yield reader

    def upload_stream(self, reader: IO[bytes], path: str, *, overwrite: bool = True, progress: ProgressCallback | None = None) -> int:
        local = self.local_path(path)
        with self.translate(f"upload to {path!r}"):
            if not local.parent.is_dir():
                raise FileNotFoundError(2, "no such directory", str(local.parent))
            if not overwrite and local.exists():
                raise FileExistsError(17, "exists", str(local))
            with atomic_open(local, overwrite=overwrite) as fh:
                return copy_stream(reader, fh, progress)

    def download(self, path: str, local: str | os.PathLike, *, progress: ProgressCallback | None = None) -> int:
        source = self.local_path(path)
        with self.translate(f"download {path!r}"), open(source, "rb") as reader, atomic_open(local) as fh:
            return copy_stream(reader, fh, progress)

    def delete(self, path: str) -> None:
        local = self.local_path(path)
        if local == self.connect():
            raise self.error(f"delete {path!r} refused: it is the root directory", ConnectorConfigError)
        with self.translate(f"delete {path!r}"):
            if local.is_dir() and not local.is_symlink():
                local.rmdir()
            else:
                local.unlink()

    def mkdir(self, path: str, parents: bool = True) -> None:
        local = self.local_path(path)
        with self.translate(f"mkdir {path!r}"):
            local.mkdir(parents=parents, exist_ok=True)

    def rename(self, src: str, dst: str, *, overwrite: bool = False) -> None:
        source, target = self.local_path(src), self.local_path(dst)
        with self.translate(f"rename {src!r} to {dst!r}"):
            if overwrite:
                os.replace(source, target)
            elif source.is_dir():
                if target.exists():
                    raise FileExistsError(17, "exists", str(target))
                os.rename(source, target)
            else:
                os.link(source, target)
                source.unlink()
