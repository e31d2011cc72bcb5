"""Stage 5: the secrets provider.

A provider is a Python module (``AETHERFLOW_SECRETS_MODULE``, an import name) or file
(``AETHERFLOW_SECRETS_PATH``; the module wins) exposing ``decode(value: str) -> str``
and optionally ``expand_env(env: dict)``, returning the environment, or the environment
and the names of its variables that hold secrets (``return env, {"API_TOKEN"}``). Any
failure to load or call it stops the command before a job starts.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from .errors import SecretsError

_WITHHELD = "the provider's message is withheld because it may contain a secret"


@dataclass(frozen=True)
class ExpandedEnv:
    """What ``expand_env`` returned: the variables, and those it marked as secrets."""

    values: dict[str, str]
    secret_names: frozenset[str] = frozenset()


class SecretsProvider:
    def __init__(self, module: ModuleType, origin: str):
        self.module = module
        self.origin = origin

    def decode(self, value: str, *, what: str) -> str:
        decode = getattr(self.module, "decode", None)
        if not callable(decode):
            raise SecretsError(
                f"secrets provider {self.origin} has no decode() function, needed for {what}",
                hint="define decode(value: str) -> str in the provider",
            )
        try:
            result = decode(value)
        except Exception as exc:  # noqa: BLE001 - provider code is foreign
            raise SecretsError(
                f"secrets provider {self.origin} failed to decode {what}: {type(exc).__name__}",
                hint=_WITHHELD,
            ) from None
        if not isinstance(result, str):
            raise SecretsError(f"secrets provider {self.origin} returned {type(result).__name__} for {what}, not a string")
        return result

    def expand_env(self, env: Mapping[str, str]) -> ExpandedEnv | None:
        expand = getattr(self.module, "expand_env", None)
        if expand is None:
            return None
        try:
            result = expand(dict(env))
        except Exception as exc:  # noqa: BLE001
            raise SecretsError(f"secrets provider {self.origin} failed in expand_env(): {_failure(exc)}", hint=_WITHHELD) from None
        names: Collection[str] = ()
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], Mapping):
            result, names = result
            if isinstance(names, (str, bytes)) or not isinstance(names, Collection):
                raise SecretsError(
                    f"secrets provider {self.origin}: expand_env() returned {type(names).__name__} as secret names",
                    hint="return the environment and a set of variable names: `return env, {\"API_TOKEN\"}`",
                )
        if not isinstance(result, Mapping):
            raise SecretsError(
                f"secrets provider {self.origin}: expand_env() must return a mapping",
                hint="return the environment, or the environment and a set of secret variable names",
            )
        return ExpandedEnv({str(k): str(v) for k, v in result.items()}, frozenset(str(n) for n in names))


def _failure(exc: BaseException) -> str:
    """What can be said about a provider's exception without quoting its message."""
    text = type(exc).__name__
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        text += f" (no module named {exc.name!r})"
    elif isinstance(exc, SyntaxError) and exc.lineno:
        text += f" at line {exc.lineno}"
    return text


def load_provider(module_name: str | None, path: str | None) -> SecretsProvider | None:
    if module_name:
        try:
            return SecretsProvider(importlib.import_module(module_name), f"module {module_name!r}")
        except Exception as exc:  # noqa: BLE001 - provider code is foreign
            raise SecretsError(
                f"cannot import secrets module {module_name!r}: {_failure(exc)}",
                hint=f"check AETHERFLOW_SECRETS_MODULE and that the module is importable; {_WITHHELD}",
            ) from None
    if path:
        file = Path(path)
        if not file.is_file():
            raise SecretsError(f"secrets provider file {path!r} not found", hint="check AETHERFLOW_SECRETS_PATH")
        try:
            spec = importlib.util.spec_from_file_location(f"aetherflow_secrets_{abs(hash(str(file)))}", file)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - provider code is foreign
            raise SecretsError(f"cannot load secrets provider {path!r}: {_failure(exc)}", hint=_WITHHELD) from None
        return SecretsProvider(module, f"file {path!r}")
    return None
