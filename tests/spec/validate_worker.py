"""Runs ``aetherflow validate`` in this process for each request read from stdin.

The fuzz tests send thousands of flows; starting the CLI for each would take most of
their time. One request per line: ``{"args": [...]}``; one reply per line with the exit
code, both outputs, the time taken and this process's peak resident memory during the
request (the kernel's high-water mark, reset before each request).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
import traceback
from pathlib import Path


def reset_peak_memory() -> None:
    # Writing 5 to clear_refs resets the peak resident set size (VmHWM), Linux 4.0+.
    Path("/proc/self/clear_refs").write_text("5")


def peak_memory_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    from aetherflow.cli.main import app

    replies = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        out, err = io.StringIO(), io.StringIO()
        reset_peak_memory()
        started = time.perf_counter()
        crash = None
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                app(request["args"], prog_name="aetherflow")
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:
                code, crash = -1, traceback.format_exc()
        reply = {
            "code": code,
            "stdout": out.getvalue(),
            "stderr": err.getvalue(),
            "crash": crash,
            "seconds": time.perf_counter() - started,
            "max_rss_mb": peak_memory_mb(),
        }
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    main()
