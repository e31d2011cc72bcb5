"""Build archives entry by entry, hostile ones included, for the archive tests."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path


def zip_with(path: Path, entries: list[tuple]) -> Path:
    """A zip from ``(name, data)`` or ``(name, data, unix_mode)`` tuples."""
    with zipfile.ZipFile(path, "w") as zf:
        for entry in entries:
            name, data = entry[0], entry[1]
            info = zipfile.ZipInfo(name)
            if len(entry) > 2:
                info.create_system = 3
                info.external_attr = entry[2] << 16
            zf.writestr(info, data)
    return path


def zip_symlink(name: str, target: str) -> tuple:
    return (name, target.encode(), stat.S_IFLNK | 0o777)


def tar_with(path: Path, entries: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w") -> Path:
    """A tar from ``(name, data)`` tuples (regular files) and ready-made TarInfo objects."""
    with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as tf:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tf.addfile(entry)
            else:
                name, data = entry
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def tar_link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def tar_special(name: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.devmajor, info.devminor = 1, 3
    return info


def files_under(root) -> list[str]:
    """Every non-directory path below ``root`` (links included), relative, sorted."""
    found = []
    for base, dirs, files in os.walk(root):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(base, d))]:
            found.append(os.path.relpath(os.path.join(base, name), root))
    return sorted(found)
