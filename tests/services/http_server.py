"""A local HTTP(S) test server: the standard library's ThreadingHTTPServer in a thread.

``http_server()`` binds 127.0.0.1 on a free port and serves until the block ends. With
``tls=True`` it presents a certificate for 127.0.0.1/localhost issued by a throwaway
trustme CA (its PEM file is written before the port opens); with ``client_ca=True`` it
also demands a client certificate signed by that CA (one is written for the tests).

Endpoints (any method unless noted):

- ``/echo``: JSON ``{method, path, query, headers, body, json}`` of the request.
- ``/bearer``: 200 ``{"ok": true}`` with ``Authorization: Bearer <token>``, else 401.
- ``/basic``: 200 with basic credentials ``username``/``password``, else 401.
- ``/redirect?to=/echo&code=302``: a redirect; ``/redirect-loop``: redirects forever.
- ``/status/<code>?body=text``: answers ``code`` with ``body``.
- ``/slow?delay=s``: waits before answering (read timeouts).
- ``/drip?count=n&interval=i``: headers at once, then ``n`` bytes, one per interval.
- ``/large?size=n``: ``n`` bytes generated on the fly from a fixed 1 MiB block
  (``large_sha256(n)`` gives the expected digest).
- ``/json?items=n``: a JSON document with ``n`` items.
- ``/gzip``: a gzip-encoded JSON body.
- ``/cookie``: sets a session cookie holding the token.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import json
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from . import record_boot, require_modules

TOKEN = "T0ken-S3cr3t-xyz"
USERNAME = "api-user"
PASSWORD = "S3cr3t-Pa55-xyz"
_BLOCK = hashlib.sha256(b"aetherflow").digest() * (1024 * 1024 // 32)  # 1 MiB, deterministic


def large_body_chunks(size: int) -> Iterator[bytes]:
    """The body of ``/large?size=N``, chunk by chunk."""
    full, rest = divmod(size, len(_BLOCK))
    for _ in range(full):
        yield _BLOCK
    if rest:
        yield _BLOCK[:rest]


def large_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for chunk in large_body_chunks(size):
        digest.update(chunk)
    return digest.hexdigest()


@dataclass
class HttpServer:
    url: str
    host: str
    port: int
    tls: bool
    ca_file: str | None = None  # PEM of the CA that signed the server certificate
    client_cert_file: str | None = None  # PEM with key and chain, accepted by a client_ca server
    token: str = field(default=TOKEN, repr=False)
    username: str = USERNAME
    password: str = field(default=PASSWORD, repr=False)
    requests: list[dict] = field(default_factory=list, repr=False)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "aetherflow-test"

    def log_message(self, format, *args):
        pass

    # Every method is handled by the same router.
    def do_GET(self):
        self._route()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    @property
    def facts(self) -> HttpServer:
        return self.server.facts  # type: ignore[attr-defined]

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", content_type: str = "text/plain; charset=utf-8", headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data, headers: dict | None = None):
        self._send(status, json.dumps(data).encode(), "application/json", headers)

    def _route(self):
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        body = self._body()
        self.facts.requests.append({"method": self.command, "path": parts.path, "target": self.path, "headers": dict(self.headers)})
        path = parts.path
        try:
            if path == "/echo":
                try:
                    parsed = json.loads(body) if body else None
                except ValueError:
                    parsed = None
                self._json(200, {
                    "method": self.command,
                    "path": path,
                    "query": query,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body.decode("utf-8", errors="replace"),
                    "json": parsed,
                })
            elif path == "/bearer":
                if self.headers.get("Authorization") == f"Bearer {self.facts.token}":
                    self._json(200, {"ok": True, "auth": "bearer"})
                else:
                    self._json(401, {"error": "bad or missing bearer token"}, {"WWW-Authenticate": "Bearer"})
            elif path == "/basic":
                expected = base64.b64encode(f"{self.facts.username}:{self.facts.password}".encode()).decode()
                if self.headers.get("Authorization") == f"Basic {expected}":
                    self._json(200, {"ok": True, "auth": "basic", "user": self.facts.username})
                else:
                    self._json(401, {"error": "bad or missing credentials"}, {"WWW-Authenticate": 'Basic realm="test"'})
            elif path == "/redirect":
                self._send(int(query.get("code", 302)), b"", headers={"Location": query.get("to", "/echo")})
            elif path == "/redirect-loop":
                self._send(302, b"", headers={"Location": "/redirect-loop"})
            elif path.startswith("/status/"):
                code = int(path.rsplit("/", 1)[1])
                self._send(code, query.get("body", f"status {code}").encode())
            elif path == "/slow":
                time.sleep(float(query.get("delay", 2)))
                self._json(200, {"slow": True})
            elif path == "/drip":
                count, interval = int(query.get("count", 50)), float(query.get("interval", 0.1))
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(count))
                self.end_headers()
                for _ in range(count):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(interval)
            elif path == "/large":
                size = int(query.get("size", 100 * 1024 * 1024))
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(size))
                self.end_headers()
                for chunk in large_body_chunks(size):
                    self.wfile.write(chunk)
            elif path == "/json":
                items = int(query.get("items", 3))
                self._json(200, {"items": [{"id": i, "name": f"item-{i}", "value": i * 1.5} for i in range(items)], "count": items})
            elif path == "/cookie":
                self._json(200, {"ok": True}, {"Set-Cookie": f"session={self.facts.token}; HttpOnly"})
            elif path == "/gzip":
                data = gzip.compress(json.dumps({"compressed": True}).encode())
                self._send(200, data, "application/json", {"Content-Encoding": "gzip"})
            else:
                self._send(404, b"no such endpoint")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    tls_context: ssl.SSLContext | None = None

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the request's thread, not in the accept loop.
        if self.tls_context is not None:
            try:
                request = self.tls_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return  # the client refused our certificate (or we refused theirs)
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        pass  # clients of timeout tests hang up mid-answer; that is expected


@contextlib.contextmanager
def http_server(*, tls: bool = False, client_ca: bool = False) -> Iterator[HttpServer]:
    """Serve the test endpoints on 127.0.0.1:<free port> until the block ends."""
    since = time.monotonic()
    if tls:
        require_modules("trustme")
    with tempfile.TemporaryDirectory(prefix="aetherflow-http-") as tmp:
        server = _Server(("127.0.0.1", 0), _Handler)
        host, port = server.server_address[:2]
        facts = HttpServer(url=f"{'https' if tls else 'http'}://{host}:{port}", host=host, port=port, tls=tls)
        if tls:
            import trustme

            ca = trustme.CA()
            ca_file = Path(tmp) / "ca.pem"
            ca.cert_pem.write_to_path(str(ca_file))
            facts.ca_file = str(ca_file)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
            if client_ca:
                ca.configure_trust(context)
                context.verify_mode = ssl.CERT_REQUIRED
                client_file = Path(tmp) / "client.pem"
                ca.issue_cert("client.test").private_key_and_cert_chain_pem.write_to_path(str(client_file))
                facts.client_cert_file = str(client_file)
            server.tls_context = context
        server.facts = facts  # type: ignore[attr-defined]
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        record_boot("https-mtls" if client_ca else "https" if tls else "http", host, port, since)
        try:
            yield facts
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
