"""Stage 1 of resolution: the environment snapshot.

The process environment is copied once, env files are overlaid in the order given, and
the secrets provider may expand the result. Nothing downstream reads ``os.environ``;
``os.environ`` itself is never modified.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType

from .errors import Location, ResolutionError
from .values import parse_bool


class EnvSnapshot(Mapping[str, str]):
    """An immutable mapping of environment variables that remembers where each came from."""

    def __init__(self, values: Mapping[str, str], origins: Mapping[str, str] | None = None):
        self._values = MappingProxyType(dict(values))
        self._origins = MappingProxyType(dict(origins or {}))

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def origin(self, key: str) -> str:
        """``process``, ``file:<path>`` or ``secrets`` for a known variable."""
        return self._origins.get(key, "process")

    def overlay(self, values: Mapping[str, str], origin: str) -> EnvSnapshot:
        merged = dict(self._values)
        origins = dict(self._origins)
        for key, value in values.items():
            if value is None:
                continue
            merged[key] = str(value)
            origins[key] = origin
        return EnvSnapshot(merged, origins)

    @classmethod
    def capture(cls, env_files: Iterable[str | Path] = (), base: Mapping[str, str] | None = None) -> EnvSnapshot:
        """Copy ``base`` (default ``os.environ``) and overlay dotenv files in order."""
        snapshot = cls(dict(os.environ if base is None else base))
        for env_file in env_files:
            snapshot = snapshot.overlay(read_env_file(env_file), f"file:{env_file}")
        return snapshot


def read_env_file(path: str | Path) -> dict[str, str]:
    from dotenv import dotenv_values

    file = Path(path)
    if not file.is_file():
        raise ResolutionError(
            f"env file {str(path)!r} not found",
            hint="check the --env-file path",
            location=Location(str(path)),
        )
    try:
        values = dotenv_values(file, interpolate=False)
    except (OSError, UnicodeDecodeError) as exc:
        raise ResolutionError(f"cannot read env file {str(path)!r}: {exc}", location=Location(str(path))) from None
    return {k: v for k, v in values.items() if v is not None}


def env_flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    """A boolean setting (see :func:`~aetherflow.core.values.parse_bool`); ``default`` when unset or empty."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = parse_bool(raw)
    if value is None:
        raise ResolutionError(f"{name}={raw!r} is not a boolean", hint="use true or false")
    return value
