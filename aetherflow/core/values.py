"""How configuration values and step inputs are typed and read: type names for
messages, what counts as a value of a type, and the words meaning true and false.

Connector schemas (:class:`~aetherflow.core.connectors.schema.Field`), step inputs
(:class:`~aetherflow.core.steps.base.Input`) and boolean settings from the environment
all use these, so a value is accepted, refused and described the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "list", dict: "mapping"}

TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})


def type_name(t: type) -> str:
    """The name a message uses for type ``t`` (``integer``, ``mapping``, ...)."""
    return TYPE_NAMES.get(t, getattr(t, "__name__", str(t)))


def types_name(types: Iterable[type]) -> str:
    """``string or integer``: the names of several accepted types."""
    return " or ".join(type_name(t) for t in types)


def value_type_name(value: Any) -> str:
    """The type name of a given value, for "expected X, got Y" messages."""
    return type_name(type(value))


def fits(value: Any, t: type) -> bool:
    """Whether ``value`` is a ``t``: a boolean is not a number, an integer is one."""
    if t in (int, float) and isinstance(value, bool):
        return False
    if t is float and isinstance(value, int):
        return True
    return isinstance(value, t)


def parse_bool(text: str) -> bool | None:
    """``true``/``yes``/``on``/``1`` or ``false``/``no``/``off``/``0`` (any case) as a
    boolean; None for any other text."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None
