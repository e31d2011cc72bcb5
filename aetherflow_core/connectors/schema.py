"""Declared configuration of connectors: keys, types, defaults, secrecy, help.

Resolution checks a resource's ``config`` and ``options`` against its connector's
schema: unknown keys are rejected with a suggestion, strings (typically from the
environment) are coerced to the declared type, defaults are filled in, and keys
declared ``secret`` are redacted wherever the value is shown.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..env import FALSE_WORDS, TRUE_WORDS

_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "list", dict: "mapping"}


@dataclass(frozen=True)
class Field:
    """One configuration key of a connector.

    ``normalize``, when given, receives the coerced value and returns the one the
    connector gets (an equivalent spelling rewritten), or raises ``ValueError`` with a
    message saying what is wrong; resolution reports it at the value's location.
    """

    type: type | tuple[type, ...] = str
    required: bool = False
    default: Any = None
    secret: bool = False
    help: str = ""
    choices: tuple[Any, ...] | None = None
    normalize: Callable[[Any], Any] | None = None

    @property
    def types(self) -> tuple[type, ...]:
        return self.type if isinstance(self.type, tuple) else (self.type,)

    def type_name(self) -> str:
        return " or ".join(_TYPE_NAMES.get(t, getattr(t, "__name__", str(t))) for t in self.types)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type_name(),
            "required": self.required,
            "default": self.default,
            "secret": self.secret,
            "help": self.help,
            "choices": list(self.choices) if self.choices else None,
        }


Schema = dict[str, Field]


class CoercionError(ValueError):
    pass


def _is(value: Any, t: type) -> bool:
    if t in (int, float) and isinstance(value, bool):
        return False
    if t is float and isinstance(value, int):
        return True
    return isinstance(value, t)


def coerce(value: Any, field: Field) -> Any:
    """``value`` converted to the field's type; strings are parsed, others checked."""
    if value is None:
        return None
    types = field.types
    result = _coerce(value, types, field)
    if field.choices is not None and result not in field.choices:
        raise CoercionError(f"expected one of {', '.join(map(repr, field.choices))}, got {value!r}")
    if field.normalize is not None:
        try:
            result = field.normalize(result)
        except ValueError as exc:
            raise CoercionError(str(exc)) from None
    return result


def _coerce(value: Any, types: tuple[type, ...], field: Field) -> Any:
    if object in types or any(_is(value, t) for t in types):
        if float in types and int not in types and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value
    if isinstance(value, str):
        text = value.strip()
        for t in types:
            try:
                if t is bool:
                    if text.lower() in TRUE_WORDS:
                        return True
                    if text.lower() in FALSE_WORDS:
                        return False
                elif t is int:
                    return int(text)
                elif t is float:
                    return float(text)
                elif t in (list, dict):
                    parsed = json.loads(text)
                    if isinstance(parsed, t):
                        return parsed
                    if t is list and not text.startswith("["):
                        return [part.strip() for part in text.split(",") if part.strip()]
            except (ValueError, json.JSONDecodeError):
                if t is list and not text.startswith("["):
                    return [part.strip() for part in text.split(",") if part.strip()]
                continue
    shown = "a secret value" if field.secret else repr(value)
    raise CoercionError(f"expected {field.type_name()}, got {_TYPE_NAMES.get(type(value), type(value).__name__)} {shown}")
