"""Steps for the state, resume and lock tests (loaded through AETHERFLOW_PLUGIN_PATHS).

Every line these steps append to a shared file is one ``os.write`` on an ``O_APPEND``
descriptor, so lines from concurrent processes never interleave and a ``kill -9``
leaves whole lines only.
"""

import hashlib
import os
import random
import time
import uuid

from aetherflow.core.api import STEP_SUCCESS, Input, Step, StepError, StepResult, register_step


def append_line(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)


def chain_token(previous, name):
    """The token a ledger step outputs, given its input token and ``job.step`` name."""
    return hashlib.sha256(f"{previous}/{name}".encode()).hexdigest()[:16]


def artifact_bytes(token, size):
    return (token.encode() * (size // len(token) + 1))[:size]


@register_step()
class Ledger(Step):
    """Logs start/end to a ledger, sleeps a random short time, writes an artifact atomically."""

    type = "statetest.ledger"
    summary = "Ledger, random sleep and an atomically written artifact"
    inputs = {
        "ledger": Input(str, required=True),
        # Not "token": an input named like a credential is a secret, masked at every exit.
        "previous": Input(str, required=True, help="the token of the step before"),
        "artifact": Input(str, required=True),
        "size": Input(int, default=64 * 1024),
        "sleep_ms": Input(list, default=[5, 25]),
        "fail": Input(bool, default=False),
    }
    outputs = ("token", "artifact")

    def run(self, ctx, inputs):
        name = f"{ctx.job_id}.{ctx.step_id}"
        append_line(inputs["ledger"], f"start {name} {os.getpid()}")
        if inputs["fail"]:
            raise StepError(f"{name} failed as asked")
        token = chain_token(inputs["previous"], name)
        low, high = inputs["sleep_ms"]
        time.sleep(random.uniform(low, high) / 1000)
        path = ctx.path(inputs["artifact"], what="artifact")
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.part-{uuid.uuid4().hex[:8]}")
        data = artifact_bytes(token, inputs["size"])
        chunk = max(len(data) // 16, 1)
        try:
            with open(temp, "wb") as fh:
                for offset in range(0, len(data), chunk):
                    fh.write(data[offset : offset + chunk])
                    fh.flush()
                    time.sleep(0.0005)
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        append_line(inputs["ledger"], f"end {name} {os.getpid()}")
        return StepResult(STEP_SUCCESS, {"token": token, "artifact": str(path)})


@register_step()
class Critical(Step):
    """A critical section: proves mutual exclusion with an O_EXCL marker and timestamps."""

    type = "statetest.critical"
    summary = "Record entry/exit of a critical section"
    inputs = {"log": Input(str, required=True), "marker": Input(str, required=True), "hold_ms": Input(int, default=50)}
    outputs = ("pid",)

    def run(self, ctx, inputs):
        try:
            os.close(os.open(inputs["marker"], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            append_line(inputs["log"], f"OVERLAP {time.time():.6f} {os.getpid()}")
        append_line(inputs["log"], f"start {time.time():.6f} {os.getpid()}")
        time.sleep(inputs["hold_ms"] / 1000)
        append_line(inputs["log"], f"end {time.time():.6f} {os.getpid()}")
        os.unlink(inputs["marker"])
        return StepResult(STEP_SUCCESS, {"pid": os.getpid()})


@register_step()
class Hold(Step):
    """Writes ``started`` (time and pid) when it begins, sleeps, then writes ``finished``."""

    type = "statetest.hold"
    summary = "Sleep while holding whatever the caller holds"
    inputs = {"started": Input(str, required=True), "finished": Input(str, default=None), "seconds": Input((int, float), default=30)}
    outputs = ("pid",)

    def run(self, ctx, inputs):
        append_line(inputs["started"], f"{time.time():.6f} {os.getpid()}")
        ctx.cancel.wait(inputs["seconds"])  # a cancelled run (a signal) ends the wait
        ctx.cancel.raise_if_cancelled()
        if inputs["finished"]:
            append_line(inputs["finished"], f"{time.time():.6f} {os.getpid()}")
        return StepResult(STEP_SUCCESS, {"pid": os.getpid()})


@register_step()
class Barrier(Step):
    """Waits until ``count`` processes have reached it (one line each in ``path``)."""

    type = "statetest.barrier"
    summary = "Wait for the other processes of a test"
    inputs = {"path": Input(str, required=True), "count": Input(int, required=True), "timeout": Input((int, float), default=120)}
    outputs = ()

    def run(self, ctx, inputs):
        append_line(inputs["path"], str(os.getpid()))
        deadline = time.monotonic() + inputs["timeout"]
        while True:
            with open(inputs["path"]) as fh:
                if len(fh.read().splitlines()) >= inputs["count"]:
                    return StepResult(STEP_SUCCESS, {})
            if time.monotonic() > deadline:
                raise StepError("barrier timed out")
            time.sleep(0.005)
