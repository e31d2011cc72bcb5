"""``ConnectorBase``: the contract every connector follows.

A connector is built as ``Cls(*, config, options)`` with resolved values; keys not
given get their schema defaults here (:func:`~aetherflow.core.connectors.schema.settle`),
so a connector built directly sees what a run would give it. It creates its client
lazily on ``connect()``, may be shared between threads of one run, is a context
manager, and ``close()`` may be called any number of times.

Errors, one way: driver calls run inside ``with self.translate("what is being done"):``
and deliberate failures are ``raise self.error(...)``. Both give a
:class:`ConnectorError` naming the resource, kind and driver, and pass the message and
hint through :attr:`ConnectorBase.scrubber`, which knows the connector's secret
configuration values. A driver says how its exceptions read by overriding
:meth:`ConnectorBase._classify` (or only :meth:`ConnectorBase._is_timeout`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from ..errors import AetherflowError, ConnectorError, ConnectorTimeout
from ..redaction import Scrubber, secret_values
from .schema import Schema, settle

#: Called with the amount of work just done (bytes, rows or files, as the call documents).
ProgressCallback = Callable[[int], None]

#: How a driver exception reads: ``(error class, one-line detail, hint or None)``.
Classification = tuple[type[ConnectorError], str, str | None]

_instance_lock_guard = threading.Lock()


class ConnectorBase:
    kind: ClassVar[str] = ""
    driver: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    config_schema: ClassVar[Schema | None] = None
    options_schema: ClassVar[Schema | None] = None

    #: The resource name; set by the connector manager after construction.
    name: str | None = None
    #: Paths of config and options leaves marked secret when the resource was resolved
    #: (``config.headers.X-Tenant``, from ``decode`` marks); set by the manager too.
    secret_paths: frozenset[str] = frozenset()

    def __init__(self, *, config: dict[str, Any], options: dict[str, Any]):
        self.config = settle(config, type(self).config_schema)
        self.options = settle(options, type(self).options_schema)
        self._client: Any = None

    def cfg(self, key: str) -> Any:
        """A config value (its schema default when it was not given), or None."""
        return self.config.get(key)

    def opt(self, key: str) -> Any:
        """An options value (its schema default when it was not given), or None."""
        return self.options.get(key)

    # -- life cycle -------------------------------------------------------------------

    @property
    def lock(self) -> threading.RLock:
        """A per-instance re-entrant lock (works for subclasses that skip ``super().__init__``)."""
        lock = self.__dict__.get("_af_lock")
        if lock is None:
            with _instance_lock_guard:
                lock = self.__dict__.setdefault("_af_lock", threading.RLock())
        return lock

    def connect(self) -> Any:
        """The client, created on first use. Subclasses implement :meth:`_connect`."""
        with self.lock:
            if self.__dict__.get("_client") is None:
                with self.translate("connect"):
                    self._client = self._connect()
            return self._client

    def _connect(self) -> Any:
        return True

    def _disconnect(self, client: Any) -> None:
        close = getattr(client, "close", None)
        if callable(close):
            close()

    def close(self) -> None:
        """Release the client. Idempotent."""
        with self.lock:
            client = self.__dict__.get("_client")
            self._client = None
        if client is not None and client is not True:
            try:
                self._disconnect(client)
            except Exception:  # noqa: BLE001 - closing must never mask the real outcome
                pass

    @property
    def connected(self) -> bool:
        return self.__dict__.get("_client") is not None

    def check(self) -> None:
        """Prove the configuration works: connect, then close."""
        try:
            self.connect()
        finally:
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- errors -----------------------------------------------------------------------

    @property
    def scrubber(self) -> Scrubber:
        """Removes this connector's secret values from text: :meth:`secret_values` and
        those given to :meth:`add_secrets`. Built on first use (it costs a little)."""
        scrubber = self.__dict__.get("_af_scrubber")
        if scrubber is None:
            extra = self.__dict__.get("_af_extra_secrets", ())
            scrubber = self.__dict__.setdefault("_af_scrubber", Scrubber([*self.secret_values(), *extra]))
        return scrubber

    def add_secrets(self, *values: Any) -> None:
        """More values to scrub from this connector's errors (the connector manager adds
        what resolution knows to be secret, decoded values included)."""
        scrubber = self.__dict__.get("_af_scrubber")
        if scrubber is not None:
            scrubber.add(*values)
        else:
            self.__dict__.setdefault("_af_extra_secrets", []).extend(values)

    def secret_values(self) -> list[Any]:
        """Configuration values that must never be shown: keys the schemas declare
        secret, leaves marked secret when the resource was resolved (:attr:`secret_paths`),
        keys whose name says secret, and passwords inside URLs and DSNs."""
        found: list[Any] = []
        sections = (("config", self.config_schema), ("options", self.options_schema))
        for section, schema in sections:
            declared = {key for key, field in (schema or {}).items() if field.secret}
            found.extend(secret_values(self.__dict__.get(section) or {}, declared, self.secret_paths, f"{section}."))
        return found

    def error(self, message: str, cls: type[ConnectorError] = ConnectorError, hint: str | None = None) -> ConnectorError:
        """A ``cls`` error naming this resource, kind and driver; message and hint scrubbed."""
        scrub = self.scrubber.scrub
        return cls(scrub(message), resource=self.name, kind=self.kind, driver=self.driver, hint=scrub(hint) if hint else None)

    @contextmanager
    def translate(self, action: str, *, hint: str | None = None) -> Iterator[None]:
        """Re-raise a driver exception from the block as the error :meth:`translated`
        gives; aetherflow's own errors pass unchanged."""
        try:
            yield
        except AetherflowError:
            raise
        except Exception as exc:
            raise self.translated(exc, action, hint=hint) from exc

    def translated(self, exc: BaseException, action: str, *, hint: str | None = None) -> ConnectorError:
        """The error for driver exception ``exc`` raised while doing ``action``:
        ``"<action> failed: <detail>"``, classified by :meth:`_classify` (``hint``
        replaces the classification's hint)."""
        cls, detail, known_hint = self._classify(exc)
        return self.error(f"{action} failed: {detail}", cls, hint or known_hint)

    def _classify(self, exc: BaseException) -> Classification:
        """How a driver exception reads: ``(error class, one-line detail, hint or None)``.
        Drivers override this to recognise their library's exceptions; the default is
        the exception's own text, and :class:`ConnectorTimeout` when :meth:`_is_timeout`."""
        cls = ConnectorTimeout if self._is_timeout(exc) else ConnectorError
        return cls, str(exc).strip() or type(exc).__name__, None

    def _is_timeout(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the remote system did not answer in time."""
        return isinstance(exc, TimeoutError)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} resource={self.name!r} {self.kind}/{self.driver}>"
