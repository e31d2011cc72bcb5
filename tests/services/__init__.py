"""Real servers for integration tests, started from the machine's binaries.

Each module here exposes a context manager that starts one server on 127.0.0.1 in a
temporary directory and stops it on exit; the ``conftest.py`` of a test package wraps
it in a session fixture. The benchmarks reuse the same context managers.
"""

from __future__ import annotations

import os
import socket

INSTALL_HINT = "install the test servers with `make services`"


def services_required() -> bool:
    return os.environ.get("AETHERFLOW_REQUIRE_SERVICES", "").strip().lower() in {"1", "true", "yes"}


def unavailable(reason: str, install: str = INSTALL_HINT):
    """Skip the test, or fail it when AETHERFLOW_REQUIRE_SERVICES=1 (CI)."""
    import pytest

    message = f"{reason}; {install}"
    if services_required():
        pytest.fail(f"required service unavailable: {message}", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_gone(pid: int) -> bool:
    """True when ``pid`` has exited (a zombie counts as gone; PID 1 reaps slowly here)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(") ", 1)[1].startswith("Z")
    except (FileNotFoundError, IndexError):
        return True
