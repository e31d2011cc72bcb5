"""Fixtures of the archive tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def jail(tmp_path):
    """``(root, dest)``: an extraction destination three levels below ``root``, so an
    entry escaping it by ``..`` would still land under ``root`` where tests look."""
    root = tmp_path / "root"
    dest = root / "a" / "b" / "dest"
    dest.mkdir(parents=True)
    return root, dest
