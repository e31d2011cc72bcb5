"""Stage 3: profiles, named overlays of resource configuration.

Profiles come from ``--profiles-file``, else ``AETHERFLOW_PROFILES_JSON``, else
``AETHERFLOW_PROFILES_FILE``, else ``profiles.yaml`` beside the flow file. A profile has
a generic part (``config``, ``options``, ``decode``) applied to every resource that
uses it, and a ``resources.<name>`` part applied on top to one resource.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .decode import DecodeSpecError, parse_decode
from .errors import Location, ProfileError, suggest
from .limits import MAX_INTEGER_DIGITS, MAX_NESTING_DEPTH
from .spec.loader import PositionIndex, format_path, load_yaml, read_text

_SECTIONS = ("config", "options", "decode")
_PROFILE_KEYS = (*_SECTIONS, "resources", "description")


@dataclass
class Profiles:
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str | None = None
    index: PositionIndex | None = None

    def names(self) -> list[str]:
        return sorted(self.profiles)

    def get(self, name: str, *, wanted_by: str) -> dict[str, Any]:
        if name in self.profiles:
            return self.profiles[name]
        known = ", ".join(self.names()) or "none"
        where = f" in {self.source}" if self.source else " (no profiles file found)"
        raise ProfileError(
            f"unknown profile {name!r}{suggest(name, self.profiles)} wanted by {wanted_by}{where}",
            hint=f"known profiles: {known}",
        )

    def locate(self, path: tuple, *, key: bool = False) -> Location:
        if self.index is not None:
            return self.index.locate(path, key=key)
        return Location(self.source, None, None, format_path(path))


def load_profiles(
    *,
    flow_path: str | Path | None,
    profiles_file: str | None,
    profiles_json: str | None,
    env_profiles_file: str | None,
) -> Profiles:
    if profiles_file:
        return _from_file(Path(profiles_file))
    if profiles_json:
        try:
            data = json.loads(profiles_json)
        except json.JSONDecodeError as exc:
            raise ProfileError(
                f"AETHERFLOW_PROFILES_JSON is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                hint="the variable must hold a JSON object of profiles",
            ) from None
        except RecursionError:
            data = None  # deeper than the decoder goes: refused just below
        except ValueError:  # an integer beyond Python's conversion limit
            raise ProfileError(
                f"AETHERFLOW_PROFILES_JSON holds an integer with more than {MAX_INTEGER_DIGITS} digits",
                hint="quote the value to keep it as text",
            ) from None
        if data is None or _nesting(data) > MAX_NESTING_DEPTH:
            raise ProfileError(
                f"AETHERFLOW_PROFILES_JSON is nested more than {MAX_NESTING_DEPTH} levels deep",
                hint="profiles are a few levels deep: name -> config/options/resources -> values",
            )
        return _checked(Profiles(data if isinstance(data, dict) else {}, "AETHERFLOW_PROFILES_JSON"), data)
    if env_profiles_file:
        return _from_file(Path(env_profiles_file))
    if flow_path is not None:
        beside = Path(flow_path).parent / "profiles.yaml"
        if beside.is_file():
            return _from_file(beside)
    return Profiles()


def _nesting(data: Any) -> int:
    """How deep mappings and lists nest in ``data`` (counted without recursion)."""
    deepest, pending = 0, [(data, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, (dict, list)):
            deepest = max(deepest, depth + 1)
            pending.extend((child, depth + 1) for child in (value.values() if isinstance(value, dict) else value))
    return deepest


def check_profiles_text(text: str, file: str | None = None) -> Profiles:
    """Profiles read from YAML text, checked like a profiles file."""
    data, index = load_yaml(text, file)
    if data is None:
        data = {}
    return _checked(Profiles(data if isinstance(data, dict) else {}, file, index), data)


def _from_file(path: Path) -> Profiles:
    if not path.is_file():
        raise ProfileError(f"profiles file {str(path)!r} not found", hint="check --profiles-file / AETHERFLOW_PROFILES_FILE")
    return check_profiles_text(read_text(path), str(path))


def _checked(profiles: Profiles, data: Any) -> Profiles:
    if not isinstance(data, dict):
        raise ProfileError("profiles must be a mapping of profile name to overlay", location=profiles.locate(()))
    for name, body in data.items():
        if body is None:
            profiles.profiles[name] = {}
            continue
        if not isinstance(body, dict):
            raise ProfileError(f"profile {name!r} must be a mapping", location=profiles.locate((name,)))
        for key, value in body.items():
            if key not in _PROFILE_KEYS:
                raise ProfileError(
                    f"unknown key {key!r} in profile {name!r}{suggest(key, _PROFILE_KEYS)}",
                    hint=f"a profile has {', '.join(_PROFILE_KEYS)}",
                    location=profiles.locate((name, key)),
                )
            if key in _SECTIONS and value is not None and not isinstance(value, dict):
                raise ProfileError(f"profile {name!r}: {key} must be a mapping", location=profiles.locate((name, key)))
        _check_decode(profiles, body.get("decode"), (name, "decode"), f"profile {name!r}")
        for resource, part in (body.get("resources") or {}).items():
            if not isinstance(part, dict):
                raise ProfileError(
                    f"profile {name!r}: resources.{resource} must be a mapping",
                    location=profiles.locate((name, "resources", resource)),
                )
            for key in part:
                if key not in _SECTIONS:
                    raise ProfileError(
                        f"unknown key {key!r} in profile {name!r} resources.{resource}{suggest(key, _SECTIONS)}",
                        hint=f"a resource overlay has {', '.join(_SECTIONS)}",
                        location=profiles.locate((name, "resources", resource, key)),
                    )
            _check_decode(profiles, part.get("decode"), (name, "resources", resource, "decode"), f"profile {name!r} resources.{resource}")
    return profiles


def _check_decode(profiles: Profiles, decode: Any, path: tuple, where: str) -> None:
    try:
        parse_decode(decode)
    except DecodeSpecError as exc:
        raise ProfileError(f"{where}: {exc.message}", hint=exc.hint, location=profiles.locate(path + exc.path, key=exc.at_key)) from None


def merge_into(target: dict, overlay: Mapping, label: str, sources: dict[str, str], prefix: str) -> None:
    """Merge ``overlay`` into ``target`` key by key; record ``label`` for each leaf written.

    Mappings merge recursively; scalars and lists replace.
    """
    for key, value in overlay.items():
        path = f"{prefix}.{key}"
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            merge_into(target[key], value, label, sources, path)
            continue
        for stale in [s for s in sources if s.startswith(path + ".")]:
            del sources[stale]
        if isinstance(value, Mapping):
            target[key] = {}
            merge_into(target[key], value, label, sources, path)
            if not value:
                sources[path] = label
        else:
            target[key] = value
            sources[path] = label
