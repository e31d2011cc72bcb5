"""Redaction: deciding what is secret and scrubbing it from everything written.

A :class:`Scrubber` knows every secret value of an invocation. Console lines, log
records, JSON documents, error messages, state rows and step outputs pass through
``scrub`` / ``scrub_data`` before they leave the process. A secret is also caught in
its common encodings: URL-encoded, JSON-escaped and base64 (at every alignment inside
a longer base64 text, which covers ``Authorization: Basic`` headers).
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Collection, Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

MASK = "***"
MIN_SCRUB_LENGTH = 4
#: Secrets shorter than this are masked only where they stand as a whole word (not next
#: to a letter or digit): as a substring, a value like "prod" would be masked inside
#: "product" too.
WHOLE_WORD_BELOW = 8
_WORD_CHAR = "0-9A-Za-z"

_SECRET_KEY_PARTS = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "private_key",
    "passphrase",
    "credential",
    "authorization",
    "cookie",
    "access_key",
    "client_secret",
    "session_key",
)

# Keys that contain a secret-looking part but name something public.
_NOT_SECRET_KEYS = frozenset({"private_key_path", "token_url", "password_file_path"})

# The scheme is bounded so that a long run of letters (hex dumps, base64) is not
# rescanned from every position: unbounded, scrubbing 1 MiB of letters took minutes.
_URL_PASSWORD = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]{0,63}://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]+)@")
# A bare value stops at a double quote: a DSN shown inside a JSON string ends with one,
# and masking must not swallow it.
_KV_PASSWORD = re.compile(
    r"(?P<key>\b(?:password|passwd)\s*=\s*)(?:'(?P<single>[^']*)'|\"(?P<double>[^\"]*)\"|(?P<bare>[^\s&;\"]+))", re.I
)


# An HTTP authorization value: a scheme and the credentials.
_SCHEME_CREDENTIALS = re.compile(r"^(?:bearer|basic|token|digest|negotiate|api-?key)\s+(?P<credentials>\S+)$", re.I)


def is_secret_key(key: str) -> bool:
    """True when a config key's name says its value is secret."""
    lowered = key.lower().replace("-", "_")
    if lowered in _NOT_SECRET_KEYS:
        return False
    return any(part in lowered for part in _SECRET_KEY_PARTS)


def url_passwords(text: str) -> list[str]:
    """Passwords embedded in URLs (``scheme://user:pw@host``) or DSNs (``password=pw``)."""
    found = [m.group("password") for m in _URL_PASSWORD.finditer(text)]
    found += [m.group("single") or m.group("double") or m.group("bare") or "" for m in _KV_PASSWORD.finditer(text)]
    return found


def url_passwords_in(data: Any) -> list[str]:
    """:func:`url_passwords` of every string inside a JSON-like structure."""
    if isinstance(data, str):
        return url_passwords(data)
    if isinstance(data, Mapping):
        return [p for v in data.values() for p in url_passwords_in(v)]
    if isinstance(data, (list, tuple)):
        return [p for v in data for p in url_passwords_in(v)]
    return []


def secret_values(data: Mapping[str, Any], secret_keys: Collection[str] = ()) -> list[Any]:
    """The secret values inside a configuration mapping: the values of ``secret_keys``
    (top level) and of keys whose name looks secret (any depth), and the passwords
    inside URLs and DSNs anywhere."""
    found: list[Any] = []
    for key, value in data.items():
        if value is None:
            continue
        if key in secret_keys or is_secret_key(str(key)):
            found.extend(secret_leaves(value))
        elif isinstance(value, Mapping):
            found.extend(secret_values(value))
        found.extend(url_passwords_in(value))
    return found


def secret_leaves(value: Any) -> list[Any]:
    """The scalar values inside a secret value; for an ``Authorization``-style value
    (``Bearer <token>``) the credentials alone too, as drivers may quote just those."""
    if isinstance(value, Mapping):
        return [leaf for v in value.values() for leaf in secret_leaves(v)]
    if isinstance(value, (list, tuple)):
        return [leaf for v in value for leaf in secret_leaves(v)]
    if isinstance(value, str) and (match := _SCHEME_CREDENTIALS.match(value)):
        return [value, match.group("credentials")]
    return [value]


def mask_url_password(text: str) -> str:
    """Mask only the password part of a URL or key=value DSN."""
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:{MASK}@", text)
    def kv(match: re.Match) -> str:
        quote_char = "'" if match.group("single") is not None else '"' if match.group("double") is not None else ""
        return f"{match.group('key')}{quote_char}{MASK}{quote_char}"

    return _KV_PASSWORD.sub(kv, text)


def strip_url_credentials(url: str) -> str:
    """A URL with its userinfo removed, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return mask_url_password(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _base64_cores(value: bytes) -> set[str]:
    """Substrings that appear in any base64 text containing ``value`` at any offset."""
    cores = set()
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + value).decode("ascii").rstrip("=")
        # Characters touched by the padding prefix or by the unknown tail vary; drop them.
        start = (pad * 4 + 2) // 3
        end = (len(value) + pad) * 4 // 3
        core = encoded[start:end]
        if len(core) >= MIN_SCRUB_LENGTH:
            cores.add(core)
    return cores


def encoded_forms(secret: str) -> set[str]:
    """The secret and the encodings it is commonly written in."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret, safe=""), json.dumps(secret)[1:-1]}
    forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    raw = secret.encode("utf-8")
    forms.add(base64.b64encode(raw).decode("ascii"))
    forms.add(base64.urlsafe_b64encode(raw).decode("ascii"))
    forms |= _base64_cores(raw)
    return {f for f in forms if len(f) >= MIN_SCRUB_LENGTH}


class Scrubber:
    """Replaces every known secret (and its encodings) with ``***``. Thread-safe."""

    def __init__(self, secrets: Iterable[str] = ()):
        self._lock = threading.Lock()
        self._forms: set[str] = set()
        self._words: set[str] = set()  # short secrets, masked as whole words only
        self._pattern: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *secrets: Any) -> None:
        new: set[str] = set()
        words: set[str] = set()
        for secret in secrets:
            if secret is None or isinstance(secret, bool):
                continue
            text = str(secret)
            if len(text) < MIN_SCRUB_LENGTH:
                continue
            if len(text) < WHOLE_WORD_BELOW:
                words.add(text)
                continue
            new |= encoded_forms(text)
            for password in url_passwords(text):
                if len(password) >= WHOLE_WORD_BELOW:
                    new |= encoded_forms(password)
                elif len(password) >= MIN_SCRUB_LENGTH:
                    words.add(password)
        with self._lock:
            if new - self._forms or words - self._words:
                self._forms |= new
                self._words |= words
                alternatives = [re.escape(f) for f in sorted(self._forms, key=len, reverse=True)]
                alternatives += [
                    f"(?<![{_WORD_CHAR}]){re.escape(w)}(?![{_WORD_CHAR}])" for w in sorted(self._words, key=len, reverse=True)
                ]
                self._pattern = re.compile("|".join(alternatives))

    def scrub(self, text: str) -> str:
        if not isinstance(text, str):
            text = str(text)
        text = mask_url_password(text)
        pattern = self._pattern
        if pattern is None:
            return text
        return pattern.sub(MASK, text)

    def scrub_data(self, value: Any) -> Any:
        """Scrub every string inside a JSON-like structure, keys included."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, Mapping):
            return {self.scrub(str(k)): self.scrub_data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple, set, frozenset)):
            return [self.scrub_data(v) for v in value]
        return value


def redact_mapping(data: Mapping[str, Any], secret_paths: Iterable[str] = (), prefix: str = "") -> dict:
    """A copy of ``data`` with secret leaves replaced by ``***`` (by key, mark or URL)."""
    marked = set(secret_paths)
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out[key] = redact_mapping(value, marked, path + ".")
        elif value is not None and (path in marked or is_secret_key(str(key))):
            out[key] = MASK
        elif isinstance(value, str):
            out[key] = mask_url_password(value)
        else:
            out[key] = value
    return out
