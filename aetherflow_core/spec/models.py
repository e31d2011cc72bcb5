"""Typed models of the flow file (version 1). Unknown keys are errors everywhere."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ID_PATTERN = r"^[A-Za-z0-9_.-]+$"
DEFAULT_WORK_ROOT = "{{ env.AETHERFLOW_WORK_ROOT | default('/tmp/aetherflow/work') }}"
CleanupPolicy = Literal["on_success", "always", "never"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class WorkspaceSpec(_Strict):
    root: str = DEFAULT_WORK_ROOT
    cleanup_policy: CleanupPolicy = "never"


class StateSpec(_Strict):
    backend: Literal["sqlite", "postgres"] = "sqlite"
    path: str | None = None
    dsn: str | None = None


class FlowLockSpec(_Strict):
    key: str = Field(min_length=1)
    ttl_seconds: int = Field(default=3600, gt=0)
    on_locked: Literal["fail", "skip"] = "fail"
    wait_seconds: float = Field(default=0, ge=0)


class FlowMeta(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    description: str | None = None
    workspace: WorkspaceSpec = WorkspaceSpec()
    state: StateSpec = StateSpec()
    lock: FlowLockSpec | None = None


class ResourceSpec(_Strict):
    kind: str = Field(min_length=1)
    driver: str = Field(min_length=1)
    profile: str | None = None
    description: str | None = None
    config: dict[str, Any] = {}
    options: dict[str, Any] = {}
    decode: dict[str, Any] = {}


class RetrySpec(_Strict):
    max_attempts: int = Field(default=1, ge=1, le=100)
    delay_seconds: float = Field(default=0, ge=0)
    backoff: float = Field(default=1.0, ge=1.0)


class StepSpec(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    type: str = Field(min_length=1)
    description: str | None = None
    inputs: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    on_no_data: Literal["skip_job", "continue"] | None = None
    retry: RetrySpec | None = None


class JobSpec(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    description: str | None = None
    depends_on: list[str] = []
    when: str | None = None
    steps: list[StepSpec] = Field(min_length=1)


class FlowSpec(_Strict):
    version: Literal[1]
    flow: FlowMeta
    resources: dict[str, ResourceSpec] = {}
    jobs: list[JobSpec] = Field(min_length=1)
