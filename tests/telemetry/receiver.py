"""A small OTLP/HTTP receiver: what a collector would be given, decoded with opentelemetry-proto."""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    traces: list[Any] = field(default_factory=list)  # ExportTraceServiceRequest messages
    metrics: list[Any] = field(default_factory=list)  # ExportMetricsServiceRequest messages
    paths: list[str] = field(default_factory=list)

    def spans(self) -> list[Any]:
        return [span for request in self.traces for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]

    def resources(self) -> list[Any]:
        return [rs.resource for request in self.traces for rs in request.resource_spans]

    def metric_points(self) -> dict[str, list[Any]]:
        """Metric name -> its data points (sum, histogram or gauge)."""
        found: dict[str, list[Any]] = {}
        for request in self.metrics:
            for rm in request.resource_metrics:
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        kind = metric.WhichOneof("data")
                        found.setdefault(metric.name, []).extend(getattr(metric, kind).data_points)
        return found


def attributes(item: Any) -> dict[str, Any]:
    """A span's (or resource's, or data point's) attributes as plain values."""
    values = {}
    for kv in item.attributes:
        kind = kv.value.WhichOneof("value")
        values[kv.key] = getattr(kv.value, kind) if kind else None
    return values


class OTLPReceiver:
    """Listens on 127.0.0.1; ``endpoint`` is what OTEL_EXPORTER_OTLP_ENDPOINT should say."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest, ExportMetricsServiceResponse
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse

        received = self.received = Received()
        lock = threading.Lock()
        routes = {
            "/v1/traces": (ExportTraceServiceRequest, ExportTraceServiceResponse, received.traces),
            "/v1/metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse, received.metrics),
        }

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                route = routes.get(self.path)
                if route is None or self.headers.get("Content-Type") != "application/x-protobuf":
                    self.send_response(404)
                    self.end_headers()
                    return
                request_cls, response_cls, sink = route
                message = request_cls()
                message.ParseFromString(body)
                with lock:
                    sink.append(message)
                    received.paths.append(self.path)
                payload = response_cls().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-receiver", daemon=True)

    def __enter__(self) -> OTLPReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
