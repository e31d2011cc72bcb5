"""Redaction: deciding what is secret and scrubbing it from everything written.

A :class:`Scrubber` knows every secret value of an invocation. Console lines, log
records, JSON documents, error messages, state rows and step outputs pass through
``scrub`` / ``scrub_data`` before they leave the process. A secret is also caught in
the forms it is written in: each of its characters may appear escaped the way JSON
(also Jinja's ``tojson``), Python's ``repr``, a shell's single quotes or percent-encoding
(``+`` for a space) write it, with escapes doubled by nesting (``repr`` inside JSON);
and base64 (at every alignment inside a longer base64 text, which covers
``Authorization: Basic`` headers).

Text is scrubbed whole and cut afterwards (:meth:`Scrubber.scrub_cut`): cutting first
would split a secret into halves the scrubber no longer recognises. Where a text was
cut before it could be scrubbed (a stream read in pieces), :meth:`Scrubber.mask_edges`
masks a secret's start or end left at the cut.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Collection, Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit, urlunsplit

MASK = "***"
MIN_SCRUB_LENGTH = 4
#: Secrets shorter than this are masked only where they stand as a whole word (not next
#: to a letter or digit): as a substring, a value like "prod" would be masked inside
#: "product" too.
WHOLE_WORD_BELOW = 8
_WORD_CHAR = "0-9A-Za-z"
# What a stream scrubber holds back at least: enough for a URL with its password.
_STREAM_HOLDBACK = 512
# The shortest piece of a secret masked where a text was cut: shorter pieces match too
# much ordinary text to be told apart from a secret's first characters.
MIN_EDGE_LENGTH = 3

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
    "subscription_key",
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


# A query parameter of a URL (``?api_key=...&page=2``); masked when its name looks secret.
_QUERY_PARAMETER = re.compile(r"(?P<head>[?&;](?P<name>[A-Za-z0-9_.\-]{1,64})=)(?P<value>[^&#;\s'\"]+)")


_WHOLE_URL = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.-]{0,63}://")
_DSN_PASSWORD_KEY = re.compile(r"(?:^|\s)password\s*=\s*", re.I)
_DSN_NEXT_KEY = re.compile(r"\s+[A-Za-z_][A-Za-z0-9_]*\s*=")
# A URL, or a key=value connection string: it starts with its first key.
_DSN_LIKE = re.compile(r"^\s*(?:[A-Za-z][A-Za-z0-9+.-]{0,63}://|[A-Za-z_][A-Za-z0-9_]*\s*=)")


def split_dsn_password(text: str) -> tuple[str, str | None]:
    """A connection string without its password, and the password (decoded).

    Read leniently, the way a person writes them: in a URL the password runs from the
    first ``:`` of the user part to the last ``@`` before the query, whatever it holds
    (spaces, quotes); in a ``key=value`` string an unquoted password runs to the next
    ``key=``. ``(text, None)`` when there is no password."""
    if _WHOLE_URL.match(text):
        scheme, _, rest = text.partition("://")
        head = rest.partition("?")[0]
        at = head.rfind("@")
        user, colon, password = rest[:at].partition(":") if at >= 0 else ("", "", "")
        if not colon:
            return text, None
        return f"{scheme}://{user}@{rest[at + 1 :]}", unquote(password)
    match = _DSN_PASSWORD_KEY.search(text)
    if match is None:
        return text, None
    start, value_start = match.start(), match.end()
    if text[value_start : value_start + 1] == "'":
        chars, i = [], value_start + 1
        while i < len(text) and text[i] != "'":
            if text[i] == "\\" and i + 1 < len(text):
                i += 1
            chars.append(text[i])
            i += 1
        return (text[:start] + text[i + 1 :]).strip(), "".join(chars)
    following = _DSN_NEXT_KEY.search(text, value_start)
    end = following.start() if following else len(text)
    return (text[:start] + text[end:]).strip(), text[value_start:end].strip()


def _secret_query_values(text: str) -> list[str]:
    return [m.group("value") for m in _QUERY_PARAMETER.finditer(text) if is_secret_key(m.group("name"))]


def url_passwords(text: str) -> list[str]:
    """Passwords embedded in URLs (``scheme://user:pw@host``), DSNs (``password=pw``) and
    query parameters with a secret name (``?api_key=...``)."""
    found = [m.group("password") for m in _URL_PASSWORD.finditer(text)]
    found += [m.group("single") or m.group("double") or m.group("bare") or "" for m in _KV_PASSWORD.finditer(text)]
    if "=" in text:
        found += _secret_query_values(text)
    # Only a connection string's password is read to its next key: in other text (a
    # shell command saying ``password=...``) that would make ordinary words secrets.
    _, password = split_dsn_password(text) if _DSN_LIKE.match(text) else (text, None)
    if password:
        # Drivers quote the piece of a malformed string they stopped at: each word too.
        found += [password, *password.split()]
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


def secret_values(
    data: Mapping[str, Any], secret_keys: Collection[str] = (), secret_paths: Iterable[str] = (), prefix: str = ""
) -> list[Any]:
    """The secret values inside a configuration mapping: the values of ``secret_keys``
    (top level), of marked ``secret_paths`` (dotted, ``prefix`` naming ``data``'s own
    path) and of keys whose name looks secret (any depth), and the passwords and
    credential query parameters inside URLs and DSNs anywhere."""
    marked = set(secret_paths)
    found: list[Any] = []
    for key, value in data.items():
        if value is None:
            continue
        path = f"{prefix}{key}"
        if key in secret_keys or path in marked or is_secret_key(str(key)):
            found.extend(secret_leaves(value))
        elif isinstance(value, Mapping):
            found.extend(secret_values(value, (), marked, path + "."))
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


def _mask_query_value(match: re.Match) -> str:
    return match.group("head") + MASK if is_secret_key(match.group("name")) else match.group(0)


def mask_url_password(text: str) -> str:
    """Mask only the password part of a URL or key=value DSN, and the values of query
    parameters whose name looks secret."""
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:{MASK}@", text)
    def kv(match: re.Match) -> str:
        quote_char = "'" if match.group("single") is not None else '"' if match.group("double") is not None else ""
        return f"{match.group('key')}{quote_char}{MASK}{quote_char}"

    text = _KV_PASSWORD.sub(kv, text)
    if "=" in text:
        text = _QUERY_PARAMETER.sub(_mask_query_value, text)
    return text


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


# Jinja's ``tojson`` escapes these on top of JSON so that its output is safe in HTML.
_HTML_SAFE_JSON = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "'": "\\u0027"}
# A single quote inside a shell's single-quoted word (``shlex.quote`` writes the first).
_SHELL_APOSTROPHES = ("'\"'\"'", "'\\''")
# Characters written as themselves in every form; runs of them become one literal.
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~")
# Beyond this length a secret (a private key, a certificate) is matched in its literal
# forms only: a pattern per character would be larger than the text it scans.
_MAX_FLEXIBLE_LENGTH = 512


def _char_forms(char: str) -> set[str]:
    """Every way one character of a secret is written by the encoders we know."""
    forms = {char, json.dumps(char)[1:-1], repr(char)[1:-1], repr(char + '"')[1:-2], quote(char, safe="")}
    if char == " ":
        forms.add("+")
    if char in _HTML_SAFE_JSON:
        forms.add(_HTML_SAFE_JSON[char])
    if char == "'":
        forms.update(_SHELL_APOSTROPHES)
    return forms


def _either_case(text: str) -> str:
    """A regex for ``text`` with its letters in either case (hex digits of an escape)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() and c.isascii() else re.escape(c) for c in text)


def _form_pattern(form: str) -> str:
    """A regex for one written form of a character. Escapes may be doubled by nesting
    (``repr`` inside JSON writes ``\\'``) and hex digits may be in either case."""
    if form.startswith("\\"):
        rest = form[1:]
        return r"\\+" + (_either_case(rest) if rest[:1] in ("u", "x") else re.escape(rest))
    if form.startswith("%") and len(form) > 1:
        return _either_case(form)
    if form in ("'", '"'):
        return r"\\*" + re.escape(form)
    return re.escape(form)


def _flexible_pattern(secret: str) -> str:
    """A regex matching ``secret`` with each character in any of its written forms."""
    parts: list[str] = []
    run = ""
    for char in secret:
        if char in _PLAIN:
            run += char
            continue
        if run:
            parts.append(re.escape(run))
            run = ""
        forms = sorted(_char_forms(char), key=len, reverse=True)
        parts.append("(?:" + "|".join(_form_pattern(f) for f in forms) + ")")
    if run:
        parts.append(re.escape(run))
    return "".join(parts)


def encoded_forms(secret: str) -> set[str]:
    """The secret and the encodings it is commonly written in, as literal texts."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret, safe=""), json.dumps(secret)[1:-1]}
    forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    forms.add(repr(secret + '"')[1:-2])
    forms.add("".join(_HTML_SAFE_JSON.get(c, c) for c in json.dumps(secret)[1:-1]))
    forms.add(secret.replace("'", _SHELL_APOSTROPHES[0]))
    raw = secret.encode("utf-8")
    forms.add(base64.b64encode(raw).decode("ascii"))
    forms.add(base64.urlsafe_b64encode(raw).decode("ascii"))
    forms |= _base64_cores(raw)
    return {f for f in forms if len(f) >= MIN_SCRUB_LENGTH}


def _pattern_for(secret: str) -> list[str]:
    """Regex alternatives that together match every written form of ``secret``."""
    literal = encoded_forms(secret)
    if len(secret) > _MAX_FLEXIBLE_LENGTH:
        return [re.escape(f) for f in literal]
    flexible = _flexible_pattern(secret)
    if flexible == re.escape(secret):
        return [flexible] + [re.escape(f) for f in literal if f != secret]
    # The flexible pattern matches every form but base64 (and its cores).
    matcher = re.compile(flexible)
    return [flexible] + [re.escape(f) for f in literal if not matcher.fullmatch(f)]


def _alternatives(secret: str) -> list[str]:
    """The patterns that mask ``secret``: in any written form, or, for a secret shorter
    than :data:`WHOLE_WORD_BELOW`, in any form that stands as a whole word."""
    patterns = _pattern_for(secret)
    if len(secret) >= WHOLE_WORD_BELOW:
        return patterns
    return [f"(?<![{_WORD_CHAR}])(?:{pattern})(?![{_WORD_CHAR}])" for pattern in patterns]


class Scrubber:
    """Replaces every known secret (in any of its written forms) with ``***``. Thread-safe."""

    def __init__(self, secrets: Iterable[str] = ()):
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._forms: list[str] = []
        self._pattern: re.Pattern[str] | None = None
        self._stale = False
        self.add(*secrets)

    def add(self, *secrets: Any) -> None:
        new: set[str] = set()
        for secret in secrets:
            if secret is None or isinstance(secret, bool):
                continue
            text = str(secret)
            if len(text) < MIN_SCRUB_LENGTH:
                continue
            new.add(text)
            new.update(p for p in url_passwords(text) if len(p) >= MIN_SCRUB_LENGTH)
        with self._lock:
            if new - self._secrets:
                self._secrets |= new
                # Compiled on first use: resolving many resources adds secrets one by one.
                self._stale = True

    def learn(self, data: Mapping[str, Any]) -> None:
        """Add the secrets found inside data that is not secret as a whole (a step's
        rendered inputs): values under a secret-looking key at any depth
        (``headers: {X-Api-Key: ...}``, ``params: {api_key: ...}``), and passwords and
        credential query parameters inside any other string (URLs, DSNs)."""
        found = secret_values(data)
        if found:
            self.add(*found)

    def _compiled(self) -> re.Pattern[str] | None:
        if not self._stale:
            return self._pattern
        with self._lock:
            if self._stale:
                ordered = sorted(self._secrets, key=len, reverse=True)
                alternatives = [alt for secret in ordered for alt in _alternatives(secret)]
                forms = {form for secret in ordered for form in encoded_forms(secret)}
                self._forms = sorted(forms, key=len, reverse=True)
                self._pattern = re.compile("|".join(alternatives))
                self._stale = False
            return self._pattern

    @property
    def longest_form(self) -> int:
        """The length of the longest literal form of a known secret (0 when none)."""
        self._compiled()
        return len(self._forms[0]) if self._forms else 0

    def scrub(self, text: str) -> str:
        if not isinstance(text, str):
            text = str(text)
        pattern = self._compiled()
        if pattern is not None:
            text = pattern.sub(MASK, text)
        # After the known secrets: a password=... mask must not cut one of them in two.
        return mask_url_password(text)

    def scrub_cut(self, text: str, limit: int, *, keep: str = "head") -> str:
        """Scrub the whole text, then keep its first (``head``) or last (``tail``)
        ``limit`` characters; a secret's piece left at the cut is masked too."""
        scrubbed = self.scrub(text)
        if len(scrubbed) <= limit:
            return scrubbed
        if keep == "head":
            return self.mask_edges(scrubbed[:limit], end=True)
        return self.mask_edges(scrubbed[len(scrubbed) - limit :], start=True)

    def scrub_stream(self, text: str) -> tuple[str, str]:
        """Split a piece of a stream that goes on: ``(scrubbed, rest)``, where
        ``scrubbed`` may be written now and ``rest`` (unscrubbed) is to be put in front
        of what the stream says next. The rest holds whatever could be the beginning of
        a secret that continues in the next piece, so no secret is ever cut in two."""
        pattern = self._compiled()
        cut = len(text) - max(_STREAM_HOLDBACK, 2 * self.longest_form)
        if cut <= 0:
            return "", text
        patterns = [p for p in (pattern, _URL_PASSWORD, _KV_PASSWORD, _QUERY_PARAMETER) if p is not None]
        moved = True
        while moved and cut > 0:
            moved = False
            for regex in patterns:
                for match in regex.finditer(text, max(cut - _STREAM_HOLDBACK * 4, 0), len(text)):
                    if match.start() < cut < match.end():
                        cut, moved = match.start(), True
        return self.scrub(text[:cut]), text[cut:]

    def mask_edges(self, text: str, *, start: bool = False, end: bool = False) -> str:
        """Mask a secret's last characters at the start of ``text`` and its first
        characters at the end: what is left of a secret where a text was cut."""
        self._compiled()
        if end:
            cut = self._edge_length(text, prefix=True)
            if cut:
                text = text[: len(text) - cut] + MASK
        if start:
            cut = self._edge_length(text, prefix=False)
            if cut:
                text = MASK + text[cut:]
        return text

    def _edge_length(self, text: str, *, prefix: bool) -> int:
        longest = 0
        for form in self._forms:
            for size in range(min(len(form) - 1, len(text)), max(longest, MIN_EDGE_LENGTH - 1), -1):
                piece = form[:size] if prefix else form[len(form) - size :]
                if (text.endswith(piece) if prefix else text.startswith(piece)):
                    longest = size
                    break
        return longest

    def scrub_data(self, value: Any) -> Any:
        """Scrub every string inside a JSON-like structure, keys included."""
        return self.scrub_data_changed(value)[0]

    def scrub_data_changed(self, value: Any) -> tuple[Any, bool]:
        """:meth:`scrub_data`, and whether any string in it was masked."""
        changed = False

        def scrubbed(text: str) -> str:
            nonlocal changed
            result = self.scrub(text)
            changed = changed or result != text
            return result

        def walk(item: Any) -> Any:
            if isinstance(item, str):
                return scrubbed(item)
            if isinstance(item, Mapping):
                return {scrubbed(str(k)): walk(v) for k, v in item.items()}
            if isinstance(item, (list, tuple, set, frozenset)):
                return [walk(v) for v in item]
            return item

        return walk(value), changed


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
