"""OpenTelemetry: each run as one trace, and its metrics, sent over OTLP/HTTP.

On with ``AETHERFLOW_OTEL=1``, or when the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set; ``AETHERFLOW_OTEL=0`` or
``OTEL_SDK_DISABLED=true`` turns it off. Every setting is read from the run's
environment snapshot, so ``--env-file`` works for it as for everything else.

The trace is built from the run's records when the run is over: a span for the run, one
per job under it and one per step under its job, with their real start and end times,
statuses, attempts, and the rows and bytes a step reports. Metrics: steps by status, a
step duration histogram, bytes transferred. Everything goes out in one request per
signal through the SDK's OTLP/HTTP exporters, with a tracer and meter provider of the
run's own (the process's global providers are never touched). Every string attribute
passes the run's scrubber. The SDK is imported only when telemetry is on (the optional
group ``aetherflow[otel]``), and a failed export is a warning, never a failed run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .errors import MissingDependencyError
from .redaction import Scrubber
from .status import DONE_OK, Status
from .values import parse_bool

INSTALL_HINT = "pip install 'aetherflow[otel]'"
DEFAULT_ENDPOINT = "http://localhost:4318"
SCOPE = "aetherflow"

log = logging.getLogger("aetherflow.telemetry")


@dataclass(frozen=True)
class TelemetrySettings:
    traces_endpoint: str
    metrics_endpoint: str
    headers: dict[str, str] = field(default_factory=dict)
    timeout_seconds: float = 10.0
    certificate_file: str | None = None
    service_name: str = "aetherflow"
    resource_attributes: dict[str, str] = field(default_factory=dict)
    #: asked for by name (AETHERFLOW_OTEL): a missing SDK is then an error, not a warning
    explicit: bool = False


def telemetry_settings(env: Mapping[str, str]) -> TelemetrySettings | None:
    """The exporter settings when telemetry is on for a run with this environment."""

    def get(name: str) -> str | None:
        value = env.get(name)
        return value.strip() if value and value.strip() else None

    switch = parse_bool(get("AETHERFLOW_OTEL") or "")
    if switch is False or parse_bool(get("OTEL_SDK_DISABLED") or ""):
        return None
    base, traces, metrics = get("OTEL_EXPORTER_OTLP_ENDPOINT"), get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
    explicit = switch is True
    if not explicit and not (base or traces):
        return None
    base = (base or DEFAULT_ENDPOINT).rstrip("/")
    timeout = get("OTEL_EXPORTER_OTLP_TIMEOUT")
    return TelemetrySettings(
        traces_endpoint=traces or f"{base}/v1/traces",
        metrics_endpoint=metrics or f"{base}/v1/metrics",
        headers=_pairs(get("OTEL_EXPORTER_OTLP_HEADERS")),
        # The variable is in milliseconds.
        timeout_seconds=float(timeout) / 1000 if timeout and timeout.replace(".", "", 1).isdigit() else 10.0,
        certificate_file=get("OTEL_EXPORTER_OTLP_CERTIFICATE"),
        service_name=get("OTEL_SERVICE_NAME") or "aetherflow",
        resource_attributes=_pairs(get("OTEL_RESOURCE_ATTRIBUTES")),
        explicit=explicit,
    )


def _pairs(text: str | None) -> dict[str, str]:
    """``k=v,k2=v2`` (values URL-encoded), as the OTEL_* variables write mappings."""
    pairs = {}
    for item in (text or "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            pairs[key.strip()] = unquote(value.strip())
    return pairs


def sdk_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http"))


def check_available(settings: TelemetrySettings | None) -> TelemetrySettings | None:
    """``settings`` when the SDK can be used. Asked for by name and missing, it is an error
    before the run starts; turned on by the standard variables only, a warning."""
    if settings is None or sdk_available():
        return settings
    message = "OpenTelemetry is on for this run, but its SDK is not installed"
    if settings.explicit:
        raise MissingDependencyError(message + " (AETHERFLOW_OTEL)", hint=f"install it: {INSTALL_HINT}, or unset AETHERFLOW_OTEL")
    log.warning("telemetry.unavailable", extra={"detail": message + " (OTEL_EXPORTER_OTLP_ENDPOINT)", "hint": INSTALL_HINT})
    return None


def export_run(result, settings: TelemetrySettings, scrubber: Scrubber, *, profile: str | None = None) -> bool:
    """Send the finished run's trace and metrics; True when both were accepted."""
    scrubber.add(*settings.headers.values())
    try:
        spans, metrics = _record(result, settings, scrubber, profile)
        return _send(spans, metrics, settings)
    except Exception as exc:  # noqa: BLE001 - telemetry must never fail a run that is over
        log.warning("telemetry.failed", extra={"error": scrubber.scrub(f"{type(exc).__name__}: {exc}")})
        return False


# -- building ---------------------------------------------------------------------------


def _ns(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1_000_000_000)


def _amounts(outputs: Any) -> dict[str, int]:
    """The rows and bytes a step reports in its outputs (``rows``/``row_count``, ``bytes``)."""
    found = {}
    if isinstance(outputs, Mapping):
        for key, name in (("rows", "rows"), ("row_count", "rows"), ("bytes", "bytes")):
            value = outputs.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and name not in found:
                found[name] = value
    return found


def _record(result, settings: TelemetrySettings, scrubber: Scrubber, profile: str | None):
    from opentelemetry import trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Status as SpanStatus
    from opentelemetry.trace import StatusCode

    from . import __version__

    def attrs(values: dict[str, Any]) -> dict[str, Any]:
        return {k: scrubber.scrub(v) if isinstance(v, str) else v for k, v in values.items() if v is not None}

    resource = Resource.create(
        attrs({**settings.resource_attributes, "service.name": settings.service_name, "service.version": __version__})
    )
    collected = InMemorySpanExporter()
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(collected))
    tracer = tracer_provider.get_tracer(SCOPE, __version__)
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = meter_provider.get_meter(SCOPE, __version__)
    steps_counter = meter.create_counter("aetherflow.steps", unit="{step}", description="steps finished, by status and type")
    durations = meter.create_histogram("aetherflow.step.duration", unit="ms", description="time a step took, retries included")
    bytes_counter = meter.create_counter("aetherflow.bytes", unit="By", description="bytes a step wrote or transferred")

    def status_of(status: str, error: str | None) -> SpanStatus:
        if status == Status.FAILED:
            return SpanStatus(StatusCode.ERROR, scrubber.scrub(error or "failed"))
        return SpanStatus(StatusCode.OK) if status in DONE_OK else SpanStatus(StatusCode.UNSET)

    end = result.started_at + result.duration_ms / 1000 if result.started_at is not None else None
    run_span = tracer.start_span(
        f"run {result.flow_id}",
        start_time=_ns(result.started_at),
        attributes=attrs({
            "aetherflow.flow.id": result.flow_id,
            "aetherflow.run.id": result.run_id,
            "aetherflow.run.status": str(result.status),
            "aetherflow.run.resumed": result.resumed,
            "aetherflow.run.fingerprint": result.fingerprint or None,
            "aetherflow.profile": profile,
        }),
    )
    run_context = trace.set_span_in_context(run_span)
    for job in result.jobs:
        job_start = job.started_at if job.started_at is not None else result.started_at
        job_span = tracer.start_span(
            f"job {job.id}",
            context=run_context,
            start_time=_ns(job_start),
            attributes=attrs({"aetherflow.job.id": job.id, "aetherflow.job.status": str(job.status), "aetherflow.job.reason": job.reason}),
        )
        job_context = trace.set_span_in_context(job_span)
        for step in job.steps:
            step_start = step.started_at if step.started_at is not None else job_start
            step_end = step.ended_at if step.ended_at is not None else step_start
            amounts = _amounts(step.outputs)
            span = tracer.start_span(
                f"step {step.id}",
                context=job_context,
                start_time=_ns(step_start),
                attributes=attrs({
                    "aetherflow.job.id": job.id,
                    "aetherflow.step.id": step.id,
                    "aetherflow.step.type": step.type,
                    "aetherflow.step.status": str(step.status),
                    "aetherflow.step.attempts": step.attempts,
                    "aetherflow.step.resumed": step.resumed or None,
                    "aetherflow.step.rows": amounts.get("rows"),
                    "aetherflow.step.bytes": amounts.get("bytes"),
                }),
            )
            span.set_status(status_of(str(step.status), step.error))
            span.end(end_time=_ns(step_end))
            labels = {"aetherflow.flow.id": result.flow_id, "aetherflow.step.type": step.type, "aetherflow.step.status": str(step.status)}
            steps_counter.add(1, labels)
            if step.started_at is not None and not step.resumed:
                durations.record(step.duration_ms, labels)
            if amounts.get("bytes"):
                bytes_counter.add(amounts["bytes"], {"aetherflow.flow.id": result.flow_id, "aetherflow.step.type": step.type})
        job_span.set_status(status_of(str(job.status), job.reason))
        job_span.end(end_time=_ns(job.ended_at if job.ended_at is not None else job_start))
    run_span.set_status(status_of(str(result.status), None))
    run_span.end(end_time=_ns(end))
    metrics = reader.get_metrics_data()
    spans = collected.get_finished_spans()
    tracer_provider.shutdown()
    meter_provider.shutdown()
    return spans, metrics


def _send(spans, metrics, settings: TelemetrySettings) -> bool:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics.export import MetricExportResult
    from opentelemetry.sdk.trace.export import SpanExportResult

    common = {"headers": settings.headers, "timeout": settings.timeout_seconds, "certificate_file": settings.certificate_file}
    span_exporter = OTLPSpanExporter(endpoint=settings.traces_endpoint, **common)
    metric_exporter = OTLPMetricExporter(endpoint=settings.metrics_endpoint, **common)
    try:
        traces_ok = span_exporter.export(spans) == SpanExportResult.SUCCESS
        metrics_ok = metrics is None or metric_exporter.export(metrics) == MetricExportResult.SUCCESS
    finally:
        span_exporter.shutdown()
        metric_exporter.shutdown()
    if not (traces_ok and metrics_ok):
        failed = ", ".join(name for name, ok in (("traces", traces_ok), ("metrics", metrics_ok)) if not ok)
        log.warning("telemetry.export_failed", extra={"detail": f"the OTLP endpoint did not accept the run's {failed}", "endpoint": settings.traces_endpoint})
    return traces_ok and metrics_ok
