"""The contract of ``external.process``: what it promises beyond "the command ran".

Wrappers around Spark jobs, dbt runs and vendor tools need more than an exit code:

- ``success: {exit_codes, require_files, forbid_files}`` -- checked after the command
  exits; the step fails when a required glob matches nothing or a forbidden one matches
  something;
- ``idempotency: {marker}`` -- a file written when the step succeeds; while it exists
  the step is SKIPPED (with the reason) instead of running again;
- ``atomic_dir: {work, publish}`` -- the command writes into ``work`` (emptied before
  each attempt), renamed to ``publish`` only when every success check passed;
- ``retry_on_exit_codes`` / ``retry_on_timeout`` -- which failures the step's
  ``retry:`` policy may repeat (a failure outside them is final);
- ``log: {stdout, stderr}`` -- where each stream goes: ``log`` (lines in the run's
  log), ``capture`` (into outputs), ``file:PATH``, ``inherit`` (the runner's own
  stream) or ``discard``.

The step (:mod:`.process`) calls these functions at fixed points: :func:`read_contract`
before anything runs, :func:`marker_skip`, :func:`prepare_work_dir` and
:func:`prepare_log_files` before the command starts, :func:`exit_failure` / :func:`timeout_failure` and then
:func:`check_files`, :func:`publish` and :func:`write_marker` after it exits.
"""

from __future__ import annotations

import glob
import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...atomic import atomic_path
from ...errors import StepError, StepInputError, suggest
from ..base import STEP_SKIPPED, StepResult

STREAM_MODES = ("log", "capture", "file", "inherit", "discard")
#: Left in a work directory this step created, so a later attempt may empty it.
WORK_SENTINEL = ".aetherflow-work-dir"
_TYPE = "step type 'external.process'"


@dataclass(frozen=True)
class Stream:
    """Where one of the child's streams goes."""

    mode: str  # one of STREAM_MODES
    path: Path | None = None  # for mode "file"

    @property
    def piped(self) -> bool:
        """The step reads the stream (everything but ``inherit`` and ``discard``)."""
        return self.mode in ("log", "capture", "file")


@dataclass
class Contract:
    exit_codes: list[int]
    require_files: list[str] = field(default_factory=list)
    forbid_files: list[str] = field(default_factory=list)
    marker: Path | None = None
    work: Path | None = None
    publish: Path | None = None
    retry_on_exit_codes: list[int] | None = None
    retry_on_timeout: bool = True
    stdout: Stream = Stream("log")
    stderr: Stream = Stream("log")

    @property
    def captures(self) -> bool:
        return "capture" in (self.stdout.mode, self.stderr.mode)


# -- reading the inputs -----------------------------------------------------------------------


#: Keys of aetherflow-core 0.0.14's forms of these inputs, and what replaces them here.
_OLD_KEYS = {
    ("idempotency", "strategy"): "idempotency is {marker: PATH} here; an atomic output directory is the input atomic_dir: {work, publish}",
    ("idempotency", "marker_path"): "write idempotency: {marker: PATH}",
    ("idempotency", "temp_output_dir"): "write atomic_dir: {work: PATH, publish: PATH} (a separate input)",
    ("idempotency", "final_output_dir"): "write atomic_dir: {work: PATH, publish: PATH} (a separate input)",
    ("success", "marker_file"): "a marker is idempotency: {marker: PATH}; a file that must exist goes in success.require_files",
    ("success", "require_glob"): "success.require_files takes globs",
    ("log", "file_path"): "name the file per stream: log: {stdout: file:PATH, stderr: file:PATH}",
    ("log", "max_capture_kb"): "the bound of captured output is the input max_capture_bytes",
}


def _keys(value: Any, name: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StepInputError(f"{_TYPE}: input {name!r} must be a mapping with keys {', '.join(allowed)}")
    for key in value:
        if key not in allowed:
            old = _OLD_KEYS.get((name, str(key)))
            raise StepInputError(
                f"{_TYPE}: unknown key {key!r} in input {name!r}{'' if old else suggest(str(key), allowed)}; known: {', '.join(allowed)}",
                hint=old,
            )
    return value


def _codes(value: Any, name: str) -> list[int]:
    codes = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(codes, list) or not all(isinstance(c, int) and not isinstance(c, bool) for c in codes):
        raise StepInputError(f"{_TYPE}: input {name!r} must be an integer or a list of integers, got {value!r}")
    return codes


def _globs(value: Any, name: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
        raise StepInputError(f"{_TYPE}: input {name!r} must be a glob or a list of globs, got {value!r}")
    return items


def _stream(ctx, value: Any, name: str) -> Stream:
    if not isinstance(value, str):
        raise StepInputError(f"{_TYPE}: input {name!r} must be one of {', '.join(STREAM_MODES[:2])}, file:PATH, {', '.join(STREAM_MODES[3:])}")
    mode, _, target = value.partition(":")
    if mode == "file":
        if not target.strip():
            raise StepInputError(f"{_TYPE}: input {name!r} is 'file:' without a path (write file:logs/job.log)")
        return Stream("file", ctx.path(target.strip(), what=name))
    if value not in STREAM_MODES or value == "file":
        raise StepInputError(
            f"{_TYPE}: input {name!r} is {value!r}{suggest(value, STREAM_MODES)}; "
            "expected log, capture, file:PATH, inherit or discard"
        )
    return Stream(value)


def read_contract(ctx, inputs: dict[str, Any]) -> Contract:
    """The contract the inputs ask for, every value checked (bad ones: :class:`StepInputError`)."""
    success = _keys(inputs.get("success") or {}, "success", ("exit_codes", "require_files", "forbid_files"))
    if "exit_codes" in success and inputs.get("success_exit_codes") is not None:
        raise StepInputError(f"{_TYPE}: give the allowed exit codes once, as success.exit_codes or success_exit_codes")
    given = success.get("exit_codes", inputs.get("success_exit_codes"))
    contract = Contract(exit_codes=[0] if given is None else _codes(given, "success.exit_codes"))
    contract.require_files = _globs(success.get("require_files", []), "success.require_files")
    contract.forbid_files = _globs(success.get("forbid_files", []), "success.forbid_files")

    idempotency = _keys(inputs.get("idempotency") or {}, "idempotency", ("marker",))
    if idempotency.get("marker"):
        contract.marker = ctx.path(str(idempotency["marker"]), what="idempotency.marker")

    if inputs.get("atomic_dir") is not None:
        atomic = _keys(inputs["atomic_dir"], "atomic_dir", ("work", "publish"))
        if not atomic.get("publish"):
            raise StepInputError(f"{_TYPE}: input 'atomic_dir' needs 'publish' (the directory to rename the output to)")
        contract.publish = ctx.path(str(atomic["publish"]), what="atomic_dir.publish")
        work = atomic.get("work")
        contract.work = (
            ctx.path(str(work), what="atomic_dir.work") if work else contract.publish.with_name(f".{contract.publish.name}.work")
        )
        _check_dirs(contract.work, contract.publish)

    if inputs.get("retry_on_exit_codes") is not None:
        contract.retry_on_exit_codes = _codes(inputs["retry_on_exit_codes"], "retry_on_exit_codes")
        overlap = sorted(set(contract.retry_on_exit_codes) & set(contract.exit_codes))
        if overlap:
            raise StepInputError(f"{_TYPE}: exit codes {overlap} are both allowed (success) and retried (retry_on_exit_codes)")
    contract.retry_on_timeout = bool(inputs.get("retry_on_timeout", True))

    log = _keys(inputs.get("log") or {}, "log", ("stdout", "stderr"))
    if inputs.get("capture") and log:
        raise StepInputError(f"{_TYPE}: give either capture: true or log: {{stdout, stderr}}, not both")
    default = "capture" if inputs.get("capture") else "log"
    contract.stdout = _stream(ctx, log.get("stdout", default), "log.stdout")
    contract.stderr = _stream(ctx, log.get("stderr", default), "log.stderr")
    return contract


def _check_dirs(work: Path, publish: Path) -> None:
    a, b = os.path.realpath(work), os.path.realpath(publish)
    if a == b or a.startswith(b + os.sep) or b.startswith(a + os.sep):
        raise StepInputError(f"{_TYPE}: atomic_dir.work {str(work)!r} and atomic_dir.publish {str(publish)!r} must be separate directories")


# -- before the command ------------------------------------------------------------------------


def marker_skip(ctx, contract: Contract) -> StepResult | None:
    """SKIPPED when the idempotency marker exists (and the required files are still
    there); otherwise None and the command runs."""
    marker = contract.marker
    if marker is None or not marker.exists():
        return None
    problems = _file_problems(ctx, contract, before_publish=False)
    if problems:
        ctx.logger.warning("process.marker_ignored", extra={"marker": str(marker), "reason": "; ".join(problems)})
        return None
    reason = f"marker {str(marker)!r} exists" + _marker_origin(marker)
    ctx.logger.info("process.skipped", extra={"marker": str(marker), "reason": reason})
    return StepResult(
        STEP_SKIPPED,
        {"exit_code": None, "skipped": True, "reason": reason, "marker": str(marker), "published": _published(contract)},
    )


def _marker_origin(marker: Path) -> str:
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
        return f" (written by run {data['run_id']} at {data['finished_at']})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def prepare_work_dir(ctx, contract: Contract) -> None:
    """An empty ``atomic_dir.work`` for this attempt. A leftover of an earlier attempt is
    emptied; a directory this step did not create is never touched."""
    work = contract.work
    if work is None:
        return
    if work.exists():
        if (work / WORK_SENTINEL).exists():
            shutil.rmtree(work)
        elif work.is_dir() and not any(work.iterdir()):
            work.rmdir()
        else:
            raise StepError(
                f"atomic_dir.work {str(work)!r} already exists and was not created by this step; "
                "remove it or choose another work directory",
                retryable=False,
            )
    work.mkdir(parents=True)
    (work / WORK_SENTINEL).write_text("a work directory of external.process, emptied by its next attempt\n", encoding="utf-8")
    if contract.publish is not None:
        contract.publish.parent.mkdir(parents=True, exist_ok=True)
        if os.stat(work.parent).st_dev != os.stat(contract.publish.parent).st_dev:
            raise StepError(
                f"atomic_dir.work {str(work)!r} and atomic_dir.publish {str(contract.publish)!r} are on different "
                "file systems, so publishing cannot be an atomic rename; put them side by side",
                retryable=False,
            )


def prepare_log_files(contract: Contract) -> None:
    """Create the files the streams go to, empty, so a bad path fails before the command
    starts (the readers then append to them line by line)."""
    for path in {s.path for s in (contract.stdout, contract.stderr) if s.mode == "file"}:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
        except OSError as exc:
            raise StepError(f"cannot write log file {str(path)!r}: {exc.strerror}", retryable=False) from None


def child_env(contract: Contract) -> dict[str, str]:
    """Variables the contract adds to the child's environment."""
    return {"AETHERFLOW_OUTPUT_DIR": str(contract.work)} if contract.work is not None else {}


# -- after the command -------------------------------------------------------------------------


def exit_failure(message: str, contract: Contract, exit_code: int) -> StepError:
    """The failure for an exit code outside ``success.exit_codes``."""
    codes = contract.retry_on_exit_codes
    if codes is None or exit_code in codes:
        return StepError(message)
    return StepError(f"{message}; not retried: exit code {exit_code} is not in retry_on_exit_codes {codes}", retryable=False)


def timeout_failure(message: str, contract: Contract) -> StepError:
    if contract.retry_on_timeout:
        return StepError(message)
    return StepError(f"{message}; not retried: retry_on_timeout is false", retryable=False)


def check_files(ctx, contract: Contract) -> None:
    """Fail when a required glob matches nothing or a forbidden one matches something.

    Checked before publishing: a pattern under ``atomic_dir.publish`` is looked up in
    ``atomic_dir.work``, where the files are at that moment."""
    problems = _file_problems(ctx, contract, before_publish=True)
    if problems:
        message = "the command exited successfully but its success checks failed: " + "; ".join(problems)
        if contract.work is not None:
            message += f" (nothing was published; the output stays in {str(contract.work)!r})"
        raise StepError(message, retryable=contract.retry_on_exit_codes is None)


def _file_problems(ctx, contract: Contract, *, before_publish: bool) -> list[str]:
    problems = []
    for pattern in contract.require_files:
        if not _matches(ctx, contract, pattern, before_publish):
            problems.append(f"required {pattern!r} matches no file")
    for pattern in contract.forbid_files:
        found = _matches(ctx, contract, pattern, before_publish)
        if found:
            shown = ", ".join(repr(p) for p in found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
            problems.append(f"forbidden {pattern!r} matches {shown}")
    return problems


def _matches(ctx, contract: Contract, pattern: str, before_publish: bool) -> list[str]:
    path = str(ctx.path(pattern, what="success file pattern"))
    if before_publish and contract.publish is not None and contract.work is not None:
        publish = str(contract.publish)
        if path == publish or path.startswith(publish + os.sep):
            path = str(contract.work) + path[len(publish) :]
    if glob.has_magic(path):
        return sorted(glob.glob(path, recursive=True))
    return [path] if os.path.lexists(path) else []


def publish(ctx, contract: Contract) -> None:
    """Rename ``atomic_dir.work`` to ``atomic_dir.publish``. An existing publish directory
    is moved aside first and removed once the new one is in place (between the two
    renames the path is briefly absent; readers never see a half-written directory)."""
    work, target = contract.work, contract.publish
    if work is None or target is None:
        return
    (work / WORK_SENTINEL).unlink(missing_ok=True)
    old = None
    if os.path.lexists(target):
        old = target.with_name(f".{target.name}.old-{secrets.token_hex(4)}")
        os.rename(target, old)
    try:
        os.rename(work, target)
    except OSError as exc:
        if old is not None:
            os.rename(old, target)
        raise StepError(f"cannot publish {str(work)!r} as {str(target)!r}: {exc.strerror}", retryable=False) from None
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    ctx.logger.info("process.published", extra={"work": str(work), "publish": str(target)})


def write_marker(ctx, contract: Contract, exit_code: int) -> None:
    """Write the idempotency marker (atomically): who finished the step, and when."""
    if contract.marker is None:
        return
    record = {
        "flow_id": ctx.flow_id,
        "run_id": ctx.run_id,
        "job_id": ctx.job_id,
        "step_id": ctx.step_id,
        "exit_code": exit_code,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with atomic_path(contract.marker) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    ctx.logger.info("process.marker_written", extra={"marker": str(contract.marker)})


def contract_outputs(contract: Contract) -> dict[str, Any]:
    """Outputs every run of the step carries (SKIPPED or not), so templates can use them."""
    return {
        "skipped": False,
        "reason": None,
        "marker": str(contract.marker) if contract.marker is not None else None,
        "published": _published(contract),
    }


def _published(contract: Contract) -> str | None:
    return str(contract.publish) if contract.publish is not None else None
