"""The ``archive`` connector family: what ``archive/zipfile``, ``archive/tar`` and
plugins share -- collecting the files to archive, the atomic write of a new archive,
and safe extraction. A format subclasses :class:`ArchiveConnector` and implements four
hooks (open for reading, list the :class:`Member` entries, read one, write an archive).

Extraction treats the archive as hostile. Every entry is checked before anything is
written: absolute names, ``..`` components, device and other special files, and
links whose target lies outside the destination are refused, and the error names the
entry. Entries are then unpacked into a private staging directory inside
``dest_dir`` (regular files and directories first, links last, so no write ever goes
through a link the archive made), every symbolic link is resolved on disk and must
stay inside the staging directory, and only then is the tree moved into place. A
refused archive leaves nothing in ``dest_dir``.

Archive bombs (a few megabytes that expand to gigabytes) are bounded: the entries'
uncompressed sizes together may not exceed ``max_total_bytes``, nor ``max_ratio``
times the archive's own size once past a floor (see :mod:`aetherflow.core.limits`).
The sizes the entries declare are checked as the entries are listed, so a bomb is
usually refused before a byte is written; the bytes actually written are counted too.
"""

from __future__ import annotations

import os
import posixpath
import re
import secrets
import shutil
import stat
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ...atomic import atomic_open
from ...limits import ARCHIVE_MAX_RATIO, ARCHIVE_MAX_TOTAL_BYTES, ARCHIVE_RATIO_FLOOR
from ...paths import is_within, really_within
from ..base import ConnectorBase, ProgressCallback

CHUNK_SIZE = 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass
class Member:
    """One archive entry, as the extractor sees it."""

    name: str  # normalised relative path, "/"-separated
    raw: str  # the name as stored, for messages
    kind: str  # "file", "dir", "symlink" or "hardlink"
    link: str = ""  # symlink target as stored, or hard link target (normalised member name)
    mode: int | None = None
    mtime: float | None = None
    handle: Any = None  # the format's own entry object (ZipInfo, TarInfo)
    size: int | None = None  # uncompressed size the entry declares, when the format knows it


class Refused(Exception):
    """An entry that may not be extracted; ``reason`` says why."""

    def __init__(self, raw: str, reason: str):
        super().__init__(reason)
        self.raw = raw
        self.reason = reason


def normalise_name(raw: str) -> str:
    """A stored entry name as a safe relative path, or :class:`Refused`. ``""`` is the root."""
    text = raw.replace("\\", "/")
    if "\0" in text:
        raise Refused(raw, "its name contains a NUL character")
    if text.startswith("/") or _DRIVE.match(text):
        raise Refused(raw, "it has an absolute path")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise Refused(raw, "its path has a '..' component")
    return "/".join(parts)


def check_symlink(member: Member) -> None:
    """Refuse a symbolic link whose target is absolute or climbs out of the destination."""
    target = member.link.replace("\\", "/")
    if not target or "\0" in target:
        raise Refused(member.raw, f"symbolic link with an invalid target {member.link!r}")
    if target.startswith("/") or _DRIVE.match(target):
        raise Refused(member.raw, f"symbolic link to {member.link!r} points outside the destination (absolute target)")
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(member.name), target))
    if joined == ".." or joined.startswith("../"):
        raise Refused(member.raw, f"symbolic link to {member.link!r} points outside the destination")


class _Budget:
    """Uncompressed bytes an archive may expand to: ``max_total_bytes``, and
    ``max_ratio`` times the archive's size once past the floor. ``error`` builds the
    connector's error (a :class:`ConnectorError`, which passes ``translate`` unchanged)."""

    def __init__(self, archive: Path, archive_size: int, max_total_bytes: int, max_ratio: float, error):
        self.error = error
        self.archive, self.archive_size = archive, archive_size
        self.max_total_bytes, self.max_ratio = max_total_bytes, max_ratio
        self.by_ratio = max(max_ratio * archive_size, ARCHIVE_RATIO_FLOOR)
        self.declared = 0
        self.written = 0

    def check(self, total: int) -> None:
        name = str(self.archive)
        if total > self.max_total_bytes:
            raise self.error(
                f"archive {name!r} expands to more than max_total_bytes={self.max_total_bytes:,} bytes; nothing was extracted",
                hint="raise max_total_bytes on the step if this archive is expected to be this large",
            )
        if total > self.by_ratio:
            raise self.error(
                f"archive {name!r} expands to more than {self.by_ratio:,.0f} bytes, {self.max_ratio:g} times its size "
                f"of {self.archive_size:,} bytes (max_ratio): an archive bomb? Nothing was extracted",
                hint=f"raise max_ratio on the step (now {self.max_ratio:g}) if the data is known to compress this well",
            )

    def declare(self, members: Iterable[Member]) -> Iterator[Member]:
        for member in members:
            if member.kind in ("file", "hardlink") and member.size:
                self.declared += member.size
                self.check(self.declared)
            yield member

    def wrote(self, size: int) -> None:
        self.written += size
        self.check(self.written)


class ArchiveConnector(ConnectorBase):
    """Base of the archive connectors: subclasses read and write one format."""

    kind = "archive"

    # -- what a format implements -------------------------------------------------------

    def _open_for_reading(self, archive: Path) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _read_members(self, handle: Any) -> list[Member]:
        """Every entry in archive order; special files raise :class:`Refused`."""
        raise NotImplementedError

    def _member_reader(self, handle: Any, member: Member) -> AbstractContextManager[IO[bytes]]:
        raise NotImplementedError

    def _write_archive(self, fh: IO[bytes], entries: list[tuple[Path, str]], progress: ProgressCallback | None) -> None:
        """Write ``(local path, name in archive)`` pairs (directories have no content),
        calling ``progress(1)`` after each."""
        raise NotImplementedError

    # -- create -------------------------------------------------------------------------

    def create(
        self,
        output: str | os.PathLike,
        files: Iterable[str | os.PathLike],
        base_dir: str | os.PathLike | None = None,
        *,
        progress: ProgressCallback | None = None,
        within: str | os.PathLike | None = None,
    ) -> dict[str, Any]:
        """Write an archive of ``files`` (files or directories) to ``output`` atomically.

        Names in the archive are relative to ``base_dir`` when given (every file must
        sit under it), else each path is stored under its own name. Symbolic links are
        followed: the archive holds the data; with ``within``, every file and directory
        archived must really lie inside that directory (links resolved). Returns
        ``{path, count, bytes}``.
        """
        out = Path(output).absolute()
        entries = self._collect(files, base_dir, {os.path.realpath(out)})
        if within is not None:
            for path, _ in entries:
                if not really_within(path, within):
                    raise self.error(
                        f"cannot archive {str(path)!r}: it is, or lies below, a symbolic link to {os.path.realpath(path)!r}, "
                        f"outside the job workspace {str(within)!r}"
                    )
        with self.translate(f"create archive {str(out)!r}"), atomic_open(out) as fh:
            self._write_archive(fh, entries, progress)
        count = sum(1 for path, _ in entries if not path.is_dir())
        return {"path": str(out), "count": count, "bytes": out.stat().st_size}

    def _collect(self, files: Iterable[str | os.PathLike], base_dir, skip: set[str]) -> list[tuple[Path, str]]:
        base = Path(base_dir).absolute() if base_dir is not None else None
        entries: list[tuple[Path, str]] = []
        names: dict[str, Path] = {}

        def add(path: Path, name: str) -> None:
            if name in names:
                if names[name] == path:
                    return
                raise self.error(f"two files would have the same name {name!r} in the archive: {str(names[name])!r} and {str(path)!r}")
            names[name] = path
            entries.append((path, name))

        for item in files:
            path = Path(item).absolute()
            if not path.exists():
                raise self.error(f"cannot archive {str(item)!r}: no such file or directory")
            if base is not None:
                try:
                    top = Path(os.path.relpath(path, base)).as_posix()
                except ValueError:
                    top = ".."
                if top == ".." or top.startswith("../"):
                    raise self.error(f"cannot archive {str(item)!r}: it is not under base_dir {str(base)!r}")
            else:
                top = path.name
            if path.is_dir():
                if top not in ("", "."):
                    add(path, top)
                for sub, rel in _walk(path):
                    if os.path.realpath(sub) in skip:
                        continue
                    add(sub, rel if top in ("", ".") else f"{top}/{rel}")
            elif os.path.realpath(path) not in skip:
                add(path, top)
        if not entries:
            raise self.error("nothing to archive: the list of files is empty")
        return entries

    # -- extract ------------------------------------------------------------------------

    def extract(
        self,
        archive: str | os.PathLike,
        dest_dir: str | os.PathLike,
        members: Iterable[str] | None = None,
        *,
        progress: ProgressCallback | None = None,
        max_total_bytes: int | None = None,
        max_ratio: float | None = None,
    ) -> list[str]:
        """Extract ``archive`` (or only ``members``) into ``dest_dir``; returns the
        relative paths of the files extracted, in archive order. The entries may expand
        to ``max_total_bytes`` at most, and to ``max_ratio`` times the archive's size
        (both with safe defaults, see :mod:`aetherflow.core.limits`)."""
        source = Path(archive)
        if not source.is_file():
            raise self.error(f"archive {str(archive)!r} does not exist or is not a file")
        dest = Path(dest_dir).absolute()
        budget = _Budget(
            source,
            source.stat().st_size,
            ARCHIVE_MAX_TOTAL_BYTES if max_total_bytes is None else max_total_bytes,
            ARCHIVE_MAX_RATIO if max_ratio is None else max_ratio,
            self.error,
        )
        with self.translate(f"read archive {str(source)!r}"):
            with self._open_for_reading(source) as handle:
                try:
                    entries = self._validated(budget.declare(self._read_members(handle)))
                except Refused as refused:
                    raise self._refusal(source, refused) from None
                entries = self._select(entries, members, source)
                dest.mkdir(parents=True, exist_ok=True)
                staging = dest / f".aetherflow-extract-{secrets.token_hex(6)}"
                staging.mkdir()
                try:
                    self._unpack(handle, entries, staging, source, progress, budget)
                    links = self._place(staging, dest, entries, source)
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
                self._verify_placed_links(dest, links, source)
        # An entry stored twice was extracted once (the later one wins): list it once.
        return list(dict.fromkeys(m.name for m in entries if m.kind != "dir"))

    def _refusal(self, archive: Path, refused: Refused):
        return self.error(f"refusing entry {refused.raw!r} of archive {str(archive)!r}: {refused.reason}")

    def _validated(self, entries: list[Member]) -> list[Member]:
        kinds: dict[str, str] = {}
        result = []
        for member in entries:
            name = normalise_name(member.raw)
            if not name:
                if member.kind == "dir":
                    continue  # "./" - the destination itself
                raise Refused(member.raw, "it has an empty name")
            member.name = name
            if member.kind == "symlink":
                check_symlink(member)
            elif member.kind == "hardlink":
                try:
                    target = normalise_name(member.link) if member.link else ""
                except Refused as refused:
                    raise Refused(member.raw, f"hard link to {member.link!r}: {refused.reason}") from None
                if kinds.get(target) != "file":
                    raise Refused(member.raw, f"hard link to {member.link!r} does not point to a file earlier in the archive")
                member.link = target
            kinds[name] = "file" if member.kind == "hardlink" else member.kind
            result.append(member)
        return result

    def _select(self, entries: list[Member], members: Iterable[str] | None, source: Path) -> list[Member]:
        if members is None:
            return entries
        wanted = []
        for item in members:
            try:
                wanted.append(normalise_name(str(item)))
            except Refused as refused:
                raise self.error(f"member {str(item)!r}: {refused.reason}") from None
        chosen = [m for m in entries if any(m.name == w or m.name.startswith(w + "/") for w in wanted)]
        for w in wanted:
            if not any(m.name == w or m.name.startswith(w + "/") for m in entries):
                raise self.error(f"member {w!r} is not in archive {str(source)!r}")
        return chosen

    def _unpack(self, handle: Any, entries: list[Member], staging: Path, source: Path, progress: ProgressCallback | None, budget: _Budget) -> None:
        root = str(staging)
        by_name = {m.name: m for m in entries}
        order = [m for m in entries if m.kind in ("dir", "file")]
        order += [m for m in entries if m.kind == "hardlink"]
        symlinks = [m for m in entries if m.kind == "symlink"]
        for member in order:
            target = staging.joinpath(*member.name.split("/"))
            try:
                if member.kind == "dir":
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_dir() and not target.is_symlink():
                    raise Refused(member.raw, "a directory of the same name is in the archive")
                if member.kind == "hardlink" and by_name.get(member.link) is not None:
                    linked = staging.joinpath(*member.link.split("/"))
                    target.unlink(missing_ok=True)
                    os.link(linked, target)
                else:
                    # A hard link whose target was not selected gets the target's data.
                    with self._member_reader(handle, member) as reader, open(target, "wb") as fh:
                        while chunk := reader.read(CHUNK_SIZE):
                            budget.wrote(len(chunk))
                            fh.write(chunk)
                    _apply_metadata(target, member)
            except Refused as refused:
                raise self._refusal(source, refused) from None
            except (NotADirectoryError, FileExistsError, IsADirectoryError) as exc:
                raise self._refusal(source, Refused(member.raw, f"it conflicts with another entry ({exc.strerror})")) from None
            if progress is not None:
                progress(1)
        for member in symlinks:
            target = staging.joinpath(*member.name.split("/"))
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_symlink() or target.is_file():
                    target.unlink()
                os.symlink(member.link.replace("\\", "/"), target)
            except (NotADirectoryError, FileExistsError, IsADirectoryError) as exc:
                raise self._refusal(source, Refused(member.raw, f"it conflicts with another entry ({exc.strerror})")) from None
            if progress is not None:
                progress(1)
        # A link may be harmless alone and escape through another link ("a" -> ".",
        # "b" -> "a/.."): resolve every link on disk, now that all of them exist.
        for member in symlinks:
            resolved = os.path.realpath(staging.joinpath(*member.name.split("/")))
            if not is_within(resolved, os.path.realpath(root)):
                raise self._refusal(source, Refused(member.raw, f"symbolic link to {member.link!r} points outside the destination"))

    def _place(self, staging: Path, dest: Path, entries: list[Member], source: Path) -> list[Path]:
        """Move the staged tree into ``dest``; returns the symbolic links placed."""
        raw_of = {m.name: m.raw for m in entries}

        def move(src: Path, dst: Path, rel: str) -> None:
            try:
                existing = os.lstat(dst)
            except FileNotFoundError:
                existing = None
            if src.is_dir() and not src.is_symlink():
                if existing is None:
                    os.rename(src, dst)
                elif stat.S_ISDIR(existing.st_mode):
                    for child in sorted(os.listdir(src)):
                        move(src / child, dst / child, f"{rel}/{child}")
                else:
                    raise self._refusal(source, Refused(raw_of.get(rel, rel), f"{str(dst)!r} already exists and is not a directory (a link or a file)"))
                return
            if existing is not None and stat.S_ISDIR(existing.st_mode):
                raise self._refusal(source, Refused(raw_of.get(rel, rel), f"{str(dst)!r} already exists and is a directory"))
            os.replace(src, dst)

        for child in sorted(os.listdir(staging)):
            move(staging / child, dest / child, child)
        return [dest.joinpath(*m.name.split("/")) for m in entries if m.kind == "symlink"]

    def _verify_placed_links(self, dest: Path, links: list[Path], source: Path) -> None:
        """Links already in ``dest`` can redirect a staged link that was harmless on its
        own; any placed link that now resolves outside ``dest`` is removed again."""
        root = os.path.realpath(dest)
        escaped = [link for link in links if not is_within(os.path.realpath(link), root)]
        for link in links if escaped else ():
            if link.is_symlink():
                link.unlink()
        if escaped:
            name = escaped[0].relative_to(dest).as_posix()
            raise self._refusal(source, Refused(name, "symbolic link resolves outside the destination through a link already in it"))


def _walk(top: Path) -> Iterator[tuple[Path, str]]:
    """Files and directories under ``top`` (sorted, following links, each real
    directory once) with their ``/``-separated path relative to ``top``."""
    seen = {os.path.realpath(top)}
    pending = [(top, "")]
    while pending:
        directory, prefix = pending.pop(0)
        for child in sorted(directory.iterdir(), key=lambda p: p.name):
            rel = f"{prefix}{child.name}"
            if child.is_dir():
                real = os.path.realpath(child)
                if real in seen:
                    continue
                seen.add(real)
                yield child, rel
                pending.append((child, rel + "/"))
            elif child.exists():
                yield child, rel


def _apply_metadata(path: Path, member: Member) -> None:
    if member.mode is not None:
        # Permission bits only, never setuid/setgid/sticky or group/other write.
        os.chmod(path, (member.mode & 0o755) | 0o600)
    if member.mtime is not None:
        try:
            os.utime(path, (member.mtime, member.mtime))
        except (OverflowError, ValueError, OSError):
            pass
