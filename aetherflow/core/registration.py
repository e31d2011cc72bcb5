"""What the two registries (connectors and steps) share.

A registration is attributed to an *origin*: ``builtin``, or the plugin being imported
when it happened (set by :func:`loading_origin` while a plugin loads). Built-ins are
declared as ``"module:Class"`` targets and imported on first use by
:func:`import_target`.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_origin = threading.local()


@contextmanager
def loading_origin(origin: str) -> Iterator[None]:
    """Attribute registrations made inside the block to ``origin`` (a plugin)."""
    previous = getattr(_origin, "value", None)
    _origin.value = origin
    try:
        yield
    finally:
        _origin.value = previous


def current_origin(cls: type) -> str:
    """The origin of a class being registered now."""
    return getattr(_origin, "value", None) or f"plugin:{cls.__module__}"


@contextmanager
def registrations_undone() -> Iterator[None]:
    """Undo, when the block ends, every registration made in it and forget the plugins
    it loaded, so a later block may load them again. For work that loads plugins in a
    process which goes on (``run_flow``, ``init``, validating several flows)."""
    from . import plugins
    from .connectors import registry as connectors
    from .steps import registry as steps

    saved = [(module, module.saved_state()) for module in (connectors, steps, plugins)]
    try:
        yield
    finally:
        for module, state in saved:
            module.restore_state(state)


def import_target(target: str) -> Any:
    """The object a ``"module:attribute"`` target names, imported now."""
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)
