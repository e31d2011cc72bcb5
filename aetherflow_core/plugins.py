"""Plugins: Python files or folders from ``AETHERFLOW_PLUGIN_PATHS`` and the
``aetherflow.plugins`` entry-point group. Importing a plugin registers its connectors
and steps. With strict plugins (the default) a plugin that fails to import fails the
command, naming the plugin; otherwise it is reported and skipped.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from .errors import AetherflowError, PluginError
from .registration import loading_origin

log = logging.getLogger("aetherflow.plugins")

_loaded: set[str] = set()


def _plugin_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.glob("*.py") if not p.name.startswith("_"))
    return [path]


def _import_file(file: Path) -> None:
    name = "aetherflow_plugin_" + re.sub(r"\W", "_", file.stem) + f"_{abs(hash(str(file.resolve()))):x}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"not a Python file: {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise


def load_plugins(paths: Iterable[str], *, strict: bool = True, entry_points: bool = True) -> list[str]:
    """Import every plugin once; return the origins that loaded."""
    loaded = []
    jobs: list[tuple[str, object]] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            _fail(f"plugin path {raw!r} does not exist", strict, hint="check AETHERFLOW_PLUGIN_PATHS")
            continue
        jobs.extend((f"plugin:{file}", file) for file in _plugin_files(path))
    if entry_points:
        from importlib.metadata import entry_points as find_entry_points

        jobs.extend((f"plugin:{ep.name} ({ep.value})", ep) for ep in find_entry_points(group="aetherflow.plugins"))
    for origin, target in jobs:
        if origin in _loaded:
            continue
        with loading_origin(origin):
            try:
                if isinstance(target, Path):
                    _import_file(target)
                else:
                    target.load()
            except AetherflowError as exc:
                _fail(f"plugin {origin.removeprefix('plugin:')} failed: {exc.message}", strict, hint=exc.hint)
                continue
            except Exception as exc:  # noqa: BLE001 - plugin code is foreign
                _fail(f"plugin {origin.removeprefix('plugin:')} failed to import: {type(exc).__name__}: {exc}", strict)
                continue
        _loaded.add(origin)
        loaded.append(origin)
    return loaded


def _fail(message: str, strict: bool, hint: str | None = None) -> None:
    if strict:
        raise PluginError(message, hint=hint or "fix the plugin, or set AETHERFLOW_PLUGIN_STRICT=false to skip it")
    log.warning("plugin.skipped", extra={"detail": message})
