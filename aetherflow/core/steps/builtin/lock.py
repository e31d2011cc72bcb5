"""``with_lock``: run one inner step while holding a named lock.

The lock lives in the flow's state store, so it excludes runs of any flow on any host
sharing that state. It is renewed while the inner step runs (a step may outlast its
TTL) and released when the step ends, whatever the outcome.
"""

from __future__ import annotations

from ...errors import StepError, StepInputError
from ...limits import MAX_DELAY_SECONDS, MAX_TIMEOUT_SECONDS
from ..base import Input, Step, StepResult
from ..registry import get_step

_INNER_KEYS = ("type", "id", "inputs")


class WithLock(Step):
    type = "with_lock"
    summary = "Run an inner step while holding a lock (renewed while held)"
    inputs = {
        "lock_key": Input(str, required=True, help="name of the lock; shared by every flow using the same state"),
        "step": Input(dict, required=True, help="the inner step: {type, id, inputs}"),
        "ttl_seconds": Input((int, float), default=600, minimum=1, maximum=MAX_TIMEOUT_SECONDS, help="lock lifetime; renewed every third of it while held"),
        "wait_seconds": Input((int, float), default=0, minimum=0, maximum=MAX_DELAY_SECONDS, help="how long to wait for a held lock before failing"),
    }
    outputs = ()  # the inner step's outputs, whatever they are
    inner_step = "step"

    def run(self, ctx, inputs):
        key = inputs["lock_key"].strip()
        if not key:
            raise StepInputError("step type 'with_lock': input 'lock_key' is empty")
        if inputs["ttl_seconds"] <= 0:
            raise StepInputError("step type 'with_lock': input 'ttl_seconds' must be positive")
        if inputs["wait_seconds"] < 0:
            raise StepInputError("step type 'with_lock': input 'wait_seconds' must not be negative")
        inner = inputs["step"]
        unknown = sorted(set(inner) - set(_INNER_KEYS))
        if unknown:
            raise StepInputError(f"step type 'with_lock': input 'step' has unknown key(s) {', '.join(map(repr, unknown))}; allowed: type, id, inputs")
        inner_type = inner.get("type")
        if not isinstance(inner_type, str) or not inner_type:
            raise StepInputError("step type 'with_lock': input 'step' needs a 'type'")
        if inner_type == self.type:
            raise StepInputError("step type 'with_lock': the inner step cannot be another with_lock")
        inner_inputs = inner.get("inputs") or {}
        if not isinstance(inner_inputs, dict):
            raise StepInputError("step type 'with_lock': input 'step.inputs' must be a mapping")
        cls = get_step(inner_type)
        bound = cls.bind_inputs(inner_inputs)  # bad inner inputs fail before the lock is taken
        if ctx.locks is None:
            raise StepError("with_lock needs the runner's lock manager (ctx.locks is not set)")
        ctx.logger.debug("lock.requested", extra={"lock_key": key, "inner_step": inner.get("id") or inner_type})
        with ctx.locks.hold(key, inputs["ttl_seconds"], inputs["wait_seconds"], ctx.cancel_event):
            result = cls().run(ctx, bound)
        if result is None:
            return StepResult()
        return StepResult(result.status, dict(result.outputs))
