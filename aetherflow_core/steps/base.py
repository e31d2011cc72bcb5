"""The step API: declared inputs and results.

A step is a class with a ``type`` name, a table of declared ``inputs`` and a
``run(ctx, inputs)`` method returning a :class:`StepResult`. Steps are found through
the step registry (:mod:`aetherflow_core.steps.registry`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import StepInputError, suggest
from ..status import STEP_RESULT_STATUSES, Status

STEP_SUCCESS = Status.SUCCESS
STEP_SKIPPED = Status.SKIPPED

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
        if self.status not in STEP_RESULT_STATUSES:
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
