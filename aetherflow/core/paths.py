"""Local paths that must stay inside a directory, also through symbolic links.

A path checked as text only (``normpath``, no ``..``) can still leave its directory
through a symbolic link inside it: every containment check here compares real paths
(links resolved), so a link to ``/etc`` inside a workspace or a connector's root leads
nowhere.
"""

from __future__ import annotations

import os
from pathlib import Path


def is_within(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """True when ``path`` is ``root`` or below it, comparing the paths as given."""
    path, root = os.fspath(path), os.fspath(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def really_within(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """True when ``path``, with every symbolic link on the way resolved, lies in ``root``
    (also resolved). A path that does not exist yet is judged by its existing part."""
    return is_within(os.path.realpath(path), os.path.realpath(root))


def real_path(path: str | os.PathLike) -> Path:
    return Path(os.path.realpath(path))
