"""Steps written in aetherflow-core 0.0.14's shape, adapted when they are registered.

That shape is a class whose ``run(self)`` takes no arguments and reads ``self.inputs``
(the rendered inputs), ``self.ctx``, ``self.id`` and ``self.job_id``, may call
``self.validate()``, lists ``required_inputs``, and returns a dict or a
``StepResult(status=..., output=..., reason=...)``.

:func:`adapt` wraps such a class in a regular :class:`~aetherflow.core.steps.base.Step`
(``run(ctx, inputs)``). Its inputs are not declared (they reach the step unchecked),
except that ``required_inputs`` must be present, which ``validate`` checks as well. The
wrapped class is instantiated once per attempt, as ``Cls(step_id, inputs, ctx, job_id)``
when it defines its own ``__init__``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..context import StepContext
from ..errors import PluginError, StepError, StepInputError
from ..status import Status
from .base import Step, StepResult

NEW_SIGNATURE = "def run(self, ctx, inputs) -> StepResult"

# What ``self.ctx`` offered there and has no counterpart on a step context here.
_NO_COUNTERPART = {
    "settings": "settings are not visible to steps; pass what the step needs as inputs",
    "state": "the state store is not visible to steps; use ctx.acquire_lock()/release_lock() or the with_lock step",
    "resources": "resolved resources are reached through ctx.connectors[name]",
    "layout": "a job workspace has no layout here: ctx.artifacts_dir(job_id) is the workspace itself",
    "work_root": "use ctx.workspace (this job's directory) or ctx.job_dir(job_id)",
}


def run_arity(cls: type) -> int | None:
    """How many arguments ``cls.run`` takes besides ``self`` (None when it cannot be told)."""
    try:
        signature = inspect.signature(cls.run)
    except (TypeError, ValueError):
        return None
    params = list(signature.parameters.values())[1:]
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        return None
    return len([p for p in params if p.default is p.empty])


@dataclass
class UpstreamContext(StepContext):
    """The step context plus the helpers that shape of step calls on ``self.ctx``.

    Directories: ``job_dir(job_id)`` and ``artifacts_dir(job_id)`` are the job's
    workspace (where every relative path of a flow lands here), ``scratch_dir`` and
    ``manifests_dir`` are subfolders of it.
    """

    @classmethod
    def of(cls, ctx: StepContext) -> UpstreamContext:
        return cls(**{f.name: getattr(ctx, f.name) for f in fields(StepContext)})

    @property
    def log(self):
        return self.logger

    def job_dir(self, job_id: str | None = None) -> Path:
        if job_id in (None, self.job_id):
            path = Path(self.workspace)
        else:
            # Workspaces are <root>/<flow>/<job>/<run>: a sibling job's is two levels up.
            path = Path(self.workspace).parent.parent / str(job_id) / self.run_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def artifacts_dir(self, job_id: str | None = None) -> Path:
        return self.job_dir(job_id)

    def scratch_dir(self, job_id: str | None = None) -> Path:
        return self._subdir(job_id, "scratch")

    def manifests_dir(self, job_id: str | None = None) -> Path:
        return self._subdir(job_id, "manifests")

    def _subdir(self, job_id: str | None, name: str) -> Path:
        path = self.job_dir(job_id) / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def acquire_lock(self, key: str, ttl_seconds: float) -> bool:
        if self.locks is None:
            raise StepError("locks are not available to this step")
        return self.locks.acquire(key, ttl_seconds, 0, self.cancel_event)

    def release_lock(self, key: str) -> None:
        if self.locks is not None:
            self.locks.release(key)

    def __getattr__(self, name: str) -> Any:
        hint = _NO_COUNTERPART.get(name)
        if hint is None:
            raise AttributeError(f"step context has no attribute {name!r}")
        raise AttributeError(f"ctx.{name} does not exist here: {hint}")


class _UpstreamInstance:
    """Mixed in after the plugin's class: the constructor and ``validate`` it inherits."""

    def __init__(self, step_id: str, inputs: dict[str, Any], ctx: Any, job_id: str):
        self.id = step_id
        self.inputs = inputs
        self.ctx = ctx
        self.job_id = job_id

    def validate(self) -> None:
        missing = sorted(n for n in (type(self).required_inputs or ()) if n not in self.inputs)
        if missing:
            raise StepInputError(f"step {self.id!r}: missing required input(s) {', '.join(map(repr, missing))}")


def adapt(cls: type[Step], type_name: str) -> type[Step]:
    """A :class:`Step` that runs ``cls`` (a class with ``run(self)``)."""
    if isinstance(cls.inputs, dict):
        raise PluginError(
            f"step class {cls.__qualname__} declares `inputs` but has the run(self) shape",
            hint=f"with declared inputs write `{NEW_SIGNATURE}`; with run(self) use required_inputs = {{...}}",
        )
    # The plugin's class first, so its own __init__/validate win; ours fill the gaps.
    instance_cls = type(cls.__name__, (cls, _UpstreamInstance), {"__module__": cls.__module__})

    def run(self, ctx, inputs: dict[str, Any]) -> StepResult:
        step = instance_cls(ctx.step_id, dict(inputs), UpstreamContext.of(ctx), ctx.job_id)
        return _result(step.run(), type_name)

    return type(
        f"{cls.__name__}Adapted",
        (Step,),
        {
            "__module__": cls.__module__,
            "__qualname__": f"{cls.__qualname__}Adapted",
            "__doc__": cls.__doc__,
            "type": type_name,
            "summary": cls.summary or _first_line(cls.__doc__),
            "inputs": None,
            "required_inputs": frozenset(cls.required_inputs or ()),
            "outputs": tuple(cls.outputs or ()),
            "run": run,
            "wrapped": cls,
        },
    )


def _result(value: Any, type_name: str) -> StepResult:
    if value is None:
        return StepResult()
    if isinstance(value, StepResult):
        outputs = dict(value.outputs)
        if value.reason is not None:
            # There, a reason was also part of the outputs (flows read steps.X.reason).
            outputs.setdefault("reason", value.reason)
        return StepResult(value.status, outputs, value.reason)
    if isinstance(value, dict):
        return StepResult(Status.SUCCESS, dict(value))
    raise TypeError(f"step type {type_name!r} returned {type(value).__name__}, not a dict or StepResult")


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if (doc or "").strip() else ""
