"""JSON Schema of the flow file and of the profiles file, for editors and CI.

Generated, never written by hand: the models' own schema (pydantic) is the frame, and
the registries fill it in as they stand when it is generated (built-ins plus any plugin
loaded): each step type's declared inputs under its ``type``, each connector's declared
``config`` and ``options`` keys under its ``kind``/``driver``, every help text as a
``description``. Editors complete keys and show help from it; ``check-jsonschema``
validates files with it.

A value that can be a template (``{{ ... }}``) is accepted wherever a template may
stand, and connector values may also be text that resolution converts to the declared
type (``port: "5432"``). Keys a connector requires are not required here: a profile may
supply them. What a schema cannot say (unknown step types, cross references, template
names) stays the work of ``aetherflow validate``.
"""

from __future__ import annotations

import json
import re
from typing import Any

DIALECT = "https://json-schema.org/draft/2020-12/schema"
TEMPLATE_REF = {"$ref": "#/$defs/template"}

_SCALAR_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object"}


def flow_schema() -> dict[str, Any]:
    """The JSON Schema of a flow file, with every registered step type and connector."""
    from .models import FlowSpec

    schema = FlowSpec.model_json_schema()
    defs = schema["$defs"]
    defs["template"] = _template_def()
    defs["StepSpec"]["properties"]["type"]["examples"] = _step_types()
    defs["StepSpec"]["allOf"] = [_step_rule(name, cls) for name, cls in _step_classes()]
    from ..connectors.registry import entries

    connectors = entries()
    kinds = sorted({entry.kind for entry in connectors})
    resource = defs["ResourceSpec"]
    resource["properties"]["kind"]["examples"] = kinds
    rules = [_kind_rule(kind, [e.driver for e in connectors if e.kind == kind]) for kind in kinds]
    rules += [_connector_rule(entry) for entry in connectors]
    resource["allOf"] = rules
    return _framed(_inline_nullable(schema), "aetherflow flow")


def profiles_schema() -> dict[str, Any]:
    """The JSON Schema of a profiles file: profile name -> overlay."""
    from .models import ProfileSpec

    profile = ProfileSpec.model_json_schema()
    defs = profile.pop("$defs", {})
    defs["ProfileSpec"] = {**profile, "type": ["object", "null"]}  # `prod:` with nothing under it is an empty profile
    schema = {
        "type": "object",
        "description": "Profiles: named overlays of resource configuration, chosen with --profile or AETHERFLOW_PROFILE.",
        "additionalProperties": {"$ref": "#/$defs/ProfileSpec"},
        "$defs": defs,
    }
    return _framed(_inline_nullable(schema), "aetherflow profiles")


def schema_for(name: str) -> dict[str, Any]:
    """``flow`` or ``profiles``."""
    makers = {"flow": flow_schema, "profiles": profiles_schema}
    if name not in makers:
        from ..errors import UserError, suggest

        raise UserError(f"no schema named {name!r}{suggest(name, makers)}", hint="use flow or profiles")
    return makers[name]()


def dumps(schema: dict[str, Any]) -> str:
    """The schema as committed and printed: stable key order, two-space indent."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def _framed(schema: dict[str, Any], title: str) -> dict[str, Any]:
    head = {"$schema": DIALECT, "title": title, "$comment": "generated from the code by `aetherflow schema`; do not edit"}
    head.update({k: v for k, v in schema.items() if k != "title"})
    return head


def _inline_nullable(node: Any) -> Any:
    """``anyOf: [{type: T, ...}, {type: null}]`` as ``{type: [T, null], ...}``.

    Pydantic writes optional fields as an ``anyOf``; validators then report a wrong key
    deep inside one as "not valid under any of the given schemas" at the parent.
    Inlined, the error names the key itself.
    """
    if isinstance(node, list):
        return [_inline_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _inline_nullable(value) for key, value in node.items()}
    choices = node.get("anyOf")
    if isinstance(choices, list) and len(choices) == 2 and {"type": "null"} in choices:
        other = next(choice for choice in choices if choice != {"type": "null"})
        if isinstance(other.get("type"), str) and "enum" not in other:
            node.pop("anyOf")
            node = {**other, **node, "type": [other["type"], "null"]}
    return node


def _template_def() -> dict[str, Any]:
    return {
        "type": "string",
        "pattern": r"\{\{|\{%|\{#",
        "description": "a template, rendered when the value is needed ({{ env.NAME }}, {{ steps.ID.outputs.KEY }}, ...)",
    }


def _step_types() -> list[str]:
    from ..steps.registry import step_types

    return step_types()


def _step_classes():
    from ..steps.registry import get_step

    return [(name, get_step(name)) for name in _step_types()]


def _step_rule(name: str, cls) -> dict[str, Any]:
    declared = getattr(cls, "inputs", None)
    summary = (cls.summary or "").strip()
    if declared is None:
        inputs: dict[str, Any] = {"type": "object", "description": f"inputs of {name} (not declared by the step)"}
    else:
        inputs = {
            "type": "object",
            "description": f"inputs of {name}" + (f": {summary}" if summary else ""),
            "properties": {key: _value_schema(spec, required=spec.required) for key, spec in declared.items()},
            "additionalProperties": False,
        }
        required = [key for key, spec in declared.items() if spec.required]
        if required:
            inputs["required"] = required
    then: dict[str, Any] = {"properties": {"inputs": inputs}}
    if declared and any(spec.required for spec in declared.values()):
        then["required"] = ["inputs"]
    return {"if": {"properties": {"type": {"const": name}}, "required": ["type"]}, "then": then}


def _kind_rule(kind: str, drivers: list[str]) -> dict[str, Any]:
    return {
        "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
        "then": {"properties": {"driver": {"examples": drivers, "description": f"driver of kind {kind}: {', '.join(drivers)}"}}},
    }


def _connector_rule(entry) -> dict[str, Any]:
    from ..connectors.registry import declared_schemas

    where = f"{entry.kind}/{entry.driver}"
    properties = {}
    for section, declared in zip(("config", "options"), declared_schemas(entry)):
        if declared is None:
            continue
        properties[section] = {
            "type": "object",
            "description": f"{section} of {where}" + (f": {entry.summary}" if entry.summary else ""),
            "properties": {key: _value_schema(field, required=False, coerced=True) for key, field in declared.items()},
            "additionalProperties": False,
        }
    condition = {"properties": {"kind": {"const": entry.kind}, "driver": {"const": entry.driver}}, "required": ["kind", "driver"]}
    return {"if": condition, "then": {"properties": properties}}


def _value_schema(spec, *, required: bool, coerced: bool = False) -> dict[str, Any]:
    """One declared step input or connector key (``Input`` or ``Field``) as a schema."""
    types = tuple(spec.types)
    names = [] if object in types else list(dict.fromkeys(_SCALAR_TYPES[t] for t in types if t in _SCALAR_TYPES))
    base: dict[str, Any] = {}
    if names:
        base["type"] = names[0] if len(names) == 1 else names
    if spec.choices is not None:
        base["enum"] = list(spec.choices)
    choices: list[dict[str, Any]] = [base]
    if base and (spec.choices is not None or "string" not in names):
        choices.append(TEMPLATE_REF)
        if coerced:
            choices += [_converted_text(name) for name in names if name != "string"]
    if not required and base:
        choices.append({"type": "null"})
    schema = choices[0] if len(choices) == 1 else {"anyOf": choices}
    schema = dict(schema)
    description = _help(spec, coerced)
    if description:
        schema["description"] = description
    if spec.default is not None:
        schema["default"] = spec.default
    return schema


def _help(spec, coerced: bool) -> str:
    text = (spec.help or "").strip()
    notes = []
    if getattr(spec, "secret", False):
        notes.append("secret: redacted wherever shown")
    if coerced and spec.required:
        notes.append("required, here or from a profile")
    return "; ".join([text, *notes]) if notes and text else (text or "; ".join(notes))


def _converted_text(type_name: str) -> dict[str, Any]:
    """Text that resolution converts to ``type_name`` (environment values are text)."""
    if type_name == "integer":
        return {"type": "string", "pattern": r"^\s*[+-]?[0-9]+\s*$"}
    if type_name == "number":
        return {"type": "string", "pattern": r"^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"}
    if type_name == "boolean":
        from ..values import FALSE_WORDS, TRUE_WORDS

        words = "|".join(_any_case(word) for word in sorted(TRUE_WORDS | FALSE_WORDS))
        return {"type": "string", "pattern": rf"^\s*({words})\s*$"}
    # Lists and mappings may be written as JSON text, lists also as comma-separated text.
    return {"type": "string"}


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)
