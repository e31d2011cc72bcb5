"""Structured logging: one event per line, as text or JSON, always scrubbed.

Events are ordinary ``logging`` records whose message is the event name
(``step.finished``) and whose ``extra`` carries the fields. The handler installed by
:func:`configure_logging` passes every line through the invocation's scrubber.

While a step runs, :func:`log_context` names its job and step for its thread: a line
logged there without them (by a connector, a library) gets them added, so with jobs
running in parallel every line says which job it belongs to.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from .redaction import Scrubber
from .times import iso_utc

LOGGER_NAME = "aetherflow"
FIELDS = ("flow_id", "run_id", "job_id", "step_id", "step_type", "status", "duration_ms")
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def event_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


_context = threading.local()


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Fields added to every record logged by this thread while the block runs (unless
    the record has them already)."""
    previous = getattr(_context, "fields", {})
    _context.fields = {**previous, **fields}
    try:
        yield
    finally:
        _context.fields = previous


class ContextFilter(logging.Filter):
    """Adds the :func:`log_context` fields of the logging thread to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in getattr(_context, "fields", {}).items():
            if key not in record.__dict__:
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {"ts": iso_utc(record.created), "level": record.levelname, "event": record.getMessage()}
        fields = event_fields(record)
        for key in FIELDS:
            data[key] = fields.pop(key, None)
        data.update(fields)
        if record.exc_info and record.exc_info[1] is not None:
            data["exception"] = f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        return json.dumps(data, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = event_fields(record)
        parts = [iso_utc(record.created), f"{record.levelname:<7}", record.getMessage()]
        for key in ("job_id", "step_id", "step_type", "status", "duration_ms"):
            value = fields.pop(key, None)
            if value is not None:
                parts.append(f"{key.removesuffix('_id')}={value}")
        for key in ("flow_id", "run_id"):
            fields.pop(key, None)
        for key, value in fields.items():
            if value is None:
                continue
            text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
            if isinstance(value, str) and (" " in text or not text):
                text = json.dumps(text, ensure_ascii=False)
            parts.append(f"{key}={text}")
        if record.exc_info and record.exc_info[1] is not None:
            parts.append(f"error={json.dumps(str(record.exc_info[1]), ensure_ascii=False)}")
        return " ".join(parts)


class ScrubbingHandler(logging.StreamHandler):
    """A stream handler that scrubs every formatted line before writing it."""

    def __init__(self, stream: IO[str], scrubber: Scrubber):
        super().__init__(stream)
        self.scrubber = scrubber

    def format(self, record: logging.LogRecord) -> str:
        return self.scrubber.scrub(super().format(record))


def configure_logging(
    scrubber: Scrubber,
    *,
    fmt: str = "text",
    level: str = "INFO",
    stream: IO[str] | None = None,
    handler: logging.Handler | None = None,
) -> logging.Handler:
    """Install one handler on the ``aetherflow`` logger. A caller-supplied ``handler``
    (the CLI's terminal view) must scrub what it writes itself."""
    logger = logging.getLogger(LOGGER_NAME)
    for old in list(logger.handlers):
        logger.removeHandler(old)
    if handler is None:
        handler = ScrubbingHandler(stream or sys.stderr, scrubber)
        handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    if not any(isinstance(f, ContextFilter) for f in handler.filters):
        handler.addFilter(ContextFilter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return handler


class ContextLogger(logging.LoggerAdapter):
    """A logger adapter that merges its context fields with each call's ``extra``."""

    def process(self, msg, kwargs):
        kwargs["extra"] = {**self.extra, **(kwargs.get("extra") or {})}
        return msg, kwargs

    def bind(self, **fields: Any) -> ContextLogger:
        return ContextLogger(self.logger, {**self.extra, **fields})


def get_logger(**fields: Any) -> ContextLogger:
    return ContextLogger(logging.getLogger(LOGGER_NAME), fields)
