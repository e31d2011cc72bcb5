"""Declared configuration of connectors: keys, types, defaults, secrecy, help.

Resolution checks a resource's ``config`` and ``options`` against its connector's
schema: unknown keys are rejected with a suggestion, strings (typically from the
environment) are coerced to the declared type, defaults are filled in
(:func:`settle`), and keys declared ``secret`` are redacted wherever the value is shown.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..values import fits, parse_bool, types_name, value_type_name


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
        return types_name(self.types)

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


def is_unset(value: Any) -> bool:
    """A value that means "not given": None, or an empty string (typically a template
    such as ``{{ env.X | default('') }}`` for an unset variable)."""
    return value is None or value == ""


def settle(values: Mapping[str, Any] | None, schema: Schema | None) -> dict[str, Any]:
    """``values`` as a connector reads them: keys whose value :func:`is_unset` are
    dropped, and every key not given gets its declared default (a copy)."""
    settled = {key: value for key, value in (values or {}).items() if not is_unset(value)}
    for key, field in (schema or {}).items():
        if key not in settled and field.default is not None:
            settled[key] = copy.deepcopy(field.default)
    return settled


def unknown_key(resource: str, kind: str, driver: str, section: str, key: str, schemas: dict[str, Schema | None]) -> tuple[str, str]:
    """The message and hint for a ``config``/``options`` key the connector does not declare
    (``resolve`` and ``validate`` say the same)."""
    from .. import upstream
    from ..errors import suggest

    schema = schemas[section] or {}
    rewrite = upstream.key_hint(section, key, schemas)
    message = f"resource {resource!r}: unknown {section} key {key!r} for {kind}/{driver}{'' if rewrite else suggest(key, schema)}"
    known = f"known {section} keys: {', '.join(sorted(schema))} (see `aetherflow connectors show {kind}/{driver}`)"
    return message, rewrite or known


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
    if object in types or any(fits(value, t) for t in types):
        if float in types and int not in types and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value
    if isinstance(value, str):
        text = value.strip()
        for t in types:
            try:
                if t is bool:
                    parsed = parse_bool(text)
                    if parsed is not None:
                        return parsed
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
    raise CoercionError(f"expected {field.type_name()}, got {value_type_name(value)} {shown}")
