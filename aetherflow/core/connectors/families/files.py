"""The ``files`` connector family: the remote-files primitive set shared by
``sftp/paramiko``, ``smb/smbprotocol``, ``fs/local`` and plugins.

A driver subclasses :class:`RemoteFilesConnector` and implements the primitives
(``list``, ``stat``, ``exists``, ``open_read``, ``upload_stream``, ``delete``,
``mkdir``, ``rename``); listings are :class:`RemoteFile` entries. Transfers to and
from local paths are built here once on top of ``open_read`` and ``upload_stream``,
and may be overridden by a faster native path. Every write lands under a temporary
name (:func:`temp_name`) and is renamed into place, so a reader never sees half a file
and a failed transfer leaves nothing behind. The ``files_*`` steps work with any
subclass.
"""

from __future__ import annotations

import fnmatch
import io
import os
import posixpath
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from ...atomic import atomic_open, partial_name
from ...errors import StepError
from ..base import ConnectorBase, ProgressCallback

CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class RemoteFile:
    """One listed file or directory. ``path`` is relative to the connector's root."""

    path: str
    name: str
    is_dir: bool
    size: int
    mtime: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def temp_name(path: str) -> str:
    """A hidden sibling of ``path`` to write to before the final rename."""
    head, tail = posixpath.split(path)
    return posixpath.join(head, partial_name(tail))


def join_path(dir: str, name: str) -> str:
    """``dir/name`` with ``/``; an empty or ``.`` directory gives ``name`` alone."""
    if dir in ("", "."):
        return name
    return posixpath.join(dir, name)


def name_matches(name: str, pattern: str) -> bool:
    """The ``list`` pattern rule: shell wildcards against the entry name, case-sensitive."""
    return fnmatch.fnmatchcase(name, pattern or "*")


def safe_parts(relative: str) -> list[str]:
    """The components of an untrusted relative name, or ``ValueError`` when it could
    leave the directory it is placed in (absolute, ``..``, drive letters, NUL, empty).
    Backslashes count as separators, so ``..\\x`` is caught too."""
    text = relative.replace("\\", "/")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if (
        not parts
        or text.startswith("/")
        or any(p == ".." for p in parts)
        or any("\0" in p for p in parts)
        or (len(parts[0]) >= 2 and parts[0][1] == ":" and parts[0][0].isalpha())  # C:\x, C:x
    ):
        raise ValueError(relative)
    return parts


def safe_local_path(dest_dir: Path, relative: str) -> Path:
    """``dest_dir / relative``, refusing any name that would land outside ``dest_dir``.

    Remote names are untrusted: ``../../x``, absolute paths and backslash tricks are
    refused rather than cleaned, so a surprising listing fails loudly.
    """
    try:
        parts = safe_parts(relative)
    except ValueError:
        raise StepError(f"refusing remote name {relative!r}: it would land outside {str(dest_dir)!r}") from None
    target = (dest_dir.joinpath(*parts)).resolve()
    base = dest_dir.resolve()
    if base not in target.parents:
        raise StepError(f"refusing remote name {relative!r}: it would land outside {str(dest_dir)!r}")
    return target


def copy_stream(reader: IO[bytes], writer: IO[bytes], progress: ProgressCallback | None = None, chunk_size: int = CHUNK_SIZE) -> int:
    """Copy ``reader`` to ``writer`` in chunks; returns the bytes copied."""
    total = 0
    while True:
        chunk = reader.read(chunk_size)
        if not chunk:
            return total
        writer.write(chunk)
        total += len(chunk)
        if progress is not None:
            progress(len(chunk))


class RemoteFilesConnector(ConnectorBase):
    """Base of connectors that expose files. Paths use ``/`` and are relative to the
    connector's root (share, SFTP start directory, local ``root``)."""

    # -- primitives every files connector implements ------------------------------------

    def list(self, dir: str = "", pattern: str = "*", recursive: bool = False) -> list[RemoteFile]:
        """Entries directly in ``dir`` (with ``recursive``, at any depth below it) whose
        *name* matches ``pattern`` (:func:`name_matches`). Directories are included
        (``is_dir=True``); recursion descends into every directory whatever its name.
        ``path`` is ``dir`` joined with the names (:func:`join_path`); sorted by path."""
        raise NotImplementedError

    def stat(self, path: str) -> RemoteFile:
        raise NotImplementedError

    def exists(self, path: str) -> bool:
        raise NotImplementedError

    def open_read(self, path: str) -> AbstractContextManager[IO[bytes]]:
        """A streaming binary reader of a remote file."""
        raise NotImplementedError

    def upload_stream(self, reader: IO[bytes], path: str, *, overwrite: bool = True, progress: ProgressCallback | None = None) -> int:
        """Write everything ``reader`` yields to ``path`` (temporary name, then rename)."""
        raise NotImplementedError

    def delete(self, path: str) -> None:
        """Remove a file (or an empty directory)."""
        raise NotImplementedError

    def mkdir(self, path: str, parents: bool = True) -> None:
        """Create a directory; an existing directory is fine. ``parents`` creates the
        missing ones above it."""
        raise NotImplementedError

    def rename(self, src: str, dst: str, *, overwrite: bool = False) -> None:
        """Move ``src`` to ``dst``; an existing ``dst`` is an error unless ``overwrite``."""
        raise NotImplementedError

    # -- built on the primitives --------------------------------------------------------

    def read_bytes(self, path: str) -> bytes:
        with self.open_read(path) as reader:
            return reader.read()

    def write_bytes(self, path: str, data: bytes, *, overwrite: bool = True) -> int:
        return self.upload_stream(io.BytesIO(data), path, overwrite=overwrite)

    def download(self, path: str, local: str | os.PathLike, *, progress: ProgressCallback | None = None) -> int:
        """Stream ``path`` into the local file ``local`` (atomically). Returns bytes."""
        with self.open_read(path) as reader, atomic_open(local) as fh:
            return copy_stream(reader, fh, progress)

    def upload(self, local: str | os.PathLike, path: str, *, overwrite: bool = True, progress: ProgressCallback | None = None) -> int:
        """Stream the local file ``local`` to ``path`` (temporary name, then rename)."""
        with open(local, "rb") as reader:
            return self.upload_stream(reader, path, overwrite=overwrite, progress=progress)

