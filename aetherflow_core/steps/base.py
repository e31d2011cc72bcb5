"""The step API: declared inputs, results, and the step registry.

A step is a class with a ``type`` name, a table of declared ``inputs`` and a
``run(ctx, inputs)`` method returning a :class:`StepResult`. Built-in steps are listed
declaratively (type -> module) and imported the first time they are needed; plugins use
:func:`register_step`.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import PluginError, RegistryError, StepInputError

STEP_SUCCESS = "SUCCESS"
STEP_SKIPPED = "SKIPPED"

_MISSING = object()

_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "list", dict: "mapping"}


@dataclass(frozen=True)
class Input:
    """One declared step input.

    ``type`` is a Python type or a tuple of them (``object`` accepts anything);
    ``choices`` restricts values; ``resource=True`` means the value names a resource.
    """

    type: type | tuple[type, ...] = object
    required: bool = False
    default: Any = None
    help: str = ""
    choices: tuple[Any, ...] | None = None
    resource: bool = False

    @property
    def types(self) -> tuple[type, ...]:
        return self.type if isinstance(self.type, tuple) else (self.type,)

    def type_name(self) -> str:
        return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in self.types)

    def check(self, value: Any) -> str | None:
        """An error message when ``value`` does not fit, else ``None``."""
        if value is None and not self.required:
            return None
        types = self.types
        if object not in types:
            ok = any(
                isinstance(value, t) and not (t in (int, float) and isinstance(value, bool))
                for t in types
            )
            if not ok and float in types and isinstance(value, int) and not isinstance(value, bool):
                ok = True
            if not ok:
                return f"expected {self.type_name()}, got {_TYPE_NAMES.get(type(value), type(value).__name__)} {value!r}"
        if self.choices is not None and value not in self.choices:
            return f"expected one of {', '.join(map(repr, self.choices))}, got {value!r}"
        return None


@dataclass
class StepResult:
    status: str = STEP_SUCCESS
    outputs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.status not in (STEP_SUCCESS, STEP_SKIPPED):
            raise ValueError(f"step status must be {STEP_SUCCESS} or {STEP_SKIPPED}, not {self.status!r}")


class Step:
    """Base class of steps. Subclasses set ``type``, ``summary``, ``inputs`` and ``run``."""

    type: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    inputs: ClassVar[dict[str, Input]] = {}
    outputs: ClassVar[tuple[str, ...]] = ()

    def run(self, ctx, inputs: dict[str, Any]) -> StepResult:  # pragma: no cover - interface
        raise NotImplementedError

    @classmethod
    def bind_inputs(cls, given: dict[str, Any]) -> dict[str, Any]:
        """Check rendered inputs against the declaration and fill defaults."""
        problems = []
        unknown = sorted(set(given) - set(cls.inputs))
        for name in unknown:
            problems.append(f"unknown input {name!r}{suggest(name, cls.inputs)}")
        bound: dict[str, Any] = {}
        for name, spec in cls.inputs.items():
            value = given.get(name, _MISSING)
            if value is _MISSING or value is None:
                if spec.required and value is _MISSING:
                    problems.append(f"missing required input {name!r}")
                    continue
                bound[name] = spec.default if value is _MISSING else None
                continue
            message = spec.check(value)
            if message:
                problems.append(f"input {name!r}: {message}")
            bound[name] = value
        if problems:
            raise StepInputError(f"step type {cls.type!r}: " + "; ".join(problems))
        return bound


def suggest(name: str, candidates) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or an empty string."""
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def closest(name: str, candidates) -> str | None:
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return match[0] if match else None


_BUILTIN_STEPS: dict[str, str] = {
    "external.process": "aetherflow_core.steps.builtin.process:ExternalProcess",
    "check_items": "aetherflow_core.steps.builtin.items:CheckItems",
    "with_lock": "aetherflow_core.steps.builtin.lock:WithLock",
    "db_execute": "aetherflow_core.steps.builtin.db:DbExecute",
    "db_fetch": "aetherflow_core.steps.builtin.db:DbFetch",
    "db_extract": "aetherflow_core.steps.builtin.db:DbExtract",
    "db_load": "aetherflow_core.steps.builtin.db:DbLoad",
    "http_request": "aetherflow_core.steps.builtin.http:HttpRequest",
    "http_download": "aetherflow_core.steps.builtin.http:HttpDownload",
    "mail_send": "aetherflow_core.steps.builtin.mail:MailSend",
    "files_list": "aetherflow_core.steps.builtin.files:FilesList",
    "files_download": "aetherflow_core.steps.builtin.files:FilesDownload",
    "files_upload": "aetherflow_core.steps.builtin.files:FilesUpload",
    "files_delete": "aetherflow_core.steps.builtin.files:FilesDelete",
    "files_copy": "aetherflow_core.steps.builtin.files:FilesCopy",
    "archive_create": "aetherflow_core.steps.builtin.archive:ArchiveCreate",
    "archive_extract": "aetherflow_core.steps.builtin.archive:ArchiveExtract",
}

_registered: dict[str, type[Step]] = {}
_origins: dict[str, str] = {}


def register_step(type_name: str | None = None, *, replace: bool = False):
    """Class decorator registering a step under ``type_name`` (default: ``cls.type``)."""

    def decorate(cls: type[Step]) -> type[Step]:
        name = type_name or cls.type
        if not name:
            raise PluginError(f"step class {cls.__qualname__} has no type name")
        if not (isinstance(cls, type) and issubclass(cls, Step)):
            raise PluginError(f"{cls!r} is not a subclass of aetherflow Step")
        if not replace and (name in _registered or name in _BUILTIN_STEPS):
            raise RegistryError(f"step type {name!r} is already registered", hint="pass replace=True to override it")
        cls.type = name
        _registered[name] = cls
        from ..connectors.registry import current_origin

        _origins[name] = current_origin(cls)
        return cls

    return decorate


def step_types() -> list[str]:
    return sorted(set(_BUILTIN_STEPS) | set(_registered))


def get_step(type_name: str) -> type[Step]:
    cls = _registered.get(type_name)
    if cls is not None:
        return cls
    target = _BUILTIN_STEPS.get(type_name)
    if target is None:
        raise RegistryError(f"unknown step type {type_name!r}{suggest(type_name, step_types())}")
    module_name, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    _registered.setdefault(type_name, cls)
    _origins.setdefault(type_name, "builtin")
    return cls


def list_steps() -> list[dict[str, Any]]:
    rows = []
    for name in step_types():
        cls = get_step(name)
        rows.append(
            {
                "type": name,
                "origin": _origins.get(name, "builtin"),
                "summary": cls.summary,
                "inputs": {
                    key: {
                        "type": spec.type_name(),
                        "required": spec.required,
                        "default": spec.default,
                        "help": spec.help,
                    }
                    for key, spec in cls.inputs.items()
                },
                "outputs": list(cls.outputs),
            }
        )
    return rows
