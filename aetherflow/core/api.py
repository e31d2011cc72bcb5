"""``aetherflow.core.api`` is :mod:`aetherflow_core.api` (same objects, not copies)."""

from aetherflow_core.api import *  # noqa: F403
from aetherflow_core.api import __all__, __dir__, __getattr__  # noqa: F401
