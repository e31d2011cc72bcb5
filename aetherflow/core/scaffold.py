"""``aetherflow init``: a small working project from a template.

A template is a folder under ``aetherflow/core/templates/``; its files are copied with
the project's flow id in place of ``__FLOW_ID__`` (``dot-NAME`` becomes ``.NAME``, so
packaging keeps them). The JSON Schemas the files point their editor at are generated
into ``schemas/`` with the template's plugins loaded, so an editor knows the project's
own steps too. Every file is planned before the first is written, and existing files
are never replaced unless asked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import UserError, suggest

DEFAULT_TEMPLATE = "duckdb"
FLOW_ID_TOKEN = "__FLOW_ID__"


@dataclass(frozen=True)
class Project:
    """What ``init`` wrote."""

    directory: Path
    template: str
    flow_id: str
    files: tuple[Path, ...]


def _templates():
    return resources.files("aetherflow.core") / "templates"


def template_names() -> list[str]:
    return sorted(entry.name for entry in _templates().iterdir() if entry.is_dir() and not entry.name.startswith(("_", ".")))


def flow_id_for(directory: Path) -> str:
    """A flow id from the project folder's name (ids are letters, digits, ``_ . -``)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", directory.resolve().name).strip("_.-")
    return name or "example"


def create_project(directory: str | Path, *, template: str = DEFAULT_TEMPLATE, force: bool = False) -> Project:
    """Write the project; refuses to replace an existing file unless ``force``."""
    target = Path(directory)
    names = template_names()
    if template not in names:
        raise UserError(f"unknown template {template!r}{suggest(template, names)}", hint=f"templates: {', '.join(names)}")
    if target.exists() and not target.is_dir():
        raise UserError(f"{str(target)!r} exists and is not a folder", hint="name a new or existing folder")
    flow_id = flow_id_for(target)
    planned = _render(_templates() / template, flow_id)
    planned.update(_schemas(planned))
    existing = sorted(name for name in planned if (target / name).exists())
    if existing and not force:
        raise UserError(
            f"{len(existing)} file(s) already exist in {str(target)!r}: {', '.join(existing)}",
            hint="choose an empty folder, or pass --force to replace them",
        )
    from .atomic import atomic_open

    written = []
    for name, text in planned.items():
        with atomic_open(target / name) as fh:
            fh.write(text.encode("utf-8"))
        written.append(target / name)
    return Project(target, template, flow_id, tuple(written))


def _render(folder, flow_id: str) -> dict[str, str]:
    planned: dict[str, str] = {}

    def walk(node, prefix: str) -> None:
        for entry in sorted(node.iterdir(), key=lambda e: e.name):
            if entry.name == "__pycache__":
                continue
            name = "." + entry.name.removeprefix("dot-") if entry.name.startswith("dot-") else entry.name
            if entry.is_dir():
                walk(entry, f"{prefix}{name}/")
            else:
                planned[prefix + name] = entry.read_text(encoding="utf-8").replace(FLOW_ID_TOKEN, flow_id)

    walk(folder, "")
    return planned


def _schemas(planned: dict[str, str]) -> dict[str, str]:
    """The flow and profiles schemas, knowing the template's plugins.

    The plugins are loaded from a scratch copy (they are not written yet) and their
    registrations are undone afterwards: the process may go on to other work.
    """
    import tempfile

    from .plugins import load_plugins
    from .registration import registrations_undone
    from .spec.json_schema import dumps, flow_schema, profiles_schema

    plugin_files = {name: text for name, text in planned.items() if name.startswith("plugins/") and name.endswith(".py")}
    with registrations_undone(), tempfile.TemporaryDirectory(prefix="aetherflow-init-") as scratch:
        paths = []
        for name, text in plugin_files.items():
            path = Path(scratch) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            paths.append(str(path))
        load_plugins(paths, strict=True, entry_points=False)
        return {"schemas/flow.schema.json": dumps(flow_schema()), "schemas/profiles.schema.json": dumps(profiles_schema())}
