"""Run variables: declared under ``vars:`` in the flow, given with ``--var NAME=VALUE``
and ``--vars-file FILE`` (or a mapping from Python), read in templates as ``vars.<name>``.

Binding checks every given name against the declarations (an undeclared name is an
error), converts text to the declared type (``--var limit=10`` is the integer 10),
fills defaults and notes ``required`` ones left without a value
(:meth:`RunVariables.require` raises for them once a resumed run had its chance to
supply them from the state). Every value remembers where it came
from: ``var:cli``, ``var:file:<path>``, ``var:default`` (or another source a caller
names, such as ``var:api``). A variable is secret when it is declared ``secret: true``
or its name looks secret (``api_token``); its value joins the scrubber and is masked
wherever variables are shown.

A run stores its variables; a resumed run takes them back (:meth:`RunVariables.resumed`).
A value given again on resume must equal the stored one: finished steps used it, and a
run mixing two values would be neither the old run nor a new one. Secret values are
stored as salted hashes only, so a resumed run needs them given again.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Location, VariableError, closest
from .redaction import MASK, is_secret_key

SOURCE_CLI = "var:cli"
SOURCE_DEFAULT = "var:default"
SOURCE_MISSING = "var:missing"  # required, not given: a resumed run may still take it from the state
FILE_SOURCE_PREFIX = "var:file:"
VAR_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


def var_types() -> dict[str, type]:
    """Declared type name -> Python type, from the one table of type names."""
    from .values import TYPE_NAMES

    return {name: python_type for python_type, name in TYPE_NAMES.items()}


@dataclass(frozen=True)
class VarInput:
    """Values given for variables and where they came from; later inputs win."""

    values: Mapping[str, Any]
    source: str
    locations: Mapping[str, Location] = field(default_factory=dict)


def parse_var_pairs(pairs: Sequence[str]) -> VarInput:
    """``--var NAME=VALUE`` options; the value is text until the declaration types it."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise VariableError(f"--var {pair!r} is not NAME=VALUE", hint="for example: --var day=2024-05-01")
        values[name] = value
    return VarInput(values, SOURCE_CLI)


def _plain(value: Any) -> Any:
    """YAML dates and times as ISO text: variables are stored as JSON."""
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def read_vars_file(path: str | Path) -> VarInput:
    """A ``--vars-file``: a YAML or JSON mapping of variable name to value."""
    from .spec.loader import load_yaml, read_text

    file = str(path)
    data, index = load_yaml(read_text(path, "vars file"), file)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise VariableError("a vars file must be a mapping of variable name to value", hint="write `name: value` lines", location=index.locate(()))
    locations = {name: index.locate((name,), key=True) for name in data}
    return VarInput({name: _plain(value) for name, value in data.items()}, FILE_SOURCE_PREFIX + file, locations)


def secret_digest(value: Any, *, salt: str) -> str:
    """A salted hash of a secret value: stored instead of the value, compared on resume."""
    payload = salt + json.dumps(value, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RunVariables:
    """The variables of one run: values, their sources, and which are secret."""

    values: Mapping[str, Any] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)
    secret: frozenset[str] = frozenset()
    #: required variables with no value (yet: a resumed run takes stored ones)
    missing: frozenset[str] = frozenset()

    def require(self) -> None:
        """Raise for the first required variable that has no value."""
        for name in self.values:
            if name in self.missing:
                raise VariableError(f"variable {name!r} is required", hint=f"give it with --var {name}=VALUE or in a --vars-file")

    def secret_values(self) -> list[Any]:
        return [self.values[name] for name in self.secret if self.values.get(name) is not None]

    def redacted(self) -> dict[str, Any]:
        """Values as shown: secret ones masked."""
        return {name: MASK if name in self.secret and value is not None else value for name, value in self.values.items()}

    def describe(self) -> list[dict[str, Any]]:
        """One entry per variable, as ``resolve`` shows it."""
        return [
            {"name": name, "value": value, "source": self.sources[name], "secret": name in self.secret}
            for name, value in self.redacted().items()
        ]

    def stored(self, *, salt: str) -> dict[str, Any]:
        """What the state keeps: each value with its source; secret values as salted hashes."""
        kept: dict[str, Any] = {}
        for name, value in self.values.items():
            entry: dict[str, Any] = {"source": self.sources[name]}
            if name in self.secret:
                entry["sha256"] = secret_digest(value, salt=f"{salt}:{name}:")
            else:
                entry["value"] = value
            kept[name] = entry
        return kept

    def resumed(self, stored: Mapping[str, Any], *, salt: str, run_id: str) -> tuple[RunVariables, list[str]]:
        """These variables (given to a resumed run) merged with the ones ``run_id`` stored.

        A value not given again is the stored one; one given again must equal it.
        Returns the merged variables and warnings (stored names no longer declared).
        """
        values, sources, missing = dict(self.values), dict(self.sources), set(self.missing)
        for name, entry in stored.items():
            if name not in self.values or not isinstance(entry, Mapping):
                continue
            given = self.sources[name] not in (SOURCE_DEFAULT, SOURCE_MISSING)
            if "sha256" in entry:
                if secret_digest(self.values[name], salt=f"{salt}:{name}:") != entry["sha256"]:
                    raise VariableError(
                        f"secret variable {name!r} differs from the value run {run_id} started with"
                        + ("" if given else " (it was not given again)"),
                        hint=f"secret values are not stored: give the same value again (--var {name}=...), or start a new run",
                    )
                continue
            if given and self.values[name] != entry.get("value"):
                raise VariableError(
                    f"variable {name!r} is {self.values[name]!r} ({self.sources[name]}), "
                    f"but run {run_id} started with {entry.get('value')!r}",
                    hint=f"a resumed run keeps its variables: leave {name} out to reuse the stored value, or start a new run",
                )
            values[name] = entry.get("value")
            sources[name] = str(entry.get("source") or sources[name])
            missing.discard(name)
        warnings = [f"variable {name!r} stored with run {run_id} is no longer declared; ignored" for name in sorted(set(stored) - set(values))]
        return RunVariables(values, sources, self.secret, frozenset(missing)), warnings


def _problem(message: str, *, hint: str | None, location: Location | None) -> VariableError:
    return VariableError(message, hint=hint, location=location)


def bind_variables(declared: Mapping[str, Any], inputs: Sequence[VarInput] = (), *, flow_locate=None) -> RunVariables:
    """Check given values against the declarations (``VarSpec`` by name) and fill defaults.

    ``flow_locate(path)`` points at a node of the flow file, for messages about the
    declarations. Raises :class:`VariableError` (exit code 2) naming the variable.
    """
    from .connectors.schema import CoercionError, Field, coerce

    types = var_types()
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    given_at: dict[str, Location | None] = {}
    for given in inputs:
        for name, value in given.values.items():
            location = given.locations.get(name)
            if name not in declared:
                match = closest(name, declared)
                if match:
                    hint = f"did you mean {match!r}?"
                elif declared:
                    hint = f"declared variables: {', '.join(declared)}"
                else:
                    hint = "this flow declares no variables: add them under `vars:` in the flow file"
                raise _problem(f"undeclared variable {name!r} ({given.source})", hint=hint, location=location)
            values[name], sources[name], given_at[name] = value, given.source, location
    secret = frozenset(name for name, spec in declared.items() if spec.secret or is_secret_key(name))
    for name, spec in declared.items():
        if name not in values:
            values[name], sources[name] = spec.default, SOURCE_MISSING if spec.required else SOURCE_DEFAULT
        if values[name] is None:
            continue
        try:
            values[name] = coerce(values[name], Field(type=types[spec.type], secret=name in secret))
        except CoercionError as exc:
            where = f"{sources[name]}, declared as {spec.type}"
            hint = "fix the default in the flow file" if sources[name] == SOURCE_DEFAULT else f"give {name} a value of type {spec.type}"
            location = given_at.get(name)
            if sources[name] == SOURCE_DEFAULT and flow_locate is not None:
                location = flow_locate("vars", name, "default")
            raise _problem(f"variable {name!r} ({where}): {exc}", hint=hint, location=location) from None
    ordered = {name: values[name] for name in declared}
    missing = frozenset(name for name in declared if sources[name] == SOURCE_MISSING)
    return RunVariables(ordered, {name: sources[name] for name in declared}, secret, missing)
