"""HTTP steps: ``http_request`` and ``http_download``.

They use a ``rest`` resource (the built-in ``rest/httpx`` or any connector with the
same ``stream``/``download`` methods). ``http_request`` checks the status against
``expect_status`` and keeps a small JSON answer as an output; ``save_to`` streams the
body to a file instead of memory. ``http_download`` streams a body to a file
atomically and reports its size and SHA-256.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ...connectors.families.http import body_excerpt, read_some, save_body, shown_url
from ...errors import StepError, StepInputError
from ...redaction import MASK, is_secret_key
from ..base import STEP_SUCCESS, Input, Step, StepResult, resource_connector

#: Bodies up to this size become the ``json`` (or ``text``) output.
MAX_BODY_OUTPUT = 1024 * 1024
MAX_TEXT_OUTPUT = 64 * 1024
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_RANGE = re.compile(r"^([1-5])xx$", re.I)
_SPAN = re.compile(r"^(\d{3})\s*-\s*(\d{3})$")

_RESOURCE = Input(str, required=True, resource=True, help="name of a rest resource")


def http_connector(ctx, name: str):
    """The connector of resource ``name``, which must speak HTTP (see the rest family)."""
    return resource_connector(
        ctx, name, lambda c: callable(getattr(c, "stream", None)) and callable(getattr(c, "download", None)), "an HTTP connector"
    )


class ExpectedStatus:
    """The statuses a step accepts: ``200``, ``"2xx"``, ``"200-204"``, a list or a comma string."""

    def __init__(self, value: Any):
        self.text = "2xx" if value is None else str(value)
        self._ranges: list[tuple[int, int]] = []
        items = value if isinstance(value, list) else [value if value is not None else "2xx"]
        for item in items:
            parts = item.split(",") if isinstance(item, str) else [item]
            for part in parts:
                self._ranges.append(self._parse(part))
        if isinstance(value, list):
            self.text = ", ".join(str(v) for v in value)

    @staticmethod
    def _parse(part: Any) -> tuple[int, int]:
        if isinstance(part, int) and not isinstance(part, bool) and 100 <= part <= 599:
            return part, part
        if isinstance(part, str):
            text = part.strip()
            if text.isdigit() and 100 <= int(text) <= 599:
                return int(text), int(text)
            if m := _RANGE.match(text):
                base = int(m.group(1)) * 100
                return base, base + 99
            if (m := _SPAN.match(text)) and int(m.group(1)) <= int(m.group(2)):
                return int(m.group(1)), int(m.group(2))
        raise StepInputError(f"input 'expect_status': {part!r} is not a status, a class like '2xx' or a range like '200-204'")

    def __contains__(self, status: int) -> bool:
        return any(low <= status <= high for low, high in self._ranges)


def _target(inputs, step_type: str) -> str:
    url, path = inputs.get("url"), inputs.get("path")
    if url and path:
        raise StepInputError(f"step type {step_type!r}: give 'url' or 'path', not both")
    if not (url or path):
        raise StepInputError(f"step type {step_type!r}: give 'url' (absolute, or relative to base_url) or 'path'")
    return url or path


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _is_text(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith("text/") or media.endswith(("+xml", "/xml", "/javascript", "/x-www-form-urlencoded"))


def _public_headers(headers) -> dict[str, str]:
    """Response headers for the outputs; cookie and auth headers are masked."""
    return {k.lower(): (MASK if is_secret_key(k) else v) for k, v in headers.items()}


class HttpRequest(Step):
    type = "http_request"
    summary = "Call an HTTP API; check the status; keep a small JSON answer or save the body"
    inputs = {
        "resource": _RESOURCE,
        "url": Input(str, help="absolute URL, or relative to the resource's base_url"),
        "path": Input(str, help="path relative to the resource's base_url (give url or path)"),
        "method": Input(str, default="GET", help="HTTP method"),
        "params": Input(dict, help="query parameters"),
        "headers": Input(dict, help="extra headers for this request"),
        "json": Input(object, help="a JSON body (mapping, list, ...)"),
        "data": Input((dict, str), help="a form body (mapping) or a raw text body"),
        "expect_status": Input((int, str, list), default="2xx", help="accepted statuses: 200, '2xx', '200-204', or a list"),
        "save_to": Input(str, help="write the body to this file (relative to the job workspace)"),
    }
    outputs = ("status", "url", "headers", "json", "text", "path", "bytes", "sha256")

    def run(self, ctx, inputs):
        name = inputs["resource"]
        connector = http_connector(ctx, name)
        target = _target(inputs, self.type)
        method = inputs["method"].strip().upper()
        if method not in _METHODS:
            raise StepInputError(f"step type 'http_request': input 'method': {inputs['method']!r} is not one of {', '.join(_METHODS)}")
        expected = ExpectedStatus(inputs["expect_status"])
        if inputs.get("json") is not None and inputs.get("data") is not None:
            raise StepInputError("step type 'http_request': give 'json' or 'data', not both")
        kwargs: dict[str, Any] = {}
        if inputs.get("params"):
            kwargs["params"] = {str(k): v if isinstance(v, list) else _param(v) for k, v in inputs["params"].items()}
        if inputs.get("headers"):
            kwargs["headers"] = {str(k): str(v) for k, v in inputs["headers"].items()}
        if inputs.get("json") is not None:
            kwargs["json"] = inputs["json"]
        data = inputs.get("data")
        if isinstance(data, dict):
            kwargs["data"] = {str(k): _param(v) for k, v in data.items()}
        elif data is not None:
            kwargs["content"] = data.encode("utf-8")
        save_to = ctx.path(inputs["save_to"], what="save_to") if inputs.get("save_to") else None

        outputs: dict[str, Any] = dict.fromkeys(self.outputs)
        with connector.stream(method, target, **kwargs) as response:
            status = response.status_code
            url = shown_url(response.url)
            outputs.update(status=status, url=url, headers=_public_headers(response.headers))
            if status not in expected:
                excerpt = body_excerpt(read_some(response), scrubber=ctx.scrubber)
                reason = f"{status} {response.reason_phrase}".rstrip()
                message = f"{method} {_short(url)} answered {reason}, expected {expected.text}"
                raise StepError(ctx.scrubber.scrub(message + (f": {excerpt}" if excerpt else "")))
            content_type = response.headers.get("content-type", "")
            if save_to is not None:
                size, sha256 = save_body(response, save_to)
                outputs.update(path=str(save_to), bytes=size, sha256=sha256)
                body = save_to.read_bytes() if size <= MAX_BODY_OUTPUT and (_is_json(content_type) or _is_text(content_type)) else None
            else:
                data_read = bytearray()
                for chunk in response.iter_bytes():
                    data_read += chunk
                    if len(data_read) > MAX_BODY_OUTPUT:
                        break
                too_large = len(data_read) > MAX_BODY_OUTPUT
                body = None if too_large else bytes(data_read)
                outputs["bytes"] = None if too_large else len(data_read)
                if too_large:
                    ctx.logger.warning(
                        "http.body_not_kept",
                        extra={"url": url, "limit_bytes": MAX_BODY_OUTPUT, "hint": "set save_to to keep a large body"},
                    )
        if body is not None and _is_json(content_type):
            try:
                outputs["json"] = json.loads(body) if body.strip() else None
            except ValueError:
                ctx.logger.warning("http.invalid_json", extra={"url": url, "excerpt": body_excerpt(body, scrubber=ctx.scrubber)})
                outputs["text"] = body.decode("utf-8", errors="replace")[:MAX_TEXT_OUTPUT]
        elif body is not None and _is_text(content_type) and len(body) <= MAX_TEXT_OUTPUT:
            outputs["text"] = body.decode("utf-8", errors="replace")
        return StepResult(STEP_SUCCESS, outputs)


def _short(url: str, limit: int = 200) -> str:
    return url if len(url) <= limit else url[:limit] + "..."


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


class HttpDownload(Step):
    type = "http_download"
    summary = "Stream an HTTP resource to a file (atomic); outputs path, bytes, sha256"
    inputs = {
        "resource": _RESOURCE,
        "url": Input(str, help="absolute URL, or relative to the resource's base_url"),
        "path": Input(str, help="path relative to the resource's base_url (give url or path)"),
        "output": Input(str, required=True, help="file to write, relative to the job workspace"),
        "params": Input(dict, help="query parameters"),
        "headers": Input(dict, help="extra headers for this request"),
    }
    outputs = ("path", "bytes", "sha256")

    def run(self, ctx, inputs):
        name = inputs["resource"]
        connector = http_connector(ctx, name)
        target = _target(inputs, self.type)
        output = ctx.path(inputs["output"], what="output")
        kwargs: dict[str, Any] = {}
        if inputs.get("params"):
            kwargs["params"] = {str(k): v if isinstance(v, list) else _param(v) for k, v in inputs["params"].items()}
        if inputs.get("headers"):
            kwargs["headers"] = {str(k): str(v) for k, v in inputs["headers"].items()}

        bar = None
        done = 0

        def progress(received: int, total: int | None) -> None:
            nonlocal bar, done
            if bar is None:
                bar = ctx.progress(f"download {output.name}", total=total, unit="bytes")
            bar.advance(received - done)
            done = received
            ctx.cancel.raise_if_cancelled()  # a cancelled step stops at the next block

        try:
            result = connector.download(target, output, progress=progress, **kwargs)
        finally:
            if bar is not None:
                bar.close()
        return StepResult(STEP_SUCCESS, {"path": str(result["path"]), "bytes": result["bytes"], "sha256": result["sha256"]})
