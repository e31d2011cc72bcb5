"""``external.process``: run a command as a child process, safely.

The command runs as an argv list (a string is split with :func:`shlex.split`); a shell
is used only with ``shell: true``. The child starts in its own session, so a timeout or
a cancelled run stops the whole process tree it started: SIGTERM to the process group,
then SIGKILL after ``kill_grace_seconds``. Processes the command leaves running in its
group when it exits are stopped the same way, so a step never leaves orphans behind,
also when the runner itself dies (:class:`_GroupGuard`, ``PR_SET_PDEATHSIG``).

Each output stream is streamed line by line to the log as ``process.output`` events,
captured into the step's outputs (bounded: the last ``max_capture_bytes`` are kept),
written to a file, inherited or discarded (``log:``). Secrets are scrubbed from
everything the step reads, always before any cut: a line longer than 16 KiB is logged
(or written) in pieces split where no secret can straddle, and what is left of a secret
where a bounded buffer begins is masked.

The contract around the command -- success checks on files, the idempotency marker,
the atomic output directory, which failures may be retried -- lives in
:mod:`.process_contract`; :meth:`ExternalProcess.run` calls it at fixed points.
"""

from __future__ import annotations

import codecs
import functools
import os
import select
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import IO, Any

from ...errors import Interrupted, StepError, StepInputError
from ...limits import MAX_DELAY_SECONDS, MAX_TIMEOUT_SECONDS
from ...procfs import group_alive, signal_group, stop_process_group
from ...redaction import Scrubber
from ..base import Input, Step, StepResult
from .process_contract import (
    Stream,
    check_files,
    child_env,
    contract_outputs,
    exit_failure,
    marker_skip,
    prepare_log_files,
    prepare_work_dir,
    publish,
    read_contract,
    timeout_failure,
    write_marker,
)

DEFAULT_MAX_CAPTURE = 1024 * 1024
#: How much of stderr is kept for the error message when output is streamed.
_ERROR_TAIL = 8 * 1024
_TAIL_SHOWN = 2000
_MAX_LINE = 16 * 1024  # longer lines are logged in pieces
_SHELL = "/bin/sh"


class _Tail:
    """The last ``limit`` bytes written to a stream, and how many bytes there were."""

    def __init__(self, limit: int):
        self.limit = limit
        self.total = 0
        self._buf = bytearray()

    def add(self, data: bytes) -> None:
        self.total += len(data)
        self._buf += data
        if len(self._buf) > 2 * self.limit:
            del self._buf[: len(self._buf) - self.limit]

    @property
    def truncated(self) -> bool:
        return self.total > self.limit

    def text(self) -> str:
        data = bytes(self._buf[-self.limit :]) if self.limit else b""
        if self.truncated:
            # The cut may fall inside a UTF-8 sequence: drop its continuation bytes.
            start = 0
            while start < min(len(data), 3) and data[start] & 0xC0 == 0x80:
                start += 1
            data = data[start:]
        return data.decode("utf-8", errors="replace")

    def captured(self, scrubber: Scrubber) -> str:
        """The kept text; when its start was cut off, a secret's end left there is masked
        (no later scrubbing could tell it from other text)."""
        text = self.text()
        return scrubber.mask_edges(text, start=True) if self.truncated else text


def _pump_captured(pipe: IO[bytes], tail: _Tail) -> None:
    with pipe:
        while chunk := pipe.read1(65536):
            tail.add(chunk)


def _scrubbed_pieces(pipe: IO[bytes], tail: _Tail, scrubber: Scrubber) -> Iterator[tuple[str, str]]:
    """``(text, line ending)`` for each line read, scrubbed; a line longer than
    ``_MAX_LINE`` comes in pieces (ending ``""``) cut where no secret straddles the cut."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    rest = ""
    with pipe:
        while chunk := pipe.readline(_MAX_LINE):
            tail.add(chunk)
            text = rest + decoder.decode(chunk)
            if chunk.endswith(b"\n"):
                line = text.rstrip("\r\n")
                yield scrubber.scrub(line), text[len(line) :]
                rest = ""
            else:
                piece, rest = scrubber.scrub_stream(text)
                if piece:
                    yield piece, ""
        rest += decoder.decode(b"", final=True)
        if rest:
            yield scrubber.scrub(rest), ""


def _pump_streamed(pipe: IO[bytes], tail: _Tail, emit: Callable[[str], None], scrubber: Scrubber) -> None:
    """Emit each line, scrubbed; a line longer than ``_MAX_LINE`` goes out in pieces."""
    for text, _ending in _scrubbed_pieces(pipe, tail, scrubber):
        emit(text)


def _pump_to_file(pipe: IO[bytes], tail: _Tail, path: Path, scrubber: Scrubber) -> None:
    # Line-buffered appends: when stdout and stderr share the file, lines interleave whole.
    with open(path, "a", encoding="utf-8", errors="replace", buffering=1) as fh:
        for text, ending in _scrubbed_pieces(pipe, tail, scrubber):
            fh.write(text + ending)


def _child_stream(stream: Stream) -> int | None:
    """What ``Popen`` gets for a stream: a pipe the step reads, the runner's own, or nothing."""
    if stream.piped:
        return subprocess.PIPE
    return None if stream.mode == "inherit" else subprocess.DEVNULL


def _exited(pid: int) -> bool:
    """True once ``pid`` has exited, without reaping it.

    Leaving the exited leader as a zombie keeps its process-group id reserved, so the
    group can still be signalled safely (the id cannot be reused meanwhile).
    """
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _pidfd(pid: int) -> int | None:
    """A file descriptor that becomes readable when ``pid`` exits (Linux 5.3+), or None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` (Linux), looked up once; None where there is none."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PR_SET_PDEATHSIG = 1


def _die_with_runner() -> Callable[[], None] | None:
    """What the child runs before the command (Linux): the kernel kills it if the runner's
    thread that started it dies (``PR_SET_PDEATHSIG``), even by ``kill -9``. None elsewhere."""
    prctl, runner = _prctl(), os.getpid()
    if prctl is None:
        return None

    def child_setup() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != runner:  # the runner died before the request was made
            os.kill(os.getpid(), signal.SIGKILL)

    return child_setup


#: The guard of a command's process group: it waits for a line from the runner and, when
#: the pipe closes without one (the runner died), kills the whole group.
_GUARD_SCRIPT = 'read -r done || kill -KILL -"$0"'


class _GroupGuard:
    """A small process (``sh``) that stops the command's process group when the runner
    dies, however it dies: the kernel closes the runner's end of the guard's pipe, and
    the guard kills the group. The command's children (``PR_SET_PDEATHSIG`` only reaches
    the child itself) die with it, so no process of the step outlives a ``kill -9`` of
    the runner. It runs in a session of its own, so a signal to the runner's process
    group does not stop it first."""

    def __init__(self, pgid: int):
        self._proc = subprocess.Popen(
            [_SHELL, "-c", _GUARD_SCRIPT, str(pgid)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def release(self) -> None:
        """The group is gone and its leader not yet reaped (its id cannot be reused):
        the guard leaves without killing anything."""
        try:
            self._proc.stdin.write(b"done\n")
            self._proc.stdin.close()
        except OSError:
            pass
        self._proc.wait()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _text_list(value: Any, name: str) -> list[str]:
    if isinstance(value, str):
        return shlex.split(value)
    if isinstance(value, (list, tuple)):
        items = []
        for item in value:
            if item is None or isinstance(item, (dict, list)):
                raise StepInputError(f"step type 'external.process': input {name!r} holds {item!r}; expected strings or numbers")
            items.append(str(item).lower() if isinstance(item, bool) else str(item))
        return items
    raise StepInputError(f"step type 'external.process': input {name!r} must be a list or a string")


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ExternalProcess(Step):
    type = "external.process"
    summary = "Run a command (argv, or a shell when asked) with a timeout and bounded output"
    inputs = {
        "command": Input(
            (list, str), required=True, items=(str, int, float), help="argv list, or a string (split like a shell would unless shell is true)"
        ),
        "args": Input((list, str), items=(str, int, float), help="extra arguments appended to the command"),
        "shell": Input(bool, default=False, help="run the command through /bin/sh -c"),
        "cwd": Input(str, help="working directory, relative to the job workspace (default: the workspace)"),
        "env": Input(dict, help="variables added to the child's environment (null removes one)"),
        "inherit_env": Input(bool, default=True, help="start from the run's environment; false starts empty"),
        "timeout_seconds": Input((int, float), minimum=0, maximum=MAX_TIMEOUT_SECONDS, help="stop the whole process tree after this many seconds"),
        "kill_grace_seconds": Input((int, float), default=10, minimum=0, maximum=MAX_DELAY_SECONDS, help="seconds between SIGTERM and SIGKILL"),
        "capture": Input(bool, default=False, help="capture stdout/stderr into outputs instead of logging them"),
        "success_exit_codes": Input((list, int), help="exit codes that count as success (default [0]; or success.exit_codes)"),
        "max_capture_bytes": Input(int, default=DEFAULT_MAX_CAPTURE, help="keep at most the last N bytes of each captured stream"),
        "success": Input(dict, help="{exit_codes, require_files: [glob], forbid_files: [glob]} checked after the command exits"),
        "idempotency": Input(dict, help="{marker: PATH}: SKIPPED while the marker exists; written on success"),
        "atomic_dir": Input(dict, help="{work: PATH, publish: PATH}: work is renamed to publish only on success"),
        "retry_on_exit_codes": Input((list, int), help="only these exit codes may be retried by the step's retry policy"),
        "retry_on_timeout": Input(bool, default=True, help="whether the retry policy may repeat a timed-out command"),
        "log": Input(dict, help="{stdout, stderr}: log (default), capture, file:PATH, inherit or discard"),
    }
    outputs = (
        "exit_code",
        "stdout",
        "stderr",
        "stdout_truncated",
        "stderr_truncated",
        "duration_ms",
        "skipped",
        "reason",
        "marker",
        "published",
    )

    # -- inputs -------------------------------------------------------------------------

    def _argv(self, inputs) -> list[str]:
        command, args, shell = inputs["command"], inputs.get("args"), inputs["shell"]
        extra = _text_list(args, "args") if args is not None else []
        if shell:
            text = command if isinstance(command, str) else shlex.join(_text_list(command, "command"))
            if not text.strip():
                raise StepInputError("step type 'external.process': input 'command' is empty")
            if extra:
                text += " " + shlex.join(extra)
            return [_SHELL, "-c", text]
        try:
            argv = _text_list(command, "command") + extra
        except ValueError as exc:
            raise StepInputError(f"step type 'external.process': input 'command' cannot be split: {exc}") from None
        if not argv or not argv[0]:
            raise StepInputError("step type 'external.process': input 'command' is empty")
        return argv

    def _env(self, ctx, inputs) -> dict[str, str]:
        env = {str(k): str(v) for k, v in ctx.env.items()} if inputs["inherit_env"] else {}
        for key, value in (inputs.get("env") or {}).items():
            if value is None:
                env.pop(str(key), None)
            else:
                env[str(key)] = _env_value(value)
        env.update(
            AETHERFLOW_RUN_ID=str(ctx.run_id),
            AETHERFLOW_FLOW_ID=str(ctx.flow_id),
            AETHERFLOW_JOB_ID=str(ctx.job_id),
            AETHERFLOW_STEP_ID=str(ctx.step_id),
            AETHERFLOW_WORKSPACE=str(ctx.workspace),
        )
        return env

    def _cwd(self, ctx, inputs) -> Path:
        if inputs.get("cwd"):
            cwd = ctx.path(inputs["cwd"], what="cwd")
            if not cwd.is_dir():
                raise StepError(f"working directory {str(cwd)!r} does not exist or is not a directory")
            return cwd
        Path(ctx.workspace).mkdir(parents=True, exist_ok=True)
        return Path(ctx.workspace)

    # -- run ----------------------------------------------------------------------------

    def run(self, ctx, inputs):
        argv = self._argv(inputs)
        contract = read_contract(ctx, inputs)
        codes = contract.exit_codes
        timeout = inputs.get("timeout_seconds")
        if timeout is not None and timeout <= 0:
            raise StepInputError("step type 'external.process': input 'timeout_seconds' must be positive")
        grace = max(float(inputs["kill_grace_seconds"]), 0.0)
        limit = inputs["max_capture_bytes"]
        if limit < 0:
            raise StepInputError("step type 'external.process': input 'max_capture_bytes' must not be negative")
        skipped = marker_skip(ctx, contract)
        if skipped is not None:
            return skipped
        cwd = self._cwd(ctx, inputs)
        env = self._env(ctx, inputs)
        env.update(child_env(contract))
        prepare_work_dir(ctx, contract)
        prepare_log_files(contract)

        shown = ctx.scrubber.scrub(shlex.join(argv))
        program = ctx.scrubber.scrub(argv[2] if inputs["shell"] else argv[0])

        started = time.monotonic()
        streams = {"stdout": contract.stdout, "stderr": contract.stderr}
        tails = {name: _Tail(limit if s.mode == "capture" else (_ERROR_TAIL if name == "stderr" else 0)) for name, s in streams.items()}
        readers: list[threading.Thread] = []
        stopped = None  # why the step stopped the process, if it did
        # Nothing is raised asynchronously inside a step: cancellation (Ctrl-C, the step's
        # timeout_seconds) comes through ctx.cancel. The stop is registered as soon as
        # Popen returns (a token cancelled meanwhile calls it at once), and everything
        # from there on is under the try whose finally stops the whole group.
        proc: subprocess.Popen | None = None
        guard: _GroupGuard | None = None
        group_gone = False
        stack = ExitStack()
        try:
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=_child_stream(contract.stdout),
                    stderr=_child_stream(contract.stderr),
                    start_new_session=True,
                    preexec_fn=_die_with_runner(),
                )
            except FileNotFoundError:
                raise StepError(f"command not found: {program!r} (looked up in the PATH of the step's environment)") from None
            except PermissionError:
                raise StepError(f"command {program!r} is not executable (permission denied)") from None
            except OSError as exc:
                raise StepError(f"command {program!r} could not be started: {ctx.scrubber.scrub(str(exc))}") from None
            stack.enter_context(ctx.cancel.on_cancel(partial(signal_group, proc.pid, signal.SIGTERM)))
            guard = _GroupGuard(proc.pid)
            ctx.record_process_group(proc.pid)
            ctx.logger.info("process.started", extra={"command": shown, "pid": proc.pid, "cwd": str(cwd)})
            for name, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr)):
                if pipe is None:
                    continue
                if streams[name].mode == "capture":
                    target, args = _pump_captured, (pipe, tails[name])
                elif streams[name].mode == "file":
                    target, args = _pump_to_file, (pipe, tails[name], streams[name].path, ctx.scrubber)
                else:
                    def emit(line: str, _stream=name) -> None:
                        ctx.logger.info("process.output", extra={"stream": _stream, "line": line})

                    target, args = _pump_streamed, (pipe, tails[name], emit, ctx.scrubber)
                thread = threading.Thread(target=target, args=args, name=f"process-{proc.pid}-{name}", daemon=True)
                readers.append(thread)
                thread.start()
            stopped = self._wait(ctx, proc.pid, started, timeout)
            if stopped is not None:
                how = stop_process_group(proc.pid, grace)
                ctx.logger.warning("process.stopped", extra={"pid": proc.pid, "reason": stopped, "how": how})
            elif group_alive(proc.pid):
                # The command exited but left processes in its group (e.g. `cmd &`).
                how = stop_process_group(proc.pid, grace)
                ctx.logger.warning("process.leftovers_stopped", extra={"pid": proc.pid, "how": how})
            group_gone = True  # checked once: each look at the group reads all of /proc
        finally:
            stack.close()
            if proc is not None:
                pgid = proc.pid  # start_new_session: the child leads its own process group
                if not group_gone and (not _exited(pgid) or group_alive(pgid)):
                    # Interrupted: never leave the tree behind.
                    how = stop_process_group(pgid, grace)
                    ctx.logger.warning("process.stopped", extra={"pid": pgid, "reason": "interrupted", "how": how})
                if guard is not None:
                    guard.release()
                ctx.record_process_group(None)  # before the group's id can be reused
                proc.wait()
            for thread in readers:
                if thread.ident is not None:
                    thread.join(timeout=5)
        duration_ms = int((time.monotonic() - started) * 1000)
        exit_code = proc.returncode
        ctx.logger.info("process.exited", extra={"pid": proc.pid, "exit_code": exit_code, "duration_ms": duration_ms})

        if stopped == "cancelled":
            raise Interrupted(f"command {program!r} stopped: {ctx.cancel.reason or 'cancelled'}")
        stderr_tail = ctx.scrubber.scrub_cut(tails["stderr"].captured(ctx.scrubber), _TAIL_SHOWN, keep="tail").strip()
        if stopped == "timeout":
            raise timeout_failure(
                f"command {program!r} timed out after {timeout:g}s; its process group was stopped"
                + (f"; stderr ends with: {stderr_tail}" if stderr_tail else ""),
                contract,
            )
        if exit_code not in codes:
            reason = f"was killed by signal {_signal_name(-exit_code)}" if exit_code < 0 else f"exited with code {exit_code}"
            hint = " (the shell could not find the command)" if inputs["shell"] and exit_code == 127 else ""
            message = f"command {program!r} {reason}{hint}; allowed exit codes: {codes}"
            if not contract.stderr.piped:
                message += f"; stderr was not read (log.stderr: {contract.stderr.mode})"
            else:
                message += f"; stderr ends with: {stderr_tail}" if stderr_tail else "; stderr was empty"
            raise exit_failure(message, contract, exit_code)
        check_files(ctx, contract)
        publish(ctx, contract)
        write_marker(ctx, contract, exit_code)

        outputs: dict[str, Any] = {"exit_code": exit_code, "duration_ms": duration_ms, **contract_outputs(contract)}
        for name, tail in tails.items():
            if streams[name].mode == "capture":
                # Unscrubbed: the outputs are data for later steps; the runner scrubs them where they leave.
                outputs[name] = tail.captured(ctx.scrubber)
                outputs[f"{name}_truncated"] = tail.truncated
                if tail.truncated:
                    ctx.logger.warning(
                        "process.output_truncated", extra={"stream": name, "bytes": tail.total, "kept_bytes": limit}
                    )
            else:
                outputs.update({name: None, f"{name}_truncated": False})
        return StepResult(outputs=outputs)

    @staticmethod
    def _wait(ctx, pid: int, started: float, timeout: float | None) -> str | None:
        """Wait for the process to exit; ``"timeout"`` or ``"cancelled"`` when it must be stopped.

        Where the system has process file descriptors, the wait wakes when the process
        exits; elsewhere it polls. Either way it looks at the cancel token every 50 ms
        (cancelling also signals the group, which usually ends the wait at once)."""
        pidfd = _pidfd(pid)
        delay = 0.001
        try:
            while not _exited(pid):
                if ctx.cancelled:
                    return "cancelled"
                remaining = None if timeout is None else started + timeout - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return "timeout"
                if pidfd is not None:
                    select.select([pidfd], [], [], 0.05 if remaining is None else min(0.05, remaining))
                else:
                    ctx.cancel.wait(delay if remaining is None else min(delay, remaining))
                    delay = min(delay * 2, 0.05)
        finally:
            if pidfd is not None:
                os.close(pidfd)
        # Cancelling signals the group: a command that died of it was stopped, not done.
        return "cancelled" if ctx.cancelled else None
