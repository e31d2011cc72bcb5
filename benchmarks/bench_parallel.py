"""Parallel jobs (issue: concurrent jobs).

- 8 independent jobs, each running ``sleep 1`` as an external process, with
  ``max_parallel`` 8, beside the same flow with ``max_parallel`` 1 (target: at most
  1.3 s of wall time).
- 4 independent PostgreSQL -> CSV extracts (``db_extract``, 250,000 rows each, one
  shared ``db/postgres`` resource: one connection per job thread) with ``max_parallel``
  4, beside the same flow with ``max_parallel`` 1 (target: ratio at most 0.6).

Both are measured in process: ``Runner.run()`` of a prepared flow, SQLite state,
logging configured as the CLI does (INFO, text, to /dev/null); start-up is not part of
a run. The parallel and sequential runs are interleaved, after a warm-up of each.

    python -m benchmarks.bench_parallel        (from the repository root)
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import clean_env, row

SLEEP_JOBS = 8
EXTRACT_JOBS, EXTRACT_ROWS = 4, 250_000
ROUNDS = 3

PG_TABLE = f"""
CREATE TABLE bench_parallel AS
SELECT i AS id, md5(i::text) AS name, (i * 0.37)::numeric(12,2) AS amount,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second' AS created
FROM generate_series(1, {EXTRACT_ROWS}) AS i
"""


def sleep_flow(path: Path) -> Path:
    lines = ["version: 1", "flow: {id: bench_sleep}", "jobs:"]
    for n in range(SLEEP_JOBS):
        lines += [f"  - id: sleep{n}", "    steps:", "      - {id: nap, type: external.process, inputs: {command: [sleep, '1']}}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def extract_flow(path: Path) -> Path:
    lines = [
        "version: 1",
        "flow: {id: bench_extract}",
        "resources:",
        "  warehouse:",
        "    kind: db",
        "    driver: postgres",
        "    config: {host: '{{ env.PGHOST }}', port: '{{ env.PGPORT }}', dbname: '{{ env.PGDATABASE }}',",
        "             user: '{{ env.PGUSER }}', password: '{{ env.PG_PASSWORD }}'}",
        "jobs:",
    ]
    for n in range(EXTRACT_JOBS):
        lines += [
            f"  - id: extract{n}",
            "    steps:",
            "      - {id: dump, type: db_extract, inputs: {resource: warehouse, sql: 'SELECT * FROM bench_parallel', output: rows.csv}}",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _runners(flow: Path, env: dict, settings: dict[str, int]):
    """One prepared flow per max_parallel value; each call of the returned actions is a run."""
    from aetherflow.core.prepare import Invocation, prepare_flow
    from aetherflow.core.runner import Runner

    actions = {}
    for name, parallel in settings.items():
        prepared = prepare_flow(Invocation(flow_path=str(flow), base_env=env, max_parallel=parallel))

        def once(prepared=prepared) -> None:
            result = Runner(prepared).run()
            if result.status != "SUCCESS":
                raise RuntimeError(f"benchmark flow ended {result.status}: {[(j.id, j.status, j.reason) for j in result.jobs]}")

        actions[name] = once
    return actions


def _interleaved(actions: dict, rounds: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in actions}
    for round_ in range(rounds + 1):
        for name, action in actions.items():
            started = time.perf_counter()
            action()
            if round_:  # the first round warms up
                samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in samples.items()}


def _quiet_logging():
    from aetherflow.core.logs import configure_logging
    from aetherflow.core.redaction import Scrubber

    sink = open(os.devnull, "w")
    configure_logging(Scrubber(), fmt="text", level="INFO", stream=sink)
    return sink


def _sleep_rows(tmp: Path) -> list[dict]:
    tmp.mkdir(parents=True)
    env = clean_env(AETHERFLOW_STATE_ROOT=str(tmp / "state"), AETHERFLOW_WORK_ROOT=str(tmp / "work"))
    times = _interleaved(_runners(sleep_flow(tmp / "sleep.yaml"), env, {"parallel": SLEEP_JOBS, "sequential": 1}), rounds=ROUNDS)
    return [row(
        f"parallel: {SLEEP_JOBS} jobs of sleep 1, max_parallel {SLEEP_JOBS}",
        times["parallel"], times["sequential"], f"the same flow with max_parallel 1 ({times['sequential']:.2f} s)",
        note=f"in-process Runner.run(), SQLite state; median of {ROUNDS} after a warm-up",
    )]


def _extract_rows(tmp: Path) -> list[dict]:
    from aetherflow.core.connectors.builtin.db_postgres import PostgresConnector
    from tests.services.postgres import postgres_server

    tmp.mkdir(parents=True)
    with postgres_server() as server:
        setup = PostgresConnector(config=server.config(), options={})
        setup.name = "setup"
        setup.execute(PG_TABLE)
        setup.execute("VACUUM ANALYZE bench_parallel")
        setup.close()
        env = clean_env(
            AETHERFLOW_STATE_ROOT=str(tmp / "state"),
            AETHERFLOW_WORK_ROOT=str(tmp / "work"),
            PGHOST=server.host,
            PGPORT=str(server.port),
            PGDATABASE=server.dbname,
            PGUSER=server.user,
            PG_PASSWORD=server.password,
        )
        flow = extract_flow(tmp / "extract.yaml")
        times = _interleaved(_runners(flow, env, {"parallel": EXTRACT_JOBS, "sequential": 1}), rounds=ROUNDS)
    ratio = times["parallel"] / times["sequential"]
    return [row(
        f"parallel: {EXTRACT_JOBS} postgres -> csv extracts of {EXTRACT_ROWS:,} rows, max_parallel {EXTRACT_JOBS}",
        times["parallel"], times["sequential"], "the same extracts with max_parallel 1",
        note=f"ratio {ratio:.2f}; {os.cpu_count()} CPUs shared by the server and the runner; median of {ROUNDS} after a warm-up",
    )]


def measure() -> list[dict]:
    sink = _quiet_logging()
    try:
        with tempfile.TemporaryDirectory(prefix="aetherflow-bench-parallel-") as tmp:
            rows = _sleep_rows(Path(tmp) / "sleep")
            rows += _extract_rows(Path(tmp) / "extract")
        return rows
    finally:
        logging.getLogger("aetherflow").handlers.clear()
        sink.close()


if __name__ == "__main__":
    for figure in measure():
        print(figure)
