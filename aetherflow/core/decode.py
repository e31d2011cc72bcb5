"""The ``decode:`` section of a resource or profile: which leaves the secrets decoder gets.

Two spellings mean the same thing, and may be combined:

    decode:
      config: {password: true, headers: {Authorization: true}}   # a mapping of booleans
      options: {...}
      config_paths: [password, headers.Authorization]           # dotted paths
      options_paths: [...]

A leaf marked ``true`` (or listed) is decoded; ``false`` unmarks a leaf that an
earlier layer (the resource, then its profile) marked. Anything else under
``decode`` is an error, located by the caller from the path in :class:`DecodeSpecError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SECTIONS = ("config", "options")
KEYS = (*SECTIONS, "config_paths", "options_paths")


class DecodeSpecError(ValueError):
    """``decode`` is malformed at ``path`` (a tuple of keys/indexes below ``decode``);
    ``at_key`` when the key itself, not its value, is wrong."""

    def __init__(self, message: str, path: tuple = (), hint: str | None = None, *, at_key: bool = False):
        super().__init__(message)
        self.message = message
        self.path = path
        self.hint = hint
        self.at_key = at_key


@dataclass
class DecodeMarks:
    """Dotted paths (``config.password``) marked for decoding, and explicitly unmarked."""

    marked: set[str] = field(default_factory=set)
    unmarked: set[str] = field(default_factory=set)


def parse_decode(decode: Any) -> DecodeMarks:
    """Read one ``decode`` section. Raises :class:`DecodeSpecError` when malformed."""
    marks = DecodeMarks()
    if decode in (None, {}):
        return marks
    if not isinstance(decode, Mapping):
        raise DecodeSpecError("decode must be a mapping", hint="for example `decode: {config: {password: true}}`")
    from .errors import suggest

    for key, value in decode.items():
        if key in SECTIONS:
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise DecodeSpecError(f"decode.{key} must be a mapping of keys to true/false", (key,), f"for example `{key}: {{password: true}}`")
            _walk(value, key, (key,), marks)
        elif key in ("config_paths", "options_paths"):
            section = key.removesuffix("_paths")
            if value is None:
                continue
            if not isinstance(value, list):
                raise DecodeSpecError(f"decode.{key} must be a list of dotted paths", (key,), f"for example `{key}: [password]`")
            for i, item in enumerate(value):
                if not isinstance(item, str) or not item.strip() or any(not part for part in item.split(".")):
                    raise DecodeSpecError(
                        f"decode.{key}[{i}] must be a dotted path such as 'password' or 'headers.Authorization', got {item!r}",
                        (key, i),
                    )
                marks.marked.add(f"{section}.{item.strip()}")
        else:
            hint = (
                f"leaves are marked under their section: `config: {{{key}: true}}`"
                if value is True
                else "decode takes config, options (mappings of true/false) and config_paths, options_paths (lists of dotted paths)"
            )
            raise DecodeSpecError(f"unknown key {key!r} under decode{suggest(str(key), KEYS)}", (key,), hint, at_key=True)
    marks.unmarked -= marks.marked
    return marks


def _walk(node: Mapping, prefix: str, path: tuple, marks: DecodeMarks) -> None:
    for key, value in node.items():
        dotted, where = f"{prefix}.{key}", path + (key,)
        if isinstance(value, Mapping):
            _walk(value, dotted, where, marks)
        elif value is True:
            marks.marked.add(dotted)
        elif value is False or value is None:
            marks.unmarked.add(dotted)
        else:
            raise DecodeSpecError(f"decode.{dotted} must be true or false, got {value!r}", where)
