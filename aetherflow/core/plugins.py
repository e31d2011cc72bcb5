"""Plugins: Python files or folders from ``AETHERFLOW_PLUGIN_PATHS`` and the
``aetherflow.plugins`` entry-point group. Importing a plugin registers its connectors
and steps. With strict plugins (the default) a plugin that fails to import fails the
command, naming the plugin; otherwise it is reported and skipped.

A folder is searched recursively for ``*.py`` files (names starting with ``_`` or
``.`` skipped, files and folders alike), imported in path order. Each file becomes a
module whose name depends only on its path, so class names shown by ``resolve`` and
``connectors list`` are the same in every process. An entry point may name a module
(importing it registers), or a callable (``module:register``), which is called with no
arguments after it is loaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
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
    if not path.is_dir():
        return [path]
    found = []
    for file in path.rglob("*.py"):
        relative = file.relative_to(path).parts
        if not any(part.startswith(("_", ".")) for part in relative):
            found.append(file)
    return sorted(found, key=lambda f: f.relative_to(path).parts)


def module_name(file: Path) -> str:
    """The module name a plugin file is imported under: its stem and a digest of its path."""
    resolved = str(file.resolve())
    digest = hashlib.sha256(resolved.encode("utf-8")).hexdigest()[:10]
    stem = re.sub(r"\W", "_", file.stem)
    return f"aetherflow_plugin_{stem}_{digest}"


def _import_file(file: Path) -> None:
    name = module_name(file)
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
                    _load_entry_point(target)
            except AetherflowError as exc:
                _fail(f"plugin {origin.removeprefix('plugin:')} failed: {exc.message}", strict, hint=exc.hint)
                continue
            except Exception as exc:  # noqa: BLE001 - plugin code is foreign
                _fail(f"plugin {origin.removeprefix('plugin:')} failed to import: {type(exc).__name__}: {exc}", strict)
                continue
        _loaded.add(origin)
        loaded.append(origin)
    return loaded


def _load_entry_point(entry_point) -> None:
    loaded = entry_point.load()
    if inspect.ismodule(loaded):
        register = getattr(loaded, "register", None)
        if inspect.isfunction(register) and register.__module__ == loaded.__name__:
            register()
    elif callable(loaded) and not inspect.isclass(loaded):
        loaded()


def saved_state() -> frozenset[str]:
    return frozenset(_loaded)


def restore_state(state: frozenset[str]) -> None:
    _loaded.clear()
    _loaded.update(state)


def _fail(message: str, strict: bool, hint: str | None = None) -> None:
    if strict:
        raise PluginError(message, hint=hint or "fix the plugin, or set AETHERFLOW_PLUGIN_STRICT=false to skip it")
    log.warning("plugin.skipped", extra={"detail": message})
