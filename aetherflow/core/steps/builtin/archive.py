"""``archive_create`` and ``archive_extract``.

Both take an optional ``resource`` (an ``archive/zipfile`` or ``archive/tar``
connector with its settings). Without one, the format comes from the file name:
``.zip``, ``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2``/``.tbz2``, ``.tar.xz``/``.txz``,
with default settings; an archive to extract whose name says nothing is recognised by
its content.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

from ...connectors.registry import get_connector_class
from ...errors import StepError
from ...limits import ARCHIVE_MAX_RATIO, ARCHIVE_MAX_TOTAL_BYTES
from ..base import STEP_SUCCESS, Input, Step, StepResult, resource_connector

_SUFFIXES: tuple[tuple[str, str, str | None], ...] = (
    (".tar.gz", "tar", "gz"),
    (".tgz", "tar", "gz"),
    (".tar.bz2", "tar", "bz2"),
    (".tbz2", "tar", "bz2"),
    (".tar.xz", "tar", "xz"),
    (".txz", "tar", "xz"),
    (".tar", "tar", "none"),
    (".zip", "zip", None),
)
_KNOWN = ".zip, .tar, .tar.gz, .tgz, .tar.bz2, .tar.xz"


def _build(fmt: str, compression: str | None):
    """A built-in archive connector with default settings."""
    if fmt == "zip":
        return get_connector_class("archive", "zipfile")(config={}, options={})
    return get_connector_class("archive", "tar")(config={"compression": compression}, options={})


def _connector(ctx, resource: str | None, path: Path, *, sniff: bool):
    """The archive connector named by ``resource``, else one chosen from ``path``."""
    if resource:
        return resource_connector(
            ctx, resource, lambda c: getattr(c, "kind", None) == "archive" and callable(getattr(c, "extract", None)), "an archive connector"
        )
    name = path.name.lower()
    for suffix, fmt, compression in _SUFFIXES:
        if name.endswith(suffix):
            return _build(fmt, compression)
    if sniff and path.is_file():
        import tarfile
        import zipfile

        if zipfile.is_zipfile(path):
            return _build("zip", None)
        if tarfile.is_tarfile(path):
            return _build("tar", "none")  # reading detects the compression itself
    raise StepError(f"cannot tell the archive format of {path.name!r} from its name ({_KNOWN}); name it so or give a resource")


def _expand(ctx, items: list[str]) -> list[Path]:
    """Workspace-relative paths or globs, each matching at least one file or directory."""
    paths: list[Path] = []
    for item in items:
        resolved = ctx.path(item, what="file")
        if glob.has_magic(str(item)):
            matches = ctx.glob(item, what="file")
            if not matches:
                raise StepError(f"no file matches {item!r}")
            paths.extend(matches)
        elif resolved.exists():
            paths.append(resolved)
        else:
            raise StepError(f"file {item!r} does not exist")
    return paths


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


class ArchiveCreate(Step):
    type = "archive_create"
    summary = "Pack files (paths or globs) into a zip or tar archive, atomically"
    inputs = {
        "output": Input(str, required=True, help="archive to write; its extension picks the format unless resource is given"),
        "files": Input((list, str), required=True, help="paths or globs (workspace-relative); directories are added whole"),
        "base_dir": Input(str, help="names in the archive are relative to this directory (default: each file's own name)"),
        "resource": Input(str, resource=True, help="an archive/zipfile or archive/tar resource with its settings"),
    }
    outputs = ("path", "count", "bytes")

    def run(self, ctx, inputs):
        output = ctx.path(inputs["output"], what="output")
        items = _as_list(inputs["files"])
        files = _expand(ctx, items)
        base_dir = ctx.path(inputs["base_dir"], what="base_dir") if inputs.get("base_dir") else None
        connector = _connector(ctx, inputs.get("resource"), output, sniff=False)
        # Workspace-relative inputs may not reach outside it through links inside directories;
        # absolute paths name what they name.
        confine = {} if any(Path(item).expanduser().is_absolute() for item in items) else {"within": ctx.workspace}
        bar = ctx.progress(f"archive {output.name}", total=None, unit="files")
        try:
            result = connector.create(output, files, base_dir, progress=bar.advance, **confine)
        finally:
            bar.close()
        ctx.logger.info("archive_create.written", extra={"path": result["path"], "count": result["count"], "bytes": result["bytes"]})
        return StepResult(STEP_SUCCESS, result)


class ArchiveExtract(Step):
    type = "archive_extract"
    summary = "Unpack a zip or tar archive safely (nothing may land outside dest_dir)"
    inputs = {
        "archive": Input(str, required=True, help="archive to read (workspace-relative or absolute)"),
        "dest_dir": Input(str, required=True, help="directory to extract into (created if missing)"),
        "members": Input((list, str), help="only these entries (names or directories inside the archive)"),
        "resource": Input(str, resource=True, help="an archive/zipfile or archive/tar resource"),
        "max_total_bytes": Input(int, minimum=1, help=f"uncompressed bytes the archive may expand to (default {ARCHIVE_MAX_TOTAL_BYTES:,})"),
        "max_ratio": Input((int, float), minimum=1, help=f"uncompressed bytes per byte of archive, past 16 MiB (default {ARCHIVE_MAX_RATIO})"),
    }
    outputs = ("files", "count")

    def run(self, ctx, inputs):
        archive = ctx.path(inputs["archive"], what="archive")
        dest = ctx.path(inputs["dest_dir"], what="dest_dir")
        members = _as_list(inputs["members"]) if inputs.get("members") is not None else None
        connector = _connector(ctx, inputs.get("resource"), archive, sniff=True)
        bar = ctx.progress(f"extract {archive.name}", total=None, unit="files")
        limits = {k: inputs[k] for k in ("max_total_bytes", "max_ratio") if inputs.get(k) is not None}
        try:
            names = connector.extract(archive, dest, members, progress=bar.advance, **limits)
        finally:
            bar.close()
        files = [str(dest.joinpath(*name.split("/"))) for name in names]
        ctx.logger.info("archive_extract.extracted", extra={"archive": str(archive), "count": len(files)})
        return StepResult(STEP_SUCCESS, {"files": files, "count": len(files)})
