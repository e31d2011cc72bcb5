"""``ctx.connectors``: a read-only mapping from resource name to connector instance.

Resources are resolved before the first job; instances are built on first access.
Cache scope ``run`` keeps one instance per resource for the run; ``process`` shares
instances between runs of one process, keyed by kind, driver and resolved
configuration; ``none`` (or the disable switch) builds a new instance per access. Every
instance handed out during a run is closed when the run ends, except process-scoped
ones, which are closed when the process exits.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import AetherflowError, ConnectorError, suggest
from ..redaction import Scrubber
from . import registry

_process_cache: dict[str, Any] = {}
_process_lock = threading.Lock()


def _close_process_cache() -> None:
    with _process_lock:
        instances = list(_process_cache.values())
        _process_cache.clear()
    for instance in instances:
        instance.close()


atexit.register(_close_process_cache)


class ConnectorManager(Mapping[str, Any]):
    def __init__(self, resources: Mapping[str, Any], *, scope: str = "run", disabled: bool = False):
        self._resources = dict(resources)
        self.scope = "none" if disabled else scope
        self._run_cache: dict[str, Any] = {}
        self._opened: list[Any] = []
        self._lock = threading.Lock()
        self.instances_built = 0

    def __getitem__(self, name: str) -> Any:
        resource = self._resources.get(name)
        if resource is None:
            known = ", ".join(sorted(self._resources)) or "none"
            raise ConnectorError(
                f"unknown resource {name!r}{suggest(name, self._resources)}",
                hint=f"resources of this flow: {known}",
            )
        if resource.error is not None:
            raise resource.error
        if self.scope == "run":
            with self._lock:
                instance = self._run_cache.get(name)
                if instance is None:
                    instance = self._run_cache[name] = self._build(resource)
                    self._opened.append(instance)
            return instance
        if self.scope == "process":
            key = resource.cache_key()
            with _process_lock:
                instance = _process_cache.get(key)
                if instance is None:
                    instance = _process_cache[key] = self._build(resource)
            return instance
        instance = self._build(resource)
        with self._lock:
            self._opened.append(instance)
        return instance

    def _build(self, resource) -> Any:
        cls = registry.get_connector_class(resource.kind, resource.driver)
        secrets = resource.secret_values()
        try:
            instance = cls(config=resource.config, options=resource.options)
        except AetherflowError:
            raise
        except Exception as exc:
            raise ConnectorError(
                Scrubber(secrets).scrub(f"cannot construct connector: {type(exc).__name__}: {exc}"),
                resource=resource.name,
                kind=resource.kind,
                driver=resource.driver,
            ) from exc
        instance.name = resource.name
        instance.secret_paths = frozenset(resource.secret_paths)
        # Resolution knows secrets the connector cannot see as such (decoded values).
        instance.add_secrets(*secrets)
        self.instances_built += 1
        return instance

    def __iter__(self) -> Iterator[str]:
        return iter(self._resources)

    def __len__(self) -> int:
        return len(self._resources)

    def __contains__(self, name: object) -> bool:
        return name in self._resources

    def close(self) -> None:
        """Close every instance this run opened (run and none scopes)."""
        with self._lock:
            opened, self._opened = self._opened, []
            self._run_cache.clear()
        for instance in reversed(opened):
            instance.close()
