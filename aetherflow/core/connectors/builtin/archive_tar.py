"""``archive/tar``: tar archives (plain, gz, bz2, xz) with atomic create and safe extract.

New archives use the POSIX (pax) format, so long and non-ASCII names survive, with
owner ids and names cleared. Extraction detects the compression by itself; devices,
FIFOs and links pointing outside the destination are refused (see :mod:`aetherflow.core.connectors.families.archive`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any

from ...errors import ConnectorConfigError
from ..base import ProgressCallback
from ..families.archive import ArchiveConnector, Member, Refused
from ..schema import Field

#: gzip's own default; tarfile's (9) costs much time for little size.
_DEFAULT_GZIP_LEVEL = 6
_LEVELS = {"gz": range(0, 10), "bz2": range(1, 10), "xz": range(0, 10)}


class TarArchiveConnector(ArchiveConnector):
    """Tar archives (gz, bz2, xz): create and safe extract."""

    driver = "tar"
    summary = "Tar archives (gz, bz2, xz): create and safe extract"
    config_schema = {
        "compression": Field(str, default="gz", choices=("gz", "bz2", "xz", "none"), help="compression of new archives"),
        "level": Field(int, help="compression level (gz/bz2 1-9, xz preset 0-9); gz 6 when unset"),
    }
    options_schema = {}

    def _write_archive(self, fh: IO[bytes], entries: list[tuple[Path, str]], progress: ProgressCallback | None) -> None:
        import tarfile

        compression = self.cfg("compression")
        level = self.cfg("level")
        kwargs: dict[str, Any] = {}
        valid = _LEVELS.get(compression)
        if level is not None and valid is not None and level not in valid:
            raise self.error(f"level {level} is not valid for {compression} (use {valid[0]} to {valid[-1]})", ConnectorConfigError)
        if compression == "gz":
            kwargs["compresslevel"] = _DEFAULT_GZIP_LEVEL if level is None else level
        elif compression == "bz2" and level is not None:
            kwargs["compresslevel"] = level
        elif compression == "xz" and level is not None:
            kwargs["preset"] = level
        mode = "w" if compression == "none" else f"w:{compression}"
        with tarfile.open(fileobj=fh, mode=mode, format=tarfile.PAX_FORMAT, dereference=True, **kwargs) as tf:
            for path, name in entries:
                tf.add(path, arcname=name, recursive=False, filter=_anonymous)
                if progress is not None:
                    progress(1)

    def _open_for_reading(self, archive: Path) -> AbstractContextManager[Any]:
        import tarfile

        return tarfile.open(archive, "r:*")

    def _read_members(self, tf: Any) -> Iterator[Member]:
        # One entry at a time: a compressed tar is read to the end to list every entry,
        # and the extraction's size budget may refuse it after the first ones.
        for info in tf:
            if info.isdir():
                kind, link = "dir", ""
            elif info.isreg():
                kind, link = "file", ""
            elif info.issym():
                kind, link = "symlink", info.linkname
            elif info.islnk():
                kind, link = "hardlink", info.linkname
            else:
                raise Refused(info.name, "it is a device, FIFO or other special file")
            yield Member(info.name, info.name, kind, link=link, mode=info.mode, mtime=info.mtime, handle=info, size=info.size)

    def _member_reader(self, tf: Any, member: Member) -> AbstractContextManager[IO[bytes]]:
        # For a hard link tarfile reads its target's data.
        reader = tf.extractfile(member.handle)
        if reader is None:
            raise Refused(member.raw, "it has no data to extract")
        return reader


def _anonymous(info):
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
