"""``ConnectorBase``: the contract every connector follows.

A connector is built as ``Cls(*, config, options)`` with fully resolved values. It
creates its client lazily on ``connect()``, may be shared between threads of one run,
is a context manager, and ``close()`` may be called any number of times. Driver
exceptions are turned into :class:`ConnectorError` subclasses naming the resource,
kind and driver through :meth:`ConnectorBase.error` and :meth:`ConnectorBase.translate`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from ..errors import AetherflowError, ConnectorError
from .schema import Schema

#: Called with the amount of work just done (bytes, rows or files, as the call documents).
ProgressCallback = Callable[[int], None]

_instance_lock_guard = threading.Lock()


def _lookup(values: dict[str, Any], schema: Schema | None, key: str) -> Any:
    if values.get(key) is not None:
        return values[key]
    field = (schema or {}).get(key)
    return field.default if field is not None else None


class ConnectorBase:
    kind: ClassVar[str] = ""
    driver: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    config_schema: ClassVar[Schema | None] = None
    options_schema: ClassVar[Schema | None] = None

    #: The resource name; set by the connector manager after construction.
    name: str | None = None

    def __init__(self, *, config: dict[str, Any], options: dict[str, Any]):
        self.config = dict(config)
        self.options = dict(options)
        self._client: Any = None

    def cfg(self, key: str) -> Any:
        """A config value, or its schema default when the key was not given."""
        return _lookup(self.config, type(self).config_schema, key)

    def opt(self, key: str) -> Any:
        """An options value, or its schema default when the key was not given."""
        return _lookup(self.options, type(self).options_schema, key)

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

    def error(self, message: str, cls: type[ConnectorError] = ConnectorError, hint: str | None = None) -> ConnectorError:
        return cls(message, resource=self.name, kind=self.kind, driver=self.driver, hint=hint)

    @contextmanager
    def translate(self, action: str, cls: type[ConnectorError] = ConnectorError) -> Iterator[None]:
        """Re-raise driver exceptions as :class:`ConnectorError` naming this resource."""
        try:
            yield
        except AetherflowError:
            raise
        except Exception as exc:
            detail = str(exc).strip() or type(exc).__name__
            raise self.error(f"{action} failed: {detail}", cls) from exc

    def __repr__(self) -> str:
        return f"<{type(self).__name__} resource={self.name!r} {self.kind}/{self.driver}>"
