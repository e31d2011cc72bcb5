"""Typed models of the flow file (version 1). Unknown keys are errors everywhere.

Each field's ``description`` is its help text: the JSON Schema of the flow file
(:mod:`aetherflow.core.spec.json_schema`) carries it to editors.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..limits import MAX_DELAY_SECONDS, MAX_PARALLEL, MAX_RETRY_BACKOFF, MAX_TIMEOUT_SECONDS

# Ids name directories of the workspace: letters, digits, '_', '-' and '.', but not
# dots alone ('.' and '..' would leave the workspace).
ID_PATTERN = r"^[A-Za-z0-9_.-]*[A-Za-z0-9_-][A-Za-z0-9_.-]*$"
ID_HINT = "ids are names: letters, digits, '_', '-' and '.', but not dots alone"
DEFAULT_WORK_ROOT = "{{ env.AETHERFLOW_WORK_ROOT | default('/tmp/aetherflow/work') }}"
CleanupPolicy = Literal["on_success", "always", "never"]


def is_name(text: str) -> bool:
    """True when ``text`` may be used as an id (flow, job, step or run)."""
    return re.fullmatch(ID_PATTERN[1:-1], text) is not None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class WorkspaceSpec(_Strict):
    """Where job workspaces live and when they are removed."""

    root: str = Field(DEFAULT_WORK_ROOT, description="folder holding <flow_id>/<job_id>/<run_id>/ workspaces; templated with env")
    cleanup_policy: CleanupPolicy = Field(
        "never", description="remove this run's workspaces: never, on_success (when the run succeeded) or always"
    )


class StateSpec(_Strict):
    """Where runs, steps and locks are recorded."""

    backend: Literal["sqlite", "postgres"] = Field("sqlite", description="sqlite (a local file) or postgres (shared by several hosts)")
    path: str | None = Field(None, description="sqlite: the state file, relative to the flow file's folder (default $AETHERFLOW_STATE_ROOT/state.db)")
    dsn: str | None = Field(None, description="postgres: connection string or postgresql:// URL")


class FlowLockSpec(_Strict):
    """A lock held for the whole run, so that two runs never overlap."""

    key: str = Field(min_length=1, description="lock name; runs using the same state and key exclude each other")
    ttl_seconds: int = Field(default=3600, gt=0, le=MAX_TIMEOUT_SECONDS, description="lock lifetime; renewed while the run holds it")
    on_locked: Literal["fail", "skip"] = Field("fail", description="when the lock is held: fail (exit 3) or skip (the run is SKIPPED)")
    wait_seconds: float = Field(default=0, ge=0, le=MAX_DELAY_SECONDS, description="how long to wait for a held lock first")


class FlowMeta(_Strict):
    """The flow's identity, workspace, state and lock."""

    id: str = Field(pattern=ID_PATTERN, description="names the flow in state, logs and workspace paths (letters, digits, _ . -; not dots alone)")
    description: str | None = Field(None, description="free text")
    workspace: WorkspaceSpec = Field(WorkspaceSpec(), description="where job workspaces live and when they are removed")
    state: StateSpec = Field(StateSpec(), description="state backend: sqlite (default) or postgres")
    lock: FlowLockSpec | None = Field(None, description="optional lock held for the whole run")
    plugins: list[str] = Field(
        [], description="plugin files or folders this flow needs, relative to the flow file; loaded before the flow is checked"
    )
    max_parallel: int = Field(
        1,
        ge=1,
        le=MAX_PARALLEL,
        description="jobs run at once when their dependencies allow (default 1: one after another, in file order); "
        "AETHERFLOW_MAX_PARALLEL and run --max-parallel override it",
    )


class ResourceSpec(_Strict):
    """An external system: a connector of a kind and driver, and its configuration."""

    kind: str = Field(min_length=1, description="logical category: db, rest, mail, sftp, smb, archive, fs, ... (`aetherflow connectors list`)")
    driver: str = Field(min_length=1, description="the implementation within the kind, e.g. postgres for kind db")
    profile: str | None = Field(None, description="pin this resource to a profile (else the run's --profile)")
    description: str | None = Field(None, description="free text")
    config: dict[str, Any] = Field({}, description="driver configuration: endpoints, credentials (`aetherflow connectors show KIND/DRIVER`)")
    options: dict[str, Any] = Field({}, description="runtime knobs: timeouts, batch sizes")
    decode: dict[str, Any] = Field({}, description="leaves passed through the secrets provider, e.g. {config: {password: true}}")


class RetrySpec(_Strict):
    """Re-run a failed step, visibly; there are no other retries."""

    max_attempts: int = Field(default=1, ge=1, le=100, description="attempts in all, the first included")
    delay_seconds: float = Field(default=0, ge=0, le=MAX_DELAY_SECONDS, description="wait before the second attempt")
    backoff: float = Field(default=1.0, ge=1.0, le=MAX_RETRY_BACKOFF, description="factor applied to the delay after each attempt")

    def longest_wait(self) -> float:
        """The wait before the last attempt, the longest of all."""
        return self.delay_seconds * self.backoff ** max(self.max_attempts - 2, 0)


class StepSpec(_Strict):
    """One unit of work: a step type and its inputs."""

    id: str = Field(pattern=ID_PATTERN, description="unique within the job")
    type: str = Field(min_length=1, description="a built-in step type or one registered by a plugin (`aetherflow steps list`)")
    description: str | None = Field(None, description="free text")
    inputs: dict[str, Any] = Field({}, description="the step type's inputs, templated")
    outputs: dict[str, Any] = Field({}, description="job outputs promoted from this step, templated with `result`")
    on_no_data: Literal["skip_job", "continue"] | None = Field(None, description="skip_job: when this step is SKIPPED, skip the rest of the job")
    retry: RetrySpec | None = Field(None, description="re-run the step after a failure")
    persist: dict[str, Any] = Field(
        {},
        description="values kept for later runs of this flow (the `store` root), templated with `result`; "
        "written only when the whole run succeeds",
    )
    timeout_seconds: float | None = Field(
        None,
        gt=0,
        le=MAX_TIMEOUT_SECONDS,
        description="stop the step after this many seconds (each attempt): it fails, and retry applies",
    )


class JobSpec(_Strict):
    """Steps run in order, after the jobs this one depends on."""

    id: str = Field(pattern=ID_PATTERN, description="unique job id")
    description: str | None = Field(None, description="free text")
    depends_on: list[str] = Field([], description="ids of jobs that must succeed first")
    when: str | None = Field(None, description="expression over finished jobs (jobs.<id>.outputs.<key>); false skips the job")
    steps: list[StepSpec] = Field(min_length=1, description="the job's steps, run in order")


VarType = Literal["string", "integer", "number", "boolean", "list", "mapping"]


class VarSpec(_Strict):
    """A run variable: given with --var / --vars-file, read in templates as vars.<name>."""

    type: VarType = Field("string", description="string, integer, number, boolean, list or mapping; --var text is converted to it")
    default: Any = Field(None, description="the value when none is given")
    required: bool = Field(False, description="a run must give a value (--var or --vars-file)")
    secret: bool = Field(False, description="mask the value everywhere (names like password or token are secret anyway)")
    description: str | None = Field(None, description="free text")


class HandlersSpec(_Strict):
    """Steps run once the run is over, also when it failed before any job started."""

    on_failure: list[StepSpec] = Field([], description="steps run when the run FAILED (not when it was interrupted)")
    on_success: list[StepSpec] = Field([], description="steps run when the run succeeded (SUCCESS or SKIPPED)")
    always: list[StepSpec] = Field([], description="steps run after on_failure / on_success, whatever the status")


class FlowSpec(_Strict):
    """An aetherflow flow file (version 1)."""

    version: Literal[1] = Field(description="format version of this file; always 1")
    flow: FlowMeta = Field(description="the flow's id, workspace, state and lock")
    vars: dict[str, VarSpec] = Field({}, description="run variables by name: type, default, required (`--var NAME=VALUE`)")
    resources: dict[str, ResourceSpec] = Field({}, description="external systems by name; steps reach them as ctx.connectors[name]")
    jobs: list[JobSpec] = Field(min_length=1, description="the work: jobs made of steps")
    handlers: HandlersSpec = Field(HandlersSpec(), description="steps run after the run: on_failure, on_success, always (templates see `run`)")


class ProfileResourceSpec(_Strict):
    """A profile's overlay for one named resource, applied after the generic part."""

    config: dict[str, Any] | None = Field(None, description="merged into the resource's config, key by key")
    options: dict[str, Any] | None = Field(None, description="merged into the resource's options, key by key")
    decode: dict[str, Any] | None = Field(None, description="more leaves passed through the secrets provider")


class ProfileSpec(_Strict):
    """A named overlay of resource configuration (`--profile NAME`)."""

    description: str | None = Field(None, description="free text")
    config: dict[str, Any] | None = Field(None, description="merged into the config of every resource using this profile")
    options: dict[str, Any] | None = Field(None, description="merged into the options of every resource using this profile")
    decode: dict[str, Any] | None = Field(None, description="leaves passed through the secrets provider, for every resource using this profile")
    resources: dict[str, ProfileResourceSpec] | None = Field(None, description="per-resource overlays, applied on top of the generic part")
