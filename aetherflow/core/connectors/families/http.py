"""The ``rest`` connector family: what the HTTP steps expect of a connector, and the
helpers drivers and steps share.

A connector of this family (the built-in ``rest/httpx`` or a plugin) offers
``stream(method, url, **kwargs)``, a context manager yielding a streaming response
with ``status_code``, ``reason_phrase``, ``url``, ``headers`` and ``iter_bytes()``
(httpx's response API), and ``download(url, path, progress=None, **kwargs)``. It does
not judge statuses: ``http_request`` does.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from typing import Any

from ...atomic import atomic_open
from ...redaction import Scrubber, mask_url_password, strip_url_credentials

#: Characters of a body shown in an error message.
EXCERPT_LENGTH = 300


def shown_url(url: Any) -> str:
    """A URL fit for messages: no userinfo, no password."""
    return strip_url_credentials(mask_url_password(str(url)))


_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)\b", re.IGNORECASE | re.DOTALL)
_HTML_HIDDEN = re.compile(r"<(script|style|head)\b.*?</\1\s*>|<!--.*?-->", re.IGNORECASE | re.DOTALL)
_HTML_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]*>")


def body_excerpt(data: bytes, limit: int = EXCERPT_LENGTH, scrubber: Scrubber | None = None) -> str:
    """The start of a response body as one line of text. An HTML page (a server's error
    page) is shown by its title and the start of its text, without tags, styles or
    scripts. With a scrubber, the text is scrubbed before it is cut, and a secret's
    start left at the cut is masked."""
    if _HTML_START.match(data[:1024]):
        import html

        read = data[: 64 * 1024]
        page = read.decode("utf-8", errors="replace")
        title = _HTML_TITLE.search(page)
        body = _HTML_TAG.sub(" ", _HTML_HIDDEN.sub(" ", page))
        parts = [html.unescape(title.group(1)) if title else "", html.unescape(body)]
        words = [" ".join(part.split()) for part in parts]
        if words[0] and words[1].startswith(words[0]):
            words[0] = ""
        text = " - ".join(w for w in words if w)
    else:
        read = data[: limit * 4]
        text = " ".join(read.decode("utf-8", errors="replace").split())
    if scrubber is None:
        return text if len(text) <= limit else text[:limit] + "..."
    text = scrubber.scrub(text)
    if len(read) < len(data):
        text = scrubber.mask_edges(text, end=True)
    return text if len(text) <= limit else scrubber.scrub_cut(text, limit) + "..."


def read_some(response, limit: int = 64 * 1024) -> bytes:
    """Up to ``limit`` bytes of a streaming response's body (the rest is not read)."""
    data = bytearray()
    try:
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) >= limit:
                break
    except Exception:  # noqa: BLE001 - an excerpt is best effort; the status is the error
        pass
    return bytes(data[:limit])


def save_body(response, target: str | os.PathLike, progress: Callable[[int], None] | None = None) -> tuple[int, str]:
    """A streaming response's body written to ``target`` atomically; returns
    ``(bytes, sha256 hex digest)``. ``progress`` gets the bytes received so far."""
    digest = hashlib.sha256()
    size = 0
    with atomic_open(target) as fh:
        for chunk in response.iter_bytes():
            fh.write(chunk)
            digest.update(chunk)
            size += len(chunk)
            if progress is not None:
                progress(size)
    return size, digest.hexdigest()
