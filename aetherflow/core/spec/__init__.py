"""Stage 0: loading a flow file into typed, checked models.

``load_flow`` parses YAML keeping positions, validates the document against the
models (unknown keys are errors), then runs the semantic checks. Every problem names
the file, line, column and YAML path and, where one exists, the closest valid name.
"""

from __future__ import annotations

import hashlib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import Location, Problem, SpecError
from .loader import PositionIndex, format_path, load_yaml, read_text

if typing.TYPE_CHECKING:
    from .models import FlowSpec

__all__ = ["FlowCheck", "FlowDocument", "check_flows", "format_path", "load_flow", "parse_flow"]


@dataclass(frozen=True)
class FlowDocument:
    path: str | None
    sha256: str
    spec: FlowSpec
    index: PositionIndex
    raw: dict
    warnings: tuple[Problem, ...] = ()

    def locate(self, *path: str | int, key: bool = False) -> Location:
        return self.index.locate(tuple(path), key=key)


def load_flow(path: str | Path, *, check: bool = True) -> FlowDocument:
    return parse_flow(read_text(path, "flow file"), str(path), check=check)


@dataclass(frozen=True)
class FlowCheck:
    """The verdict on one flow file: its document when it loads, and its problems (none when valid)."""

    path: str
    document: FlowDocument | None
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def warnings(self) -> list[Problem]:
        return list(self.document.warnings) if self.document is not None else []


def check_flows(paths: list[str]) -> list[FlowCheck]:
    """Validate each file on its own, every problem of every file reported.

    Besides the spec, a resource's ``config`` and ``options`` keys are checked against
    its connector's declared schema (no driver is imported). Each file's own plugins
    (``flow.plugins``) are forgotten before the next file, so two flows may bring plugins
    that register the same names.
    """
    from ..registration import registrations_undone
    from .checks import resource_key_problems

    checks = []
    for path in paths:
        with registrations_undone():
            try:
                document = load_flow(path)
                checks.append(FlowCheck(path, document, tuple(resource_key_problems(document))))
            except SpecError as exc:
                checks.append(FlowCheck(path, None, tuple(exc.problems)))
    return checks


def parse_flow(text: str, file: str | None = None, *, check: bool = True) -> FlowDocument:
    from pydantic import ValidationError

    from .models import FlowSpec

    data, index = load_yaml(text, file)
    if not isinstance(data, dict):
        raise SpecError(
            [Problem(index.locate(()), "a flow file must be a mapping", "start with `version: 1`, then `flow:`, `resources:` and `jobs:`")]
        )
    try:
        spec = FlowSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError([_problem(err, index) for err in exc.errors()]) from None
    document = FlowDocument(file, hashlib.sha256(text.encode("utf-8")).hexdigest(), spec, index, data)
    if check:
        from dataclasses import replace

        from .checks import check_document, find_warnings

        load_flow_plugins(document)

        problems = check_document(document)
        if problems:
            raise SpecError(problems)
        document = replace(document, warnings=tuple(find_warnings(document)))
    return document


def flow_plugin_paths(document: FlowDocument) -> list[Path]:
    """``flow.plugins``, relative to the flow file's folder (the working directory without a file)."""
    base = Path(document.path).resolve().parent if document.path else Path.cwd()
    return [base / Path(entry).expanduser() for entry in document.spec.flow.plugins]


def load_flow_plugins(document: FlowDocument) -> None:
    """Import the plugins the flow declares, so its checks know their steps and connectors.

    The flow needs them, so a failure is an error of the flow at the entry that names
    the plugin, whatever ``AETHERFLOW_PLUGIN_STRICT`` says.
    """
    from ..errors import PluginError
    from ..plugins import load_plugins

    for i, path in enumerate(flow_plugin_paths(document)):
        try:
            load_plugins([str(path)], strict=True, entry_points=False)
        except PluginError as exc:
            raise SpecError([Problem(document.locate("flow", "plugins", i), exc.message, "fix the plugin, or the path in flow.plugins")]) from None


_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _type_name(value: Any) -> str:
    return {str: "string", int: "integer", float: "number", bool: "boolean", list: "list", dict: "mapping"}.get(
        type(value), type(value).__name__ if value is not None else "null"
    )


def _problem(err: dict, index: PositionIndex) -> Problem:
    from .. import upstream
    from ..errors import closest

    loc = tuple(err["loc"])
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        key = loc[-1]
        allowed = _fields_at(loc[:-1])
        match = closest(str(key), allowed)
        hint = f"did you mean {match!r}?" if match else (f"allowed keys: {', '.join(allowed)}" if allowed else None)
        return Problem(index.locate(loc, key=True), f"unknown key {key!r}", upstream.flow_key_hint(loc) or hint)
    if kind == "missing":
        parent = index.locate(loc[:-1], key=True)
        where = Location(parent.file, parent.line, parent.column, format_path(loc))
        return Problem(where, f"missing required key {loc[-1]!r}", f"add `{loc[-1]}:` here")
    # A wrong mapping or list is best shown at its key: its value starts on the next line.
    location = index.locate(loc, key=isinstance(value, (dict, list)))
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        if loc == ("version",):
            return Problem(location, f"unsupported flow version {value!r}", "this aetherflow reads `version: 1`")
        if loc == ("flow", "state", "backend") and value in upstream.STATE_BACKENDS:
            return Problem(location, f"invalid value {value!r}", upstream.STATE_BACKENDS[value])
        choices = [c.strip().strip("'") for c in expected.replace(" or ", ",").split(",") if c.strip()]
        match = closest(str(value), choices)
        hint = f"did you mean {match!r}?" if match else f"expected one of: {', '.join(choices)}"
        return Problem(location, f"invalid value {value!r}", hint)
    if kind == "string_pattern_mismatch":
        from .models import ID_HINT

        return Problem(location, f"invalid id {value!r}", ID_HINT)
    if kind in _TYPE_WORDS:
        return Problem(location, f"expected {_TYPE_WORDS[kind]}, got {_type_name(value)} {value!r}", None)
    if kind in ("too_short", "string_too_short"):
        what = "at least one item" if kind == "too_short" else "a non-empty value"
        return Problem(location, f"needs {what}", None)
    return Problem(location, err.get("msg", "invalid value"), None)


def _fields_at(loc: tuple) -> list[str]:
    """Names of the model fields allowed at ``loc`` (for "did you mean")."""
    from pydantic import BaseModel

    from .models import FlowSpec

    tp: Any = FlowSpec
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return []
            tp = field.annotation
        else:
            args = typing.get_args(tp)
            origin = typing.get_origin(tp)
            if origin is list and args:
                tp = args[0]
            elif origin is dict and len(args) == 2:
                tp = args[1]
            else:
                return []
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return []


def _unwrap(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp
