"""``rest/httpx``: an HTTP(S) API behind one pooled ``httpx.Client``.

The client is created on first use and shared by every thread of the run. It never
reads the process environment (``trust_env=False``): proxies, CA bundles and
credentials come from the resource's config only. TLS is verified by default against
certifi's bundle (httpx's own default); ``verify`` may name a CA bundle file or
directory instead, and ``cert`` a client certificate.

httpx's timeouts bound each network operation (connect, each read, each write). The
connector adds ``timeout_seconds``, a deadline for the whole exchange: every operation's
timeout is capped by the time left, and once response headers are in, a watchdog
shuts the socket down when the deadline passes, so a server trickling bytes cannot
keep a step alive forever.

Redirects are followed here rather than by httpx, so that credentials never travel to
another origin: a redirect to another scheme, host or port drops every credential
header (Authorization, cookies, API keys, any header marked secret or named like a
secret) and basic auth, and a redirect from https to http is refused.

No retries happen here (a step's ``retry`` does that, visibly).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from ...cancel import current_cancel
from ...errors import ConnectorConfigError, ConnectorError, ConnectorTimeout
from ...redaction import is_secret_key, mask_url_password
from ...values import parse_bool
from ..base import Classification, ConnectorBase
from ..families.http import body_excerpt, read_some, save_body, shown_url
from ..schema import Field

# Parts of header names that carry credentials, beyond the secret key names.
_CREDENTIAL_HEADER_PARTS = ("auth", "key", "token", "secret", "cookie", "session", "signature", "credential", "password")


class _Deadline:
    """The total time budget of one exchange (``None``: no budget)."""

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.end = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        return None if self.end is None else self.end - time.monotonic()

    def cap(self, value: float | None) -> float | None:
        left = self.remaining()
        if left is None:
            return value
        left = max(left, 0.001)
        return left if value is None else min(value, left)


def _socket_of(response) -> Any:
    stream = response.extensions.get("network_stream")
    return stream.get_extra_info("socket") if stream is not None else None


def _shutdown(sock) -> None:
    if sock is None:
        return
    try:
        # The plain socket's shutdown, also for an SSLSocket: wakes a blocked recv.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class _Watchdog:
    """Shuts a response's socket down when the deadline passes (interrupts a blocked read)."""

    def __init__(self, response, deadline: _Deadline):
        self.fired = False
        self._timer = None
        left = deadline.remaining()
        if left is None:
            return
        sock = _socket_of(response)
        if sock is None:
            return
        self._timer = threading.Timer(max(left, 0.0), self._fire, args=(sock,))
        self._timer.daemon = True
        self._timer.start()

    def _fire(self, sock) -> None:
        self.fired = True
        _shutdown(sock)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


def _as_verify(value: Any) -> bool | str:
    """``verify`` as given: a boolean, a boolean word, or a CA bundle path."""
    if isinstance(value, str) and (flag := parse_bool(value)) is not None:
        return flag
    return value


class HttpxConnector(ConnectorBase):
    """HTTP(S) API over a pooled httpx client."""

    kind = "rest"
    driver = "httpx"
    summary = "HTTP(S) API over a pooled httpx client"
    config_schema = {
        "base_url": Field(str, help="prefix of relative request URLs, e.g. https://api.example.com/v1"),
        "token": Field(str, secret=True, help="bearer token (Authorization: Bearer ...)"),
        "username": Field(str, help="user for HTTP basic auth"),
        "password": Field(str, secret=True, help="password for HTTP basic auth"),
        "headers": Field(dict, help="headers sent with every request; values of secret-looking names are redacted"),
        "verify": Field((bool, str), default=True, help="verify TLS: true, false, or a CA bundle file/directory"),
        "cert": Field((str, list), help="client certificate: a PEM file with the key, or [cert_file, key_file]"),
        "proxy": Field(str, help="proxy URL (the environment's *_proxy variables are never used)"),
    }
    options_schema = {
        "timeout_seconds": Field(float, help="deadline for a whole request including the body (default: none)"),
        "connect_timeout_seconds": Field(float, default=10.0, help="time allowed to open a connection"),
        "read_timeout_seconds": Field(float, default=60.0, help="time allowed between two reads (and for each write)"),
        "follow_redirects": Field(bool, default=True, help="follow 3xx redirects"),
        "max_connections": Field(int, default=10, help="size of the connection pool"),
    }

    # -- client ---------------------------------------------------------------------------

    def _ssl_context(self):
        import ssl

        verify = _as_verify(self.cfg("verify"))
        if verify is False:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif verify is True or verify is None:
            import certifi

            context = ssl.create_default_context(cafile=certifi.where())
        else:
            bundle = Path(str(verify)).expanduser()
            if bundle.is_dir():
                context = ssl.create_default_context(capath=str(bundle))
            elif bundle.is_file():
                context = ssl.create_default_context(cafile=str(bundle))
            else:
                raise self.error(f"verify: CA bundle {str(bundle)!r} does not exist", ConnectorConfigError)
        cert = self.cfg("cert")
        if cert:
            files = [cert] if isinstance(cert, str) else list(cert)
            if not 1 <= len(files) <= 2 or not all(isinstance(f, str) for f in files):
                raise self.error("cert: expected a PEM file or [cert_file, key_file]", ConnectorConfigError)
            for path in files:
                if not Path(path).expanduser().is_file():
                    raise self.error(f"cert: file {path!r} does not exist", ConnectorConfigError)
            context.load_cert_chain(*(str(Path(f).expanduser()) for f in files))
        return context

    def _connect(self):
        import httpx

        token, username, password = self.cfg("token"), self.cfg("username"), self.cfg("password")
        if token and (username or password):
            raise self.error("give either token (bearer) or username/password (basic), not both", ConnectorConfigError)
        if password and not username:
            raise self.error("password given without username", ConnectorConfigError)
        headers = {str(k): str(v) for k, v in (self.cfg("headers") or {}).items()}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        auth = httpx.BasicAuth(username, password or "") if username else None
        max_connections = int(self.opt("max_connections"))
        return httpx.Client(
            base_url=self.cfg("base_url") or "",
            headers=headers,
            auth=auth,
            verify=self._ssl_context(),
            proxy=self.cfg("proxy") or None,
            timeout=self._timeouts(_Deadline(None)),
            follow_redirects=False,  # stream() follows them, see _redirected()
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            trust_env=False,
        )

    def _timeouts(self, deadline: _Deadline):
        import httpx

        connect = deadline.cap(self.opt("connect_timeout_seconds"))
        read = deadline.cap(self.opt("read_timeout_seconds"))
        return httpx.Timeout(connect=connect, read=read, write=read, pool=connect)

    def check(self) -> None:
        """Connect to ``base_url`` (any HTTP answer proves the address, TLS and proxy work)."""
        try:
            if self.cfg("base_url"):
                with self.stream("GET", ""):
                    pass
            else:
                self.connect()
        finally:
            self.close()

    # -- requests -------------------------------------------------------------------------

    @contextmanager
    def stream(self, method: str, url: str = "", **kwargs: Any) -> Iterator[Any]:
        """A streaming ``httpx.Response`` for ``method url``; the body is read by the caller.

        ``kwargs`` are httpx request arguments (params, headers, json, data, content,
        files, cookies). The total deadline covers the block. Any status is returned:
        deciding what counts as success is the caller's business.
        """
        import httpx

        client = self.connect()
        method = method.upper()
        deadline = _Deadline(self.opt("timeout_seconds"))
        shown = shown_url(url)
        action = f"{method} {shown}"
        watchdog = None
        timeouts = self._timeouts(deadline)
        try:
            request = client.build_request(method, url, timeout=timeouts, **kwargs)
            shown = shown_url(request.url)
            action = f"{method} {shown}"
            response = client.send(request, stream=True)
            hops = 0
            while response.next_request is not None and self.opt("follow_redirects"):
                try:
                    hops += 1
                    if hops > client.max_redirects:
                        raise httpx.TooManyRedirects("Exceeded maximum allowed redirects.", request=response.next_request)
                    following = self._redirected(response.request, response.next_request)
                finally:
                    response.close()
                action = f"{method} {shown} -> {shown_url(following.url)}"
                # No client auth on a hop: same-origin hops carry their Authorization header.
                response = client.send(following, stream=True, auth=None)
            try:
                watchdog = _Watchdog(response, deadline)
                # A cancelled step (Ctrl-C, timeout_seconds) ends a blocked read the same way.
                with current_cancel().on_cancel(partial(_shutdown, _socket_of(response))):
                    yield response
            finally:
                if watchdog is not None:
                    watchdog.cancel()
                response.close()
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
            if self._past_deadline(exc, deadline, timeouts, watchdog):
                raise self.error(
                    f"{action}: not complete within timeout_seconds={deadline.seconds:g}s (total deadline)", ConnectorTimeout
                ) from exc
            raise self.translated(exc, action) from exc

    def _redirected(self, previous, following):
        """The next request of a redirect, without credentials when it leaves the origin."""
        before, after = previous.url, following.url
        if before.scheme == "https" and after.scheme != "https":
            raise self.error(
                f"{previous.method} {shown_url(before)} redirects to {shown_url(after)}: a redirect from https to http is refused",
                hint="credentials would travel in clear text; call the https address, or set follow_redirects: false to see the answer",
            )
        if (before.scheme, before.host, before.port) == (after.scheme, after.host, after.port):
            return following
        marked = {p.rsplit(".", 1)[-1].lower() for p in self.secret_paths if p.startswith("config.headers.")}
        secrets = {str(v) for v in self.secret_values()}
        for name, value in list(following.headers.items()):
            lowered = name.lower()
            if lowered in marked or is_secret_key(lowered) or any(p in lowered for p in _CREDENTIAL_HEADER_PARTS) or value in secrets:
                del following.headers[name]
        return following

    def _past_deadline(self, exc: Exception, deadline: _Deadline, timeouts, watchdog: _Watchdog | None) -> bool:
        """Whether the exchange failed because ``timeout_seconds`` ran out: the watchdog
        cut it, or an operation timed out on a timeout the deadline had shortened."""
        import httpx

        if not isinstance(exc, httpx.TimeoutException):
            return watchdog is not None and watchdog.fired
        configured = {
            httpx.ConnectTimeout: (timeouts.connect, self.opt("connect_timeout_seconds")),
            httpx.ReadTimeout: (timeouts.read, self.opt("read_timeout_seconds")),
            httpx.WriteTimeout: (timeouts.write, self.opt("read_timeout_seconds")),
            httpx.PoolTimeout: (timeouts.pool, self.opt("connect_timeout_seconds")),
        }.get(type(exc))
        return deadline.seconds is not None and configured is not None and (configured[1] is None or configured[0] < configured[1])

    def _classify(self, exc: BaseException) -> Classification:
        import httpx

        if isinstance(exc, httpx.TimeoutException):
            phase = {
                httpx.ConnectTimeout: f"no connection within {self.opt('connect_timeout_seconds'):g}s (connect timeout)",
                httpx.ReadTimeout: f"no data for {self.opt('read_timeout_seconds'):g}s (read timeout)",
                httpx.WriteTimeout: f"could not send for {self.opt('read_timeout_seconds'):g}s (write timeout)",
                httpx.PoolTimeout: "no free connection in the pool (pool timeout)",
            }.get(type(exc), "timed out")
            return ConnectorTimeout, phase, None
        detail = mask_url_password(str(exc).strip() or type(exc).__name__)
        hint = None
        if "CERTIFICATE_VERIFY_FAILED" in detail:
            hint = "the server's certificate is not trusted: set `verify` to the CA bundle that signed it"
        elif isinstance(exc, httpx.TooManyRedirects):
            hint = "the server redirects in a loop; set follow_redirects: false to see the first answer"
        elif isinstance(exc, httpx.UnsupportedProtocol) and not self.cfg("base_url"):
            hint = "a relative URL needs base_url in the resource config"
        return ConnectorError, detail, hint

    def request(self, method: str, url: str = "", **kwargs: Any):
        """Send a request and read the whole body; returns the ``httpx.Response`` (any status)."""
        with self.stream(method, url, **kwargs) as response:
            response.read()
        return response

    def get(self, url: str = "", **kwargs: Any):
        return self.request("GET", url, **kwargs)

    def post(self, url: str = "", **kwargs: Any):
        return self.request("POST", url, **kwargs)

    def put(self, url: str = "", **kwargs: Any):
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str = "", **kwargs: Any):
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str = "", **kwargs: Any):
        return self.request("DELETE", url, **kwargs)

    def status_error(self, response, excerpt: str | None = None) -> ConnectorError:
        """The error for an unexpected status: method, URL without credentials, body excerpt."""
        request = response.request
        text = f"{request.method} {shown_url(request.url)} answered {response.status_code} {response.reason_phrase}".rstrip()
        if excerpt:
            text += f": {excerpt}"
        return self.error(text)

    # -- downloads ------------------------------------------------------------------------

    def download(
        self,
        url: str,
        path: str | os.PathLike,
        progress: Callable[[int, int | None], None] | None = None,
        *,
        method: str = "GET",
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Stream ``url`` into ``path`` (temporary file, then renamed); a non-2xx status fails.

        ``progress(received_bytes, total_bytes_or_None)`` is called after each chunk.
        Returns ``{path, bytes, sha256}``.
        """
        target = Path(path)
        with self.translate(f"create the directory of {str(target)!r}"):
            target.parent.mkdir(parents=True, exist_ok=True)
        with self.stream(method, url, **kwargs) as response:
            if not response.is_success:
                raise self.status_error(response, body_excerpt(read_some(response), scrubber=self.scrubber))
            length = response.headers.get("content-length")
            total = int(length) if length and length.isdigit() and "content-encoding" not in response.headers else None
            size, sha256 = save_body(response, target, None if progress is None else lambda received: progress(received, total))
        return {"path": str(target), "bytes": size, "sha256": sha256}
