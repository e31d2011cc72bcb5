"""Engine overhead per step (SPEC section 8: <= 1 ms per step with SQLite state).

A generated flow of 1,000 trivial ``check_items`` steps (10 jobs of 100 steps, each job
depending on the previous one, every step's input templated from the step before) is
run with the default SQLite state:

- in process: ``Runner.run()`` on a prepared flow, logging configured as the CLI does
  (INFO, text, to /dev/null), minus the steps' own work (``CheckItems().run()`` called
  1,000 times directly);
- end to end: ``aetherflow run`` of the 1,000-step flow minus ``aetherflow run`` of a
  one-step flow, divided by 999 (start-up, loading and state opening cancel out);
- the one-job, one-step flow end to end, beside ``python -c pass``.

Run ``python -m benchmarks.bench_engine`` from the repository root.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from .common import AETHERFLOW, PYTHON, clean_env, command_time, median_time, row

JOBS, STEPS_PER_JOB = 10, 100


def generate_flow(path: Path, jobs: int = JOBS, steps: int = STEPS_PER_JOB) -> Path:
    lines = ["version: 1", "flow: {id: engine_bench}", "jobs:"]
    for j in range(jobs):
        lines.append(f"  - id: job{j}")
        if j:
            lines.append(f"    depends_on: [job{j - 1}]")
        lines.append("    steps:")
        for s in range(steps):
            items = "\"a,b,c\"" if s == 0 else f"\"{{{{ steps.s{s - 1}.outputs.count }}}},x\""
            lines.append(f"      - {{id: s{s}, type: check_items, inputs: {{items: {items}}}}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _runner_seconds(flow: Path, state_root: Path, runs: int = 5) -> float:
    from aetherflow.core.logs import configure_logging
    from aetherflow.core.prepare import Invocation, prepare_flow
    from aetherflow.core.redaction import Scrubber
    from aetherflow.core.runner import Runner

    env = clean_env(AETHERFLOW_STATE_ROOT=str(state_root), AETHERFLOW_WORK_ROOT=str(state_root / "work"))
    sink = open(os.devnull, "w")
    configure_logging(Scrubber(), fmt="text", level="INFO", stream=sink)
    prepared = prepare_flow(Invocation(flow_path=str(flow), base_env=env))

    def once() -> None:
        result = Runner(prepared).run()
        if result.status != "SUCCESS":
            raise RuntimeError(f"benchmark flow ended {result.status}")

    try:
        return median_time(once, runs=runs)
    finally:
        logging.getLogger("aetherflow").handlers.clear()
        sink.close()


def _direct_step_seconds(count: int) -> float:
    from aetherflow.core.steps.builtin.items import CheckItems

    ctx = None  # check_items does not use its context

    def once() -> None:
        step = CheckItems
        for _ in range(count):
            step().run(ctx, step.bind_inputs({"items": "3,x"}))

    return median_time(once, runs=5)


def profile(flow: Path, state_root: Path, top: int = 25) -> str:
    """cProfile of one in-process run, cumulative time (for finding the hot path)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    _runner_seconds(flow, state_root, runs=1)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def measure() -> list[dict]:
    steps = JOBS * STEPS_PER_JOB
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        big = generate_flow(tmp_path / "engine_1000.yaml")
        one = generate_flow(tmp_path / "engine_1.yaml", jobs=1, steps=1)

        runner = _runner_seconds(big, tmp_path / "inproc")
        direct = _direct_step_seconds(steps)
        rows.append(row(
            "engine overhead per step, in process (1,000 check_items steps, SQLite state)",
            (runner - direct) / steps, None, "",
            note=f"Runner.run of the whole flow {runner * 1000:.0f} ms (median of 5) minus the steps' own work "
                 f"(CheckItems.run called directly: {direct / steps * 1e6:.1f} us/step)",
        ))

        env = clean_env(AETHERFLOW_STATE_ROOT=str(tmp_path / "cli"), AETHERFLOW_WORK_ROOT=str(tmp_path / "cli" / "work"))
        cli_big = command_time([*AETHERFLOW, "run", str(big)], runs=5, env=env)
        cli_one = command_time([*AETHERFLOW, "run", str(one)], runs=7, env=env)
        rows.append(row(
            "engine overhead per step, end to end (aetherflow run, 1,000 steps minus 1 step)",
            (cli_big - cli_one) / (steps - 1), None, "",
            note=f"aetherflow run: 1,000 steps {cli_big * 1000:.0f} ms, 1 step {cli_one * 1000:.0f} ms (medians); "
                 "includes loading and validating the bigger flow",
        ))
        python_pass = command_time([PYTHON, "-c", "pass"], env=env)
        rows.append(row(
            "one-job, one-step flow end to end (aetherflow run)",
            cli_one, python_pass, "python -c pass",
            note="median of 7 after a warm-up, SQLite state",
        ))
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    if "--profile" in sys.argv:
        with tempfile.TemporaryDirectory() as tmp:
            print(profile(generate_flow(Path(tmp) / "engine_1000.yaml"), Path(tmp)))
    else:
        started = time.perf_counter()
        for r in measure():
            print(r)
        print(f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)
