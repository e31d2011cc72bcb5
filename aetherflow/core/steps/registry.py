"""The step registry: step type name -> step class.

Built-in steps are declared as data (type -> ``"module:Class"``) and imported the first
time they are needed, so listing the types imports nothing. Plugins register classes
with :func:`register_step`. The connector registry (:mod:`aetherflow.core.connectors.registry`)
works the same way.
"""

from __future__ import annotations

import warnings
from typing import Any

from ..errors import PluginError, RegistryError, suggest
from ..registration import current_origin, import_target
from .base import Step

_BUILTIN_STEPS: dict[str, str] = {
    "external.process": "aetherflow.core.steps.builtin.process:ExternalProcess",
    "check_items": "aetherflow.core.steps.builtin.items:CheckItems",
    "with_lock": "aetherflow.core.steps.builtin.lock:WithLock",
    "db_execute": "aetherflow.core.steps.builtin.db:DbExecute",
    "db_fetch": "aetherflow.core.steps.builtin.db:DbFetch",
    "db_extract": "aetherflow.core.steps.builtin.db:DbExtract",
    "db_load": "aetherflow.core.steps.builtin.db:DbLoad",
    "http_request": "aetherflow.core.steps.builtin.http:HttpRequest",
    "http_download": "aetherflow.core.steps.builtin.http:HttpDownload",
    "mail_send": "aetherflow.core.steps.builtin.mail:MailSend",
    "files_list": "aetherflow.core.steps.builtin.files:FilesList",
    "files_download": "aetherflow.core.steps.builtin.files:FilesDownload",
    "files_upload": "aetherflow.core.steps.builtin.files:FilesUpload",
    "files_delete": "aetherflow.core.steps.builtin.files:FilesDelete",
    "files_copy": "aetherflow.core.steps.builtin.files:FilesCopy",
    "archive_create": "aetherflow.core.steps.builtin.archive:ArchiveCreate",
    "archive_extract": "aetherflow.core.steps.builtin.archive:ArchiveExtract",
    "excel_fill": "aetherflow.core.steps.builtin.excel:ExcelFill",
    "excel_validate_template": "aetherflow.core.steps.builtin.excel:ExcelValidateTemplate",
    "excel_read": "aetherflow.core.steps.builtin.excel:ExcelRead",
}

_registered: dict[str, type[Step]] = {}
_origins: dict[str, str] = {}


def register_step(type_name: str | None = None, *, replace: bool = False):
    """Class decorator registering a step under ``type_name`` (default: ``cls.type``).

    A class whose ``run`` takes no arguments (``run(self)``, reading ``self.inputs`` and
    ``self.ctx``) is registered through an adapter (:mod:`aetherflow.core.steps.upstream`);
    the decorator returns the class unchanged either way.
    """

    def decorate(cls: type[Step]) -> type[Step]:
        name = type_name or cls.type
        if not name:
            raise PluginError(f"step class {cls.__qualname__} has no type name")
        if not (isinstance(cls, type) and issubclass(cls, Step)):
            raise PluginError(f"{cls!r} is not a subclass of aetherflow Step")
        if not replace and (name in _registered or name in _BUILTIN_STEPS):
            raise RegistryError(f"step type {name!r} is already registered", hint="pass replace=True to override it")
        cls.type = name
        _registered[name] = _runnable(cls, name)
        _origins[name] = current_origin(cls)
        return cls

    return decorate


def _runnable(cls: type[Step], name: str) -> type[Step]:
    """``cls`` itself, or an adapter when it has the ``run(self)`` shape."""
    from .upstream import NEW_SIGNATURE, adapt, run_arity

    arity = run_arity(cls)
    if arity == 0:
        warnings.warn(
            f"step {name!r} ({cls.__qualname__}) uses the run(self) form; write `{NEW_SIGNATURE}`",
            DeprecationWarning,
            stacklevel=3,
        )
        return adapt(cls, name)
    if arity not in (None, 2):
        raise PluginError(
            f"step class {cls.__qualname__}: run() takes {arity} argument(s) besides self",
            hint=f"write `{NEW_SIGNATURE}`",
        )
    if cls.inputs is not None and cls.required_inputs:
        raise PluginError(
            f"step class {cls.__qualname__} declares both `inputs` and `required_inputs`",
            hint="mark required inputs with Input(required=True) in `inputs`; required_inputs is for steps without an inputs table",
        )
    return cls


def saved_state() -> tuple[dict, dict]:
    return dict(_registered), dict(_origins)


def restore_state(state: tuple[dict, dict]) -> None:
    for table, saved in zip((_registered, _origins), state):
        table.clear()
        table.update(saved)


def step_types() -> list[str]:
    return sorted(set(_BUILTIN_STEPS) | set(_registered))


def get_step(type_name: str) -> type[Step]:
    cls = _registered.get(type_name)
    if cls is not None:
        return cls
    target = _BUILTIN_STEPS.get(type_name)
    if target is None:
        raise RegistryError(f"unknown step type {type_name!r}{suggest(type_name, step_types())}")
    cls = import_target(target)
    _registered.setdefault(type_name, cls)
    _origins.setdefault(type_name, "builtin")
    return cls


def describe_step(name: str) -> dict[str, Any]:
    """One step type as ``steps list --json`` and ``steps show`` print it."""
    cls = get_step(name)
    return {
        "type": name,
        "origin": _origins.get(name, "builtin"),
        "summary": cls.summary,
        "inputs": None
        if cls.inputs is None
        else {
            key: {
                "type": spec.type_name(),
                "required": spec.required,
                "default": spec.default,
                "help": spec.help,
            }
            for key, spec in cls.inputs.items()
        },
        "required_inputs": cls.required_names(),
        "outputs": list(cls.outputs),
    }


def list_steps() -> list[dict[str, Any]]:
    return [describe_step(name) for name in step_types()]
