"""Shared helpers for tests: running the CLI and building step contexts."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aetherflow.core.context import StepContext
from aetherflow.core.redaction import Scrubber

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def base_env(tmp_path: Path | None = None, **extra: str) -> dict[str, str]:
    """An environment for a CLI run, isolated from the developer's AETHERFLOW_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AETHERFLOW_")}
    if tmp_path is not None:
        env["AETHERFLOW_WORK_ROOT"] = str(tmp_path / "work")
        env["AETHERFLOW_STATE_ROOT"] = str(tmp_path / "state")
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120, input: str | None = None) -> CliResult:
    """Run ``aetherflow ARGS`` in a subprocess, as a user would."""
    proc = subprocess.run(
        [sys.executable, "-m", "aetherflow.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env if env is not None else base_env(),
        cwd=cwd,
        timeout=timeout,
        input=input,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def check_jsonschema(schema: Path, *files: Path) -> subprocess.CompletedProcess:
    """Run the ``check-jsonschema`` tool (the test extra installs it) with JSON output."""
    tool = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run(
        [str(tool), "--output-format", "json", "--schemafile", str(schema), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def write_flow(path: Path, text: str) -> Path:
    """Write a flow file from an indented triple-quoted string."""
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def run_step(type_name: str, ctx: StepContext, **given: Any):
    """Run a registered step directly with ``given`` inputs (checked like the runner does)."""
    from aetherflow.core.steps.registry import get_step

    cls = get_step(type_name)
    return cls().run(ctx, cls.bind_inputs(given))


def program(name: str, package: str) -> str:
    """The path of an installed program the tests drive (7z, soffice, ...); a missing one
    skips the test, or fails it when AETHERFLOW_REQUIRE_SERVICES=1."""
    from tests.services import ServiceUnavailable, find_binary, unavailable

    try:
        return find_binary(name, package)
    except ServiceUnavailable as exc:
        unavailable(str(exc), exc.install)
        raise


def step_context(
    tmp_path: Path,
    connectors: dict[str, Any] | None = None,
    *,
    env: dict[str, str] | None = None,
    scrubber: Scrubber | None = None,
) -> StepContext:
    """A context for calling a step's ``run`` directly in a unit test."""
    workspace = tmp_path / "workspace"
    workspace.mkdir(parents=True, exist_ok=True)
    return StepContext(
        env=env or {},
        connectors=connectors or {},
        flow_id="test_flow",
        run_id="test-run",
        job_id="test_job",
        step_id="test_step",
        step_type="test",
        workspace=workspace,
        logger=logging.LoggerAdapter(logging.getLogger("aetherflow.test"), {}),
        scrubber=Scrubber() if scrubber is None else scrubber,
    )


def driver_fault(action, connector, *secrets: str):
    """The ConnectorError ``action(connector)`` raises, checked to show none of
    ``secrets`` (as written, URL-encoded or JSON-escaped) in its message, hint or
    description. The connector is named ``res`` and closed afterwards."""
    import pytest

    from aetherflow.core.errors import ConnectorError

    connector.name = "res"
    try:
        with pytest.raises(ConnectorError) as info:
            action(connector)
    finally:
        connector.close()
    assert_scrubbed(info.value, *secrets)
    return info.value


def assert_scrubbed(error, *secrets: str) -> None:
    """``error`` (a ConnectorError) shows none of ``secrets`` anywhere."""
    from urllib.parse import quote

    shown = f"{error}\n{error.describe()}\n{error.hint or ''}\n{error.detail}"
    for secret in secrets:
        for form in (secret, quote(secret, safe=""), json.dumps(secret)[1:-1]):
            assert form not in shown, f"{form!r} leaked in: {shown}"


@contextlib.contextmanager
def connector_factory(cls, name: str) -> Iterator[Callable[..., Any]]:
    """``make(config=None, **options)`` building ``cls`` connectors named ``name``; every
    one built is closed when the block ends (a fixture yields ``make``)."""
    built = []

    def make(config: dict | None = None, **options):
        connector = cls(config=dict(config or {}), options=options)
        connector.name = name
        built.append(connector)
        return connector

    try:
        yield make
    finally:
        for connector in built:
            connector.close()


def sha256_of(path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
