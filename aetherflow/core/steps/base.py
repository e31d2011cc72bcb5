"""The step API: declared inputs and results.

A step is a class with a ``type`` name, a table of declared ``inputs`` and a
``run(ctx, inputs)`` method returning a :class:`StepResult`. Steps are found through
the step registry (:mod:`aetherflow.core.steps.registry`).

Declaring ``inputs`` is optional: a step without the table receives every input as
given, unchecked (only the names in ``required_inputs`` must be present), while
``inputs = {}`` declares a step that takes none.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import InitVar, dataclass, field
from typing import Any, ClassVar

from ..errors import StepError, StepInputError, suggest
from ..status import STEP_RESULT_STATUSES, Status
from ..values import fits, types_name, value_type_name

STEP_SUCCESS = Status.SUCCESS
STEP_SKIPPED = Status.SKIPPED

_MISSING = object()


@dataclass(frozen=True)
class Input:
    """One declared step input.

    ``type`` is a Python type or a tuple of them (``object`` accepts anything);
    ``choices`` restricts values; ``minimum``/``maximum`` bound a number (numbers must
    be finite in any case); ``resource=True`` means the value names a resource;
    ``items``, for a list, the types its items may have (``validate`` checks them).
    """

    type: type | tuple[type, ...] = object
    required: bool = False
    default: Any = None
    help: str = ""
    choices: tuple[Any, ...] | None = None
    resource: bool = False
    minimum: float | None = None
    maximum: float | None = None
    items: tuple[type, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None

    @property
    def types(self) -> tuple[type, ...]:
        return self.type if isinstance(self.type, tuple) else (self.type,)

    def type_name(self) -> str:
        return types_name(self.types)

    def check(self, value: Any) -> str | None:
        """An error message when ``value`` does not fit, else ``None``."""
        if value is None and not self.required:
            return None
        types = self.types
        if object not in types and not any(fits(value, t) for t in types):
            return f"expected {self.type_name()}, got {value_type_name(value)} {value!r}"
        if self.choices is not None and value not in self.choices:
            return f"expected one of {', '.join(map(repr, self.choices))}, got {value!r}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"expected a finite number, got {value!r}"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                return f"must be at least {self.minimum:g}, got {value!r}"
            if self.maximum is not None and value > self.maximum:
                return f"must be at most {self.maximum:g}, got {value!r}"
        return None

    def check_items(self, value: Any) -> tuple[int, str] | None:
        """The first item of a list that ``items`` does not allow: its index and a message."""
        if self.items is None or not isinstance(value, list):
            return None
        for i, item in enumerate(value):
            if isinstance(item, str) and "{{" in item:
                continue
            if not any(fits(item, t) for t in self.items):
                return i, f"expected {types_name(self.items)}, got {value_type_name(item)} {item!r}"
        return None


@dataclass
class StepResult:
    """What a step returns: ``status`` (SUCCESS or SKIPPED) and its ``outputs``.

    ``reason`` says why a step was skipped; it is logged. ``output=`` is accepted as
    another spelling of ``outputs`` (the form some existing plugins use).
    """

    status: str = STEP_SUCCESS
    outputs: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    output: InitVar[dict[str, Any] | None] = None

    def __post_init__(self, output: dict[str, Any] | None):
        if self.status not in STEP_RESULT_STATUSES:
            raise ValueError(f"step status must be {STEP_SUCCESS} or {STEP_SKIPPED}, not {self.status!r}")
        if output is not None:
            if self.outputs:
                raise ValueError("give a step's outputs once: outputs= or output=, not both")
            self.outputs = dict(output)
        if self.outputs is None:
            self.outputs = {}


class Step:
    """Base class of steps. Subclasses set ``type``, ``summary``, ``inputs`` and ``run``.

    ``inputs`` left at ``None`` means "not declared": every input is passed to ``run``
    unchecked, and only ``required_inputs`` (names) are checked for presence.
    """

    type: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    inputs: ClassVar[dict[str, Input] | None] = None
    required_inputs: ClassVar[Collection[str]] = ()
    outputs: ClassVar[tuple[str, ...]] = ()
    #: The input holding an inner step ``{type, id, inputs}`` this step runs, if any:
    #: ``validate`` checks the inner step's inputs like those of any step.
    inner_step: ClassVar[str | None] = None

    def run(self, ctx, inputs: dict[str, Any]) -> StepResult:  # pragma: no cover - interface
        raise NotImplementedError

    @classmethod
    def required_names(cls) -> list[str]:
        """Inputs that must be given, whether declared in ``inputs`` or ``required_inputs``."""
        if cls.inputs is None:
            return sorted(cls.required_inputs)
        return [name for name, spec in cls.inputs.items() if spec.required]

    @classmethod
    def bind_inputs(cls, given: dict[str, Any]) -> dict[str, Any]:
        """Check rendered inputs against the declaration and fill defaults."""
        if cls.inputs is None:
            missing = [name for name in cls.required_names() if name not in given]
            if missing:
                names = ", ".join(map(repr, missing))
                raise StepInputError(f"step type {cls.type!r}: missing required input{'s' if len(missing) > 1 else ''} {names}")
            return dict(given)
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


def resource_connector(ctx, name: str, accepts: Callable[[Any], bool], what: str) -> Any:
    """The connector of resource ``name``, which ``accepts`` must take for ``what`` it
    is (a database connector, a files connector, ...); else a StepError naming both."""
    connector = ctx.connectors[name]
    if not accepts(connector):
        kind = f"{getattr(connector, 'kind', '?')}/{getattr(connector, 'driver', '?')}"
        raise StepError(f"resource {name!r} ({kind}) is not {what}")
    return connector

