"""Timing helpers shared by the benchmark modules.

A figure is measured as the median of several runs after a warm-up, next to a baseline
measured in the same process or script on the same data. Rows are plain dicts:
``{figure, ours_s, baseline_s, baseline, peak_rss_mb, note}``.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
AETHERFLOW = [PYTHON, "-m", "aetherflow.cli"]


def median_time(action: Callable[[], object], runs: int = 5, warmup: int = 1) -> float:
    for _ in range(warmup):
        action()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def run_quietly(argv: Sequence[str], env: dict | None = None, cwd: str | Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited {proc.returncode}: {proc.stderr[-500:]}")
    return proc


def command_time(argv: Sequence[str], runs: int = 7, env: dict | None = None, cwd: str | Path | None = None) -> float:
    """Median wall time of a whole command (process start included)."""
    return median_time(lambda: run_quietly(argv, env=env, cwd=cwd), runs=runs)


def child_peak_rss_mb() -> float:
    """Peak RSS of the largest child process waited for so far, in MB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AETHERFLOW_")}
    env.update(extra)
    return env


def row(figure: str, ours_s: float | None, baseline_s: float | None, baseline: str, *, peak_rss_mb: float | None = None, note: str = "") -> dict:
    return {"figure": figure, "ours_s": ours_s, "baseline_s": baseline_s, "baseline": baseline, "peak_rss_mb": peak_rss_mb, "note": note}


def make_test_file(path: Path, size_mb: int) -> None:
    """A file of ``size_mb`` MiB of distinct blocks, without paying for that much urandom."""
    block = os.urandom(1024 * 1024)
    with open(path, "wb") as fh:
        for i in range(size_mb):
            fh.write(i.to_bytes(8, "little") + block[8:])


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started
