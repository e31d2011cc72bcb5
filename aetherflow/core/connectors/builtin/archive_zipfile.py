"""``archive/zipfile``: zip archives with atomic create and safe extract.

Unix permission bits stored in an entry (``external_attr``) are honoured: an entry
marked as a symbolic link becomes a link, checked like any other link, and device or
other special files are refused (see :mod:`aetherflow.core.connectors.families.archive`).

With a ``password`` new archives are encrypted with AES-256 in the WinZip AE-2 format
(what 7-Zip writes with ``-mem=AES256`` and reads without being told), and encrypted
archives are opened whether they use AES or the legacy ZipCrypto scheme (``zip -P``).
Encryption needs ``pyzipper`` (the optional ``encrypted-zip`` group), imported only
when a password is set. A wrong password is reported as such, naming the entry; the
password itself is a secret and never shown.
"""

from __future__ import annotations

import stat
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any

from ...errors import ConnectorConfigError, ConnectorError, MissingDependencyError
from ..base import ProgressCallback
from ..families.archive import ArchiveConnector, Member, Refused
from ..schema import Field

_METHODS = {"deflated": "ZIP_DEFLATED", "stored": "ZIP_STORED", "bzip2": "ZIP_BZIP2", "lzma": "ZIP_LZMA"}
_LEVELS = {"deflated": range(0, 10), "bzip2": range(1, 10)}
_UNIX = 3  # ZipInfo.create_system of archives made on Unix
_MAX_LINK_TARGET = 4096
_INSTALL = "pip install 'aetherflow[encrypted-zip]' (or: pip install pyzipper)"
#: General purpose flag bit 0: the entry is encrypted (ZipCrypto or AES).
_ENCRYPTED = 0x1


def _pyzipper():
    try:
        import pyzipper
    except ImportError:
        raise MissingDependencyError(
            "encrypted zip archives (archive/zipfile with a password) need pyzipper, which is not installed",
            hint=f"install it: {_INSTALL}",
        ) from None
    return pyzipper


class ZipArchiveConnector(ArchiveConnector):
    """Zip archives: create and safe extract."""

    driver = "zipfile"
    summary = "Zip archives: create and safe extract"
    config_schema = {
        "compression": Field(str, default="deflated", choices=tuple(_METHODS), help="compression method of new archives"),
        "level": Field(int, help="compression level (deflated 0-9, bzip2 1-9; library default when unset)"),
        "password": Field(
            str,
            secret=True,
            help="encrypt new archives with AES-256 (WinZip AE-2); open AES or ZipCrypto archives (needs pyzipper)",
        ),
    }
    options_schema = {}

    def _write_archive(self, fh: IO[bytes], entries: list[tuple[Path, str]], progress: ProgressCallback | None) -> None:
        import zipfile

        compression, level = self.cfg("compression"), self.cfg("level")
        method = getattr(zipfile, _METHODS[compression])
        if level is not None and compression in _LEVELS and level not in _LEVELS[compression]:
            low, high = _LEVELS[compression][0], _LEVELS[compression][-1]
            raise self.error(f"level {level} is not valid for {compression} (use {low} to {high})", ConnectorConfigError)
        password = self._password()
        if password is None:
            zf = zipfile.ZipFile(fh, "w", compression=method, compresslevel=level, allowZip64=True)
        else:
            pyzipper = _pyzipper()
            from pyzipper.zipfile_aes import WZ_AES_V2

            zf = pyzipper.AESZipFile(
                fh,
                "w",
                compression=method,
                compresslevel=level,
                allowZip64=True,
                encryption=pyzipper.WZ_AES,
                encryption_kwargs={"nbits": 256, "force_wz_aes_version": WZ_AES_V2},
            )
            zf.setpassword(password)
        with zf:
            for path, name in entries:
                zf.write(path, name)
                if progress is not None:
                    progress(1)

    def _password(self) -> bytes | None:
        password = self.cfg("password")
        return None if password is None else str(password).encode("utf-8")

    def _open_for_reading(self, archive: Path) -> AbstractContextManager[Any]:
        password = self._password()
        if password is None:
            import zipfile

            return zipfile.ZipFile(archive)
        zf = _pyzipper().AESZipFile(archive)
        zf.setpassword(password)
        return zf

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
                with self._decrypting(zf, info) as reader:
                    target = reader.read().decode("utf-8", errors="replace")
                members.append(Member(info.filename, info.filename, "symlink", link=target, handle=info))
            elif kind_bits not in (0, stat.S_IFREG):
                raise Refused(info.filename, "it is a device or other special file")
            else:
                members.append(
                    Member(
                        info.filename,
                        info.filename,
                        "file",
                        mode=stat.S_IMODE(mode) if mode else None,
                        mtime=mtime,
                        handle=info,
                        size=info.file_size,
                    )
                )
        return members

    def _member_reader(self, zf: Any, member: Member) -> AbstractContextManager[IO[bytes]]:
        return self._decrypting(zf, member.handle)

    @contextmanager
    def _decrypting(self, zf: Any, info: Any) -> Iterator[IO[bytes]]:
        """``zf.open(info)``, with the ways a missing or wrong password shows turned into
        clear errors: a refused password check at open, or a failed integrity check
        (CRC for ZipCrypto, HMAC for AES) while reading."""
        encrypted = bool(info.flag_bits & _ENCRYPTED)
        if encrypted and self._password() is None:
            raise self.error(
                f"entry {info.filename!r} is encrypted and no password is configured",
                hint="set config.password on the archive resource (use a secret)",
            )
        try:
            with zf.open(info) as reader:
                yield reader
        except RuntimeError as exc:
            if encrypted and "password" in str(exc).lower():
                raise self._wrong_password(info) from None
            raise
        except _bad_zip_errors(zf) as exc:
            if encrypted and ("CRC" in str(exc) or "HMAC" in str(exc)):
                raise self._wrong_password(info, checked=True) from None
            raise

    def _wrong_password(self, info: Any, *, checked: bool = False) -> ConnectorError:
        how = "its integrity check failed after decryption" if checked else "the password check failed"
        return self.error(
            f"wrong password for entry {info.filename!r}: {how}",
            hint="check config.password of the archive resource; nothing was extracted",
        )


def _bad_zip_errors(zf: Any) -> tuple[type[Exception], ...]:
    """The "corrupt archive" exception classes of the library that opened ``zf``
    (pyzipper carries its own copy of zipfile)."""
    import zipfile

    module = sys.modules.get(type(zf).__module__)
    own = getattr(module, "BadZipFile", None)
    return (zipfile.BadZipFile,) if own is None or own is zipfile.BadZipFile else (zipfile.BadZipFile, own)


def _mtime(date_time: tuple[int, ...]) -> float | None:
    try:
        return time.mktime((*date_time, 0, 0, -1))
    except (OverflowError, ValueError):
        return None
