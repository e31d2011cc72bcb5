"""``files_list``, ``files_download``, ``files_upload``, ``files_delete``, ``files_copy``.

They work with any remote-files connector (``sftp/paramiko``, ``smb/smbprotocol``,
``fs/local`` or a plugin offering the same primitives). Transfers stream; every file
lands under a temporary name and is renamed into place.

Where files land: a set of remote files keeps its tree below the deepest directory
all of them share (``in/a.csv`` and ``in/sub/b.csv`` become ``a.csv`` and
``sub/b.csv``; a single file keeps only its name). ``files_copy`` with ``remote_dir``
keeps the tree below ``remote_dir``. Remote names are untrusted: one that would land
outside the destination (``..``, absolute, backslash tricks) fails the step before
anything is transferred.
"""

from __future__ import annotations

import glob
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...connectors.families.files import join_path, safe_local_path, safe_parts
from ...errors import StepError, StepInputError
from ..base import STEP_SKIPPED, STEP_SUCCESS, Input, Step, StepResult, resource_connector

_FILES_API = ("list", "stat", "exists", "open_read", "upload_stream", "download", "upload", "delete", "mkdir", "rename")


def files_connector(ctx, name: str):
    """The connector of resource ``name``, checked to offer the remote-files primitives."""
    return resource_connector(
        ctx, name, lambda c: all(callable(getattr(c, m, None)) for m in _FILES_API), "a files connector (sftp, smb or fs)"
    )


@dataclass(frozen=True)
class _Remote:
    """One remote file to transfer: its path and size (for the progress bar)."""

    path: str
    size: int


def stoppable(ctx, advance):
    """``advance`` (a progress bar's) that also stops the transfer once the step is
    cancelled (Ctrl-C, ``timeout_seconds``): the connector then removes its partial file."""

    def progress(amount: float) -> None:
        advance(amount)
        ctx.cancel.raise_if_cancelled()

    return progress


def _as_list(value: Any, what: str) -> list[Any]:
    if isinstance(value, (str, dict)):
        return [value]
    if isinstance(value, list):
        return value
    raise StepInputError(f"input {what!r}: expected a list of paths or file entries, got {type(value).__name__}")


def remote_files(connector, value: Any, what: str = "files") -> list[_Remote]:
    """Entries (``files_list`` output) or paths, as remote files. Paths are looked up
    so that a missing file fails before any transfer; directories are refused."""
    result: list[_Remote] = []
    seen: set[str] = set()
    for item in _as_list(value, what):
        if isinstance(item, dict):
            path = item.get("path")
            if not isinstance(path, str) or not path:
                raise StepInputError(f"input {what!r}: entry {item!r} has no 'path'")
            if item.get("is_dir"):
                raise StepError(f"{path!r} is a directory; list it with recursive: true and pass its files")
            size = item.get("size")
            if not isinstance(size, int) or isinstance(size, bool):
                size = connector.stat(path).size
        elif isinstance(item, str) and item:
            path = item
            entry = connector.stat(path)
            if entry.is_dir:
                raise StepError(f"{path!r} is a directory; list it with recursive: true and pass its files")
            size = entry.size
        else:
            raise StepInputError(f"input {what!r}: expected a path or a file entry, got {item!r}")
        if path not in seen:
            seen.add(path)
            result.append(_Remote(path, size))
    return result


def relative_names(paths: list[str], base: str | None = None) -> list[str]:
    """Where each remote path lands below a destination directory: below ``base`` when
    given (the listed directory), else below the deepest directory all paths share.
    The names are not checked here: see :func:`safe_parts`."""
    if base is not None and base not in ("", "."):
        prefix = base.rstrip("/") + "/"
        if all(p.startswith(prefix) for p in paths):
            return [p[len(prefix):] for p in paths]
    split = [p.split("/") for p in paths]
    common = split[0][:-1] if split else []
    for parts in split[1:]:
        size = 0
        for a, b in zip(common, parts[:-1]):
            if a != b:
                break
            size += 1
        common = common[:size]
    return ["/".join(parts[len(common):]) for parts in split]


class FilesList(Step):
    type = "files_list"
    summary = "List files of a remote directory (pattern, recursive); SKIPPED below min_count"
    inputs = {
        "resource": Input(str, required=True, resource=True, help="a files resource (sftp, smb, fs)"),
        "remote_dir": Input(str, required=True, help="directory to list ('' or '.' is the start directory)"),
        "pattern": Input(str, default="*", help="shell wildcards matched against file names"),
        "recursive": Input(bool, default=False, help="also list files in every subdirectory"),
        "min_count": Input(int, default=1, help="fewer files than this makes the step SKIPPED"),
    }
    outputs = ("files", "count", "has_data")

    def run(self, ctx, inputs):
        connector = files_connector(ctx, inputs["resource"])
        entries = connector.list(inputs["remote_dir"], inputs["pattern"] or "*", bool(inputs["recursive"]))
        files = [entry.to_dict() for entry in entries if not entry.is_dir]
        count = len(files)
        has_data = count >= (1 if inputs["min_count"] is None else inputs["min_count"])
        ctx.logger.info("files_list.listed", extra={"resource": inputs["resource"], "remote_dir": inputs["remote_dir"], "count": count})
        return StepResult(STEP_SUCCESS if has_data else STEP_SKIPPED, {"files": files, "count": count, "has_data": has_data})


class FilesDownload(Step):
    type = "files_download"
    summary = "Download remote files into a local directory (streamed, atomic per file)"
    inputs = {
        "resource": Input(str, required=True, resource=True, help="a files resource (sftp, smb, fs)"),
        "files": Input((list, str, dict), required=True, help="file entries from files_list, or remote paths"),
        "dest_dir": Input(str, required=True, help="local directory (workspace-relative or absolute), created if missing"),
    }
    outputs = ("local_files", "count", "bytes")

    def run(self, ctx, inputs):
        connector = files_connector(ctx, inputs["resource"])
        dest = ctx.path(inputs["dest_dir"], what="dest_dir")
        files = remote_files(connector, inputs["files"])
        # Every local name is checked before the first byte moves.
        targets = [safe_local_path(dest, name) for name in relative_names([f.path for f in files])]
        _refuse_duplicates([str(t) for t in targets], "local file")
        dest.mkdir(parents=True, exist_ok=True)
        total = 0
        bar = ctx.progress(f"download from {inputs['resource']}", total=sum(f.size for f in files), unit="B")
        try:
            for remote, local in zip(files, targets):
                total += connector.download(remote.path, local, progress=stoppable(ctx, bar.advance))
        finally:
            bar.close()
        local_files = [str(t) for t in targets]
        ctx.logger.info("files_download.done", extra={"resource": inputs["resource"], "count": len(local_files), "bytes": total})
        return StepResult(STEP_SUCCESS, {"local_files": local_files, "count": len(local_files), "bytes": total})


class FilesUpload(Step):
    type = "files_upload"
    summary = "Upload local files (paths or globs) into a remote directory (temporary name, then rename)"
    inputs = {
        "resource": Input(str, required=True, resource=True, help="a files resource (sftp, smb, fs)"),
        "local_files": Input((list, str), required=True, help="paths or globs, workspace-relative or absolute"),
        "remote_dir": Input(str, required=True, help="remote directory, created if missing"),
        "overwrite": Input(bool, default=True, help="replace existing remote files (else fail on the first one)"),
    }
    outputs = ("uploaded", "count", "bytes")

    def run(self, ctx, inputs):
        connector = files_connector(ctx, inputs["resource"])
        locals_ = _expand_local(ctx, inputs["local_files"])
        remote_dir = inputs["remote_dir"]
        if not locals_:
            ctx.logger.info("files_upload.nothing", extra={"resource": inputs["resource"]})
            return StepResult(STEP_SKIPPED, {"uploaded": [], "count": 0, "bytes": 0})
        targets = [join_path(remote_dir, path.name) for path in locals_]
        _refuse_duplicates(targets, "remote name")
        if remote_dir not in ("", ".", "/"):
            connector.mkdir(remote_dir, parents=True)
        total = 0
        bar = ctx.progress(f"upload to {inputs['resource']}", total=sum(p.stat().st_size for p in locals_), unit="B")
        try:
            for local, target in zip(locals_, targets):
                total += connector.upload(local, target, overwrite=inputs["overwrite"] is not False, progress=stoppable(ctx, bar.advance))
        finally:
            bar.close()
        ctx.logger.info("files_upload.done", extra={"resource": inputs["resource"], "count": len(targets), "bytes": total})
        return StepResult(STEP_SUCCESS, {"uploaded": targets, "count": len(targets), "bytes": total})


class FilesDelete(Step):
    type = "files_delete"
    summary = "Delete remote files (entries or paths)"
    inputs = {
        "resource": Input(str, required=True, resource=True, help="a files resource (sftp, smb, fs)"),
        "files": Input((list, str, dict), required=True, help="file entries from files_list, or remote paths"),
        "missing_ok": Input(bool, default=False, help="a file that is already gone is not an error"),
    }
    outputs = ("deleted",)

    def run(self, ctx, inputs):
        connector = files_connector(ctx, inputs["resource"])
        deleted: list[str] = []
        for item in _as_list(inputs["files"], "files"):
            path = item.get("path") if isinstance(item, dict) else item
            if not isinstance(path, str) or not path:
                raise StepInputError(f"input 'files': expected a path or a file entry, got {item!r}")
            if inputs["missing_ok"] and not connector.exists(path):
                continue
            connector.delete(path)
            deleted.append(path)
        ctx.logger.info("files_delete.done", extra={"resource": inputs["resource"], "count": len(deleted)})
        return StepResult(STEP_SUCCESS, {"deleted": deleted})


class FilesCopy(Step):
    type = "files_copy"
    summary = "Copy files between two files resources (e.g. SFTP to SMB), streamed"
    inputs = {
        "source": Input(str, required=True, resource=True, help="files resource to read from"),
        "target": Input(str, required=True, resource=True, help="files resource to write to"),
        "files": Input((list, str, dict), help="file entries or source paths (or use remote_dir + pattern)"),
        "remote_dir": Input(str, help="source directory to copy from, with pattern (and the base of 'files')"),
        "pattern": Input(str, default="*", help="shell wildcards matched against file names in remote_dir"),
        "recursive": Input(bool, default=False, help="also copy files of subdirectories, keeping the tree"),
        "target_dir": Input(str, required=True, help="directory on the target, created if missing"),
        "overwrite": Input(bool, default=True, help="replace existing target files (else fail on the first one)"),
    }
    outputs = ("copied", "count", "bytes")

    def run(self, ctx, inputs):
        source = files_connector(ctx, inputs["source"])
        target = files_connector(ctx, inputs["target"])
        remote_dir = inputs.get("remote_dir")
        if inputs.get("files") is not None:
            files = remote_files(source, inputs["files"])
        elif remote_dir is not None:
            entries = source.list(remote_dir, inputs["pattern"] or "*", bool(inputs["recursive"]))
            files = [_Remote(e.path, e.size) for e in entries if not e.is_dir]
        else:
            raise StepInputError("step type 'files_copy': give 'files', or 'remote_dir' (with 'pattern')")
        target_dir = inputs["target_dir"]
        names = relative_names([f.path for f in files], remote_dir)
        targets = [_target_path(target_dir, name) for name in names]
        _refuse_duplicates(targets, "target path")

        created: set[str] = set()
        total = 0
        bar = ctx.progress(f"copy {inputs['source']} -> {inputs['target']}", total=sum(f.size for f in files), unit="B")
        try:
            for remote, path in zip(files, targets):
                parent = posixpath.dirname(path)
                if parent not in created and parent not in ("", ".", "/"):
                    target.mkdir(parent, parents=True)
                    created.add(parent)
                with source.open_read(remote.path) as reader:
                    total += target.upload_stream(reader, path, overwrite=inputs["overwrite"] is not False, progress=stoppable(ctx, bar.advance))
        finally:
            bar.close()
        ctx.logger.info(
            "files_copy.done",
            extra={"source": inputs["source"], "target": inputs["target"], "count": len(targets), "bytes": total},
        )
        return StepResult(STEP_SUCCESS, {"copied": targets, "count": len(targets), "bytes": total})


def _target_path(target_dir: str, name: str) -> str:
    try:
        parts = safe_parts(name)
    except ValueError:
        raise StepError(f"refusing remote name {name!r}: it would land outside target_dir {target_dir!r}") from None
    return join_path(target_dir.rstrip("/") or target_dir, "/".join(parts))


def _refuse_duplicates(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise StepError(f"two files would be written to the same {what} {name!r}")
        seen.add(name)


def _expand_local(ctx, value: Any) -> list[Path]:
    """Workspace-relative (or absolute) paths and globs as files. A path that does not
    exist is an error; a glob may match nothing; directories are skipped."""
    items = [value] if isinstance(value, str) else list(value)
    found: list[Path] = []
    for item in items:
        if not isinstance(item, str) or not item:
            raise StepInputError(f"input 'local_files': expected a path or glob, got {item!r}")
        resolved = ctx.path(item, what="local file")
        if glob.has_magic(item):
            found.extend(m for m in ctx.glob(item, what="local file") if m.is_file())
        elif resolved.is_file():
            found.append(resolved)
        elif resolved.exists():
            raise StepError(f"local file {item!r} is a directory; use a glob such as '{item.rstrip('/')}/*'")
        else:
            raise StepError(f"local file {item!r} does not exist")
    unique: dict[str, Path] = {}
    for path in found:
        unique.setdefault(os.path.normpath(path), path)
    return list(unique.values())
