"""The documented import path of the engine; see :mod:`aetherflow_core`."""

from aetherflow_core import __version__

__all__ = ["__version__"]
