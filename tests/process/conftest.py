"""Helpers for calling ``external.process`` directly and seeing what it logged."""

from __future__ import annotations

import logging

import pytest

from aetherflow.core.logs import ContextLogger
from aetherflow.core.redaction import Scrubber
from aetherflow.core.steps.builtin.process import ExternalProcess
from tests.helpers import step_context

SECRET = "S3cr3t-Pa55-xyz"


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)

    def events(self, name: str) -> list[dict]:
        return [r.__dict__ for r in self.records if r.getMessage() == name]


@pytest.fixture
def logs():
    """The records the step logs (through a ContextLogger, as under the runner)."""
    logger = logging.getLogger("aetherflow.test.process")
    handler = _Records()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield handler
    logger.removeHandler(handler)


@pytest.fixture
def make_ctx(tmp_path, logs):
    def make(env=None, secrets=(SECRET,)):
        ctx = step_context(tmp_path, env=env if env is not None else {"PATH": "/usr/bin:/bin"}, scrubber=Scrubber(secrets))
        ctx.logger = ContextLogger(logging.getLogger("aetherflow.test.process"), {})
        return ctx

    return make


@pytest.fixture
def run_process(make_ctx):
    """Run the step with ``inputs``; returns ``(outputs, ctx)``."""

    def run(ctx=None, **inputs):
        ctx = ctx or make_ctx()
        result = ExternalProcess().run(ctx, ExternalProcess.bind_inputs(inputs))
        return result.outputs

    return run
