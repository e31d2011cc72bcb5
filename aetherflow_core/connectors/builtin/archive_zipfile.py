"""``archive/zipfile``: zip archives with atomic create and safe extract.

Unix permission bits stored in an entry (``external_attr``) are honoured: an entry
marked as a symbolic link becomes a link, checked like any other link, and device or
other special files are refused (see :mod:`aetherflow_core.connectors.families.archive`).
"""

from __future__ import annotations

import stat
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any

from ...errors import ConnectorConfigError
from ..base import ProgressCallback
from ..families.archive import ArchiveConnector, Member, Refused
from ..schema import Field

_METHODS = {"deflated": "ZIP_DEFLATED", "stored": "ZIP_STORED", "bzip2": "ZIP_BZIP2", "lzma": "ZIP_LZMA"}
_LEVELS = {"deflated": range(0, 10), "bzip2": range(1, 10)}
_UNIX = 3  # ZipInfo.create_system of archives made on Unix
_MAX_LINK_TARGET = 4096


class ZipArchiveConnector(ArchiveConnector):
    """Zip archives: create and safe extract."""

    driver = "zipfile"
    summary = "Zip archives: create and safe extract"
    config_schema = {
        "compression": Field(str, default="deflated", choices=tuple(_METHODS), help="compression method of new archives"),
        "level": Field(int, help="compression level (deflated 0-9, bzip2 1-9; library default when unset)"),
    }
    options_schema = {}

    def _write_archive(self, fh: IO[bytes], entries: list[tuple[Path, str]], progress: ProgressCallback | None) -> None:
        import zipfile

        compression, level = self.cfg("compression"), self.cfg("level")
        method = getattr(zipfile, _METHODS[compression])
        if level is not None and compression in _LEVELS and level not in _LEVELS[compression]:
            low, high = _LEVELS[compression][0], _LEVELS[compression][-1]
            raise self.error(f"level {level} is not valid for {compression} (use {low} to {high})", ConnectorConfigError)
        with zipfile.ZipFile(fh, "w", compression=method, compresslevel=level, allowZip64=True) as zf:
            for path, name in entries:
                zf.write(path, name)
                if progress is not None:
                    progress(1)

    def _open_for_reading(self, archive: Path) -> AbstractContextManager[Any]:
        import zipfile

        return zipfile.ZipFile(archive)

    def _read_members(self, zf: Any) -> list[Member]:
        members = []
        for info in zf.infolist():
            mode = (info.external_attr >> 16) if info.create_system == _UNIX else 0
            kind_bits = stat.S_IFMT(mode)
            mtime = _mtime(info.date_time)
            if info.is_dir() or kind_bits == stat.S_IFDIR:
                members.append(Member(info.filename, info.filename, "dir", handle=info))
            elif kind_bits == stat.S_IFLNK:
                if info.file_size > _MAX_LINK_TARGET:
                    raise Refused(info.filename, "symbolic link with an implausibly long target")
                target = zf.read(info).decode("utf-8", errors="replace")
                members.append(Member(info.filename, info.filename, "symlink", link=target, handle=info))
            elif kind_bits not in (0, stat.S_IFREG):
                raise Refused(info.filename, "it is a device or other special file")
            else:
                members.append(
                    Member(info.filename, info.filename, "file", mode=stat.S_IMODE(mode) if mode else None, mtime=mtime, handle=info)
                )
        return members

    def _member_reader(self, zf: Any, member: Member) -> AbstractContextManager[IO[bytes]]:
        return zf.open(member.handle)


def _mtime(date_time: tuple[int, ...]) -> float | None:
    try:
        return time.mktime((*date_time, 0, 0, -1))
    except (OverflowError, ValueError):
        return None
