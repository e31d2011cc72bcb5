"""`make bench`: every SPEC section 8 figure beside its baseline, as one table.

Each benchmark module exposes ``measure() -> list[row]``. A module whose server or
baseline tool is missing reports "not measured" and why; nothing is made up. The
table is also written to ``benchmarks/results.json`` for comparison across commits.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

MODULES = ["bench_cli", "bench_engine", "bench_db", "bench_mariadb", "bench_sftp", "bench_smb", "bench_parallel"]


def _ratio(row: dict) -> float | None:
    if row.get("ours_s") is None or not row.get("baseline_s"):
        return None
    return row["ours_s"] / row["baseline_s"]


def _target(row: dict) -> tuple[str, bool | None]:
    """The SPEC target for a figure and whether this row meets it."""
    name = row["figure"].lower()
    ours, ratio, rss = row.get("ours_s"), _ratio(row), row.get("peak_rss_mb")
    if ours is None:
        return "", None
    if name.startswith("parallel:") and "sleep 1" in name:
        return "<= 1.3 s", ours <= 1.3
    if name.startswith("parallel:"):
        return "<= 0.6x sequential", ratio is not None and ratio <= 0.6
    if "--help" in name or "connectors list" in name:
        return "<= 0.30 s", ours <= 0.30
    if "one-step" in name or "one step" in name:
        return "<= 0.40 s", ours <= 0.40
    if "per step" in name or "overhead" in name:
        return "<= 1 ms/step", ours <= 0.001
    if "resolve" in name:
        return "<= 1 s", ours <= 1.0
    if "rss" in name or "memory" in name:
        return "<= 150 MB", rss is not None and rss <= 150
    if "mariadb" in name:
        return "<= 1.5x mariadb --batch", ratio is not None and ratio <= 1.5
    if "postgres" in name:
        return "<= 1.3x psql", ratio is not None and ratio <= 1.3
    if "duckdb" in name:
        return "<= 1.2x COPY", ratio is not None and ratio <= 1.2
    if "sftp" in name:
        return ">= 0.8x throughput", ratio is not None and 1 / ratio >= 0.8
    if "smb" in name:
        return ">= 0.5x throughput", ratio is not None and 1 / ratio >= 0.5
    return "", None


def _fmt_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.2f} ms" if value < 1 else f"{value:.2f} s"


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    rows: list[dict] = []
    only = set(sys.argv[1:])
    for name in MODULES:
        if only and name not in only:
            continue
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            measured = module.measure()
        except Exception as exc:
            rows.append({"figure": name, "ours_s": None, "baseline_s": None, "baseline": "", "peak_rss_mb": None,
                         "note": f"not measured: {type(exc).__name__}: {exc}"})
            traceback.print_exc(file=sys.stderr)
            continue
        print(f"{name}: {len(measured)} figure(s) in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        rows.extend(measured)

    header = ["figure", "ours (median)", "baseline (median)", "ratio", "target", "result", "peak RSS", "baseline is / note"]
    table = []
    for row in rows:
        target, passed = _target(row)
        ratio = _ratio(row)
        row.update(ratio=ratio, target=target, passed=passed)
        verdict = "not measured" if row.get("ours_s") is None else ("pass" if passed else "falls short" if passed is False else "")
        rss = f"{row['peak_rss_mb']:.0f} MB" if row.get("peak_rss_mb") else "-"
        note = "; ".join(x for x in (row.get("baseline"), row.get("note")) if x)
        table.append([row["figure"], _fmt_seconds(row.get("ours_s")), _fmt_seconds(row.get("baseline_s")),
                      f"{ratio:.2f}x" if ratio else "-", target, verdict, rss, note])
    widths = [max(len(header[i]), *(len(r[i]) for r in table)) if table else len(header[i]) for i in range(len(header))]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-+-".join("-" * w for w in widths))
    for line in table:
        print(" | ".join(c.ljust(w) for c, w in zip(line, widths)))

    out = Path(__file__).resolve().parent / "results.json"
    machine = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(), "system": platform.platform()}
    out.write_text(json.dumps({"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine, "rows": rows}, indent=2))
    print(f"\nwritten to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
