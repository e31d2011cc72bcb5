"""Writing files atomically: a hidden ``.name.part-xxxx`` sibling, renamed into place.

Every file aetherflow creates -- downloads, extracts, archives, saved HTTP bodies,
uploads to a server -- is first written under a temporary name beside its target and
renamed when it is complete, so a reader never sees half a file and a failure leaves
nothing behind under the final name. Local files use :func:`atomic_path` or
:func:`atomic_open`; remote files use the same temporary name (:func:`partial_name`).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

#: What marks a temporary name: ``.name.part-`` followed by hex digits.
PARTIAL_MARK = ".part-"

_PARTIAL = re.compile(r"^\.(?P<name>.+)\.part-[0-9a-f]+$")


def partial_name(name: str) -> str:
    """The hidden temporary name a file called ``name`` is written under first."""
    return f".{name}{PARTIAL_MARK}{secrets.token_hex(4)}"


def display_name(path: str | os.PathLike) -> str:
    """The file name to show in messages: a temporary ``.name.part-xxxx`` shows as ``name``."""
    name = Path(path).name
    match = _PARTIAL.match(name)
    return match.group("name") if match else name


@contextmanager
def atomic_path(target: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """A temporary path beside ``target`` to write to, renamed to ``target`` when the
    block ends and removed when it raises. Missing parent directories are created.

    With ``overwrite=False`` an existing ``target`` fails with :class:`FileExistsError`
    at the rename, also one created while the block ran (a hard link never replaces).
    """
    final = Path(target)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / partial_name(final.name)
    try:
        yield tmp
        if overwrite:
            os.replace(tmp, final)
        else:
            os.link(tmp, final)
            tmp.unlink()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(target: str | os.PathLike, *, overwrite: bool = True) -> Iterator[IO[bytes]]:
    """A binary file to write ``target`` through (see :func:`atomic_path`): closed and
    renamed into place when the block ends, removed when it raises."""
    with atomic_path(target, overwrite=overwrite) as tmp, open(tmp, "wb") as fh:
        yield fh
