"""Stage 2: settings read from the environment snapshot (CLI flags override them)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .env import EnvSnapshot, env_flag
from .errors import ResolutionError

CACHE_SCOPES = ("run", "process", "none")
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def parse_max_parallel(value: str | int | None, source: str) -> int | None:
    """A ``max_parallel`` given outside the flow (environment, command line), checked."""
    from .limits import MAX_PARALLEL

    if value is None:
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_PARALLEL:
        raise ResolutionError(f"{source}={value!r} is not a number of jobs", hint=f"use a whole number from 1 to {MAX_PARALLEL}")
    return number


@dataclass(frozen=True)
class Settings:
    work_root: str | None = None
    state_root: str | None = None
    profile: str | None = None
    profiles_file: str | None = None
    profiles_json: str | None = None
    plugin_paths: tuple[str, ...] = ()
    plugin_strict: bool = True
    secrets_module: str | None = None
    secrets_path: str | None = None
    connector_cache: str = "run"
    connector_cache_disabled: bool = False
    log_level: str = "INFO"
    log_format: str = "text"
    max_parallel: int | None = None  # None: the flow's own flow.max_parallel

    @classmethod
    def from_env(cls, env: EnvSnapshot, **overrides: Any) -> Settings:
        def get(name: str) -> str | None:
            value = env.get(name)
            return value if value not in (None, "") else None

        cache = (get("AETHERFLOW_CONNECTOR_CACHE_DEFAULT") or "run").lower()
        if cache not in CACHE_SCOPES:
            raise ResolutionError(
                f"AETHERFLOW_CONNECTOR_CACHE_DEFAULT={cache!r} is not a cache scope",
                hint=f"use one of {', '.join(CACHE_SCOPES)}",
            )
        log_format = (get("AETHERFLOW_LOG_FORMAT") or "text").lower()
        if log_format not in LOG_FORMATS:
            raise ResolutionError(f"AETHERFLOW_LOG_FORMAT={log_format!r} is not supported", hint="use text or json")
        log_level = (get("AETHERFLOW_LOG_LEVEL") or "INFO").upper()
        if log_level not in LOG_LEVELS:
            raise ResolutionError(f"AETHERFLOW_LOG_LEVEL={log_level!r} is not a level", hint=f"use one of {', '.join(LOG_LEVELS)}")
        max_parallel = parse_max_parallel(get("AETHERFLOW_MAX_PARALLEL"), "AETHERFLOW_MAX_PARALLEL")
        paths = tuple(p.strip() for p in (get("AETHERFLOW_PLUGIN_PATHS") or "").split(",") if p.strip())
        settings = cls(
            work_root=get("AETHERFLOW_WORK_ROOT"),
            state_root=get("AETHERFLOW_STATE_ROOT"),
            profile=get("AETHERFLOW_PROFILE"),
            profiles_file=get("AETHERFLOW_PROFILES_FILE"),
            profiles_json=get("AETHERFLOW_PROFILES_JSON"),
            plugin_paths=paths,
            plugin_strict=env_flag(env, "AETHERFLOW_PLUGIN_STRICT", True),
            secrets_module=get("AETHERFLOW_SECRETS_MODULE"),
            secrets_path=get("AETHERFLOW_SECRETS_PATH"),
            connector_cache=cache,
            connector_cache_disabled=env_flag(env, "AETHERFLOW_CONNECTOR_CACHE_DISABLED", False),
            log_level=log_level,
            log_format=log_format,
            max_parallel=max_parallel,
        )
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})
