"""Database extracts of 1,000,000 rows (SPEC section 8).

- PostgreSQL -> CSV through the ``db_extract`` step (fresh ``db/postgres`` connector per
  run: connect, ``COPY ... TO STDOUT``, write, sha256, rename) beside
  ``psql -c "\\copy (...) TO ..."`` (a fresh process per run), against the same private
  server started by ``tests/services/postgres.py``, same query, same TCP login. The note
  also times psycopg's plain per-row copy iterator, the approach the connector avoids.
- Peak RSS of a process running the 1,000,000-row extract (CSV through COPY, and Parquet
  through the generic streamed path): a child process runs the step and reports its
  ``ru_maxrss`` / ``VmHWM``; the note gives the same process's RSS before extracting.
- DuckDB -> Parquet and -> CSV through the ``db_extract`` step beside DuckDB's own
  ``COPY (...) TO`` on the same connection, in the same process.

Runs are interleaved (ours, baseline), one warm-up round, then the median of three
(seven for the quarter-second DuckDB runs).

    python -m benchmarks.bench_db        (from the repository root)
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, row

ROWS = 1_000_000
ROUNDS = 3
DUCKDB_ROUNDS = 7  # a DuckDB run takes a quarter of a second: more rounds, steadier median
WARMUP = 1

PG_TABLE = f"""
CREATE TABLE bench AS
SELECT i AS id,
       md5(i::text) AS name,
       (i * 0.37)::numeric(12,2) AS amount,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second' AS created,
       (i % 2 = 0) AS flag,
       CASE WHEN i % 10 = 0 THEN NULL ELSE E'note, with "quotes"\\tand tab ' || i END AS note
FROM generate_series(1, {ROWS}) AS i
"""
PG_QUERY = "SELECT * FROM bench"

DUCK_TABLE = f"""
CREATE TABLE bench AS
SELECT range AS id,
       md5(CAST(range AS VARCHAR)) AS name,
       CAST(range * 0.37 AS DECIMAL(12,2)) AS amount,
       TIMESTAMP '2024-01-01' + to_seconds(range) AS created,
       range % 2 = 0 AS flag
FROM range({ROWS})
"""


def _interleaved(pairs: dict[str, Callable[[], object]], rounds: int = ROUNDS) -> dict[str, float]:
    """Median seconds of each action, runs interleaved, after a warm-up round."""
    samples: dict[str, list[float]] = {name: [] for name in pairs}
    for round_ in range(WARMUP + rounds):
        for name, action in pairs.items():
            started = time.perf_counter()
            action()
            elapsed = time.perf_counter() - started
            if round_ >= WARMUP:
                samples[name].append(elapsed)
    return {name: statistics.median(values) for name, values in samples.items()}


def _step_context(workspace: Path, connectors: dict):
    from tests.helpers import step_context

    return step_context(workspace, connectors=connectors)


def _pg_extract(config: dict, workspace: Path, output: str) -> dict:
    from aetherflow.core.connectors.builtin.db_postgres import PostgresConnector
    from aetherflow.core.steps.builtin.db import DbExtract

    connector = PostgresConnector(config=config, options={})
    connector.name = "bench"
    try:
        ctx = _step_context(workspace, {"bench": connector})
        return DbExtract().run(ctx, DbExtract.bind_inputs({"resource": "bench", "sql": PG_QUERY, "output": output})).outputs
    finally:
        connector.close()


def _naive_copy(config: dict, target: Path) -> None:
    """The straightforward psycopg loop ``for block in copy: file.write(block)``."""
    import psycopg

    with psycopg.connect(autocommit=True, **config) as conn, open(target, "wb") as fh:
        with conn.cursor().copy(f"COPY ({PG_QUERY}) TO STDOUT (FORMAT csv, HEADER true)") as copy:
            for block in copy:
                fh.write(block)


def _rss_child(fmt: str, workdir: str) -> None:
    """Child process: run one extract, print peak memory as JSON on stdout."""
    from aetherflow.core.connectors.builtin.db_postgres import PostgresConnector
    from aetherflow.core.steps.builtin.db import DbExtract

    config = json.loads(os.environ["BENCH_PG_CONFIG"])
    import psycopg  # noqa: F401 - loaded before measuring the "before" figure
    import pyarrow.parquet  # noqa: F401

    connector = PostgresConnector(config=config, options={})
    connector.name = "bench"
    connector.fetchall("SELECT 1")
    before = _proc_status_mb("VmRSS")
    started = time.perf_counter()
    ctx = _step_context(Path(workdir), {"bench": connector})
    out = DbExtract().run(ctx, DbExtract.bind_inputs({"resource": "bench", "sql": PG_QUERY, "output": f"rss.{fmt}"})).outputs
    seconds = time.perf_counter() - started
    connector.close()
    peak = _proc_status_mb("VmHWM")
    print(json.dumps({"rows": out["rows"], "bytes": out["bytes"], "peak_mb": peak, "before_mb": before, "seconds": seconds}))


def _proc_status_mb(key: str) -> float:
    """A memory figure of this process from /proc/self/status, in MB.

    ``VmHWM`` is the peak resident set of this process image; ``ru_maxrss`` is not used
    because Linux carries the parent's peak over ``fork``/``exec`` into the child."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def _measure_rss(server, fmt: str, workdir: Path) -> dict:
    env = {**os.environ, "BENCH_PG_CONFIG": json.dumps(server.config()), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_db", "--rss-child", fmt, str(workdir)],
        capture_output=True, text=True, env=env, cwd=ROOT, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"rss child failed: {proc.stderr[-1000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _postgres_rows() -> list[dict]:
    from aetherflow.core.connectors.builtin.db_postgres import PostgresConnector
    from tests.services.postgres import postgres_server

    rows = []
    with postgres_server() as server, tempfile.TemporaryDirectory(prefix="aetherflow-bench-db-") as tmp:
        setup = PostgresConnector(config=server.config(), options={})
        setup.name = "setup"
        setup.execute(PG_TABLE)
        setup.execute("VACUUM ANALYZE bench")
        setup.close()
        tmp_path = Path(tmp)
        psql_out = tmp_path / "psql.csv"
        psql = server.psql_argv(f"\\copy ({PG_QUERY}) TO '{psql_out}' WITH (FORMAT csv, HEADER true)")
        env = server.psql_env()

        def run_psql():
            subprocess.run(psql, env=env, check=True, stdout=subprocess.DEVNULL)

        ours_out: dict = {}

        def run_ours():
            ours_out.update(_pg_extract(server.config(), tmp_path / "ours", "ours.csv"))

        def run_naive():
            _naive_copy(server.config(), tmp_path / "naive.csv")

        times = _interleaved({"ours": run_ours, "psql": run_psql, "naive": run_naive})
        same = Path(ours_out["path"]).read_bytes() == psql_out.read_bytes()
        rows.append(row(
            "postgres -> csv 1M rows",
            times["ours"], times["psql"], 'psql -c "\\copy (SELECT * FROM bench) TO file WITH (FORMAT csv, HEADER true)"',
            note=f"db_extract step incl. connect, sha256 and rename; {ours_out['bytes'] / 1e6:.1f} MB; "
                 f"{'byte-identical to psql output' if same else 'OUTPUT DIFFERS from psql'}; for comparison, "
                 f"psycopg's per-row copy iterator writing the file (no hash): {times['naive']:.3f} s "
                 f"({times['naive'] / times['psql']:.2f}x psql)",
        ))
        for fmt in ("csv", "parquet"):
            child = _measure_rss(server, fmt, tmp_path / f"rss-{fmt}")
            rows.append(row(
                f"postgres -> {fmt} 1M rows peak RSS",
                child["seconds"], None, "",
                peak_rss_mb=child["peak_mb"],
                note=f"peak = VmHWM of a child process running the db_extract step; {child['before_mb']:.0f} MB resident "
                     f"after imports and connect; {child['bytes'] / 1e6:.1f} MB written in {child['seconds']:.2f} s"
                     + ("" if fmt == "csv" else " (generic path: chunked cursor.stream + pyarrow)"),
            ))
    return rows


def _duckdb_rows() -> list[dict]:
    from aetherflow.core.connectors.builtin.db_duckdb import DuckDBConnector
    from aetherflow.core.steps.builtin.db import DbExtract

    rows = []
    with tempfile.TemporaryDirectory(prefix="aetherflow-bench-duck-") as tmp:
        tmp_path = Path(tmp)
        connector = DuckDBConnector(config={"path": str(tmp_path / "bench.duckdb")}, options={})
        connector.name = "duck"
        connector.execute(DUCK_TABLE)
        ctx = _step_context(tmp_path / "ctx", {"duck": connector})
        conn = connector.connect()
        for fmt in ("parquet", "csv"):
            own_target = tmp_path / f"own.{fmt}"
            options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true, DELIMITER ','"
            inputs = DbExtract.bind_inputs({"resource": "duck", "sql": "SELECT * FROM bench", "output": f"ours.{fmt}"})

            def run_ours():
                DbExtract().run(ctx, inputs)

            def run_copy():
                conn.execute(f"COPY (SELECT * FROM bench) TO '{own_target}' ({options})")

            times = _interleaved({"ours": run_ours, "copy": run_copy}, DUCKDB_ROUNDS)
            rows.append(row(
                f"duckdb -> {fmt} 1M rows",
                times["ours"], times["copy"], f"COPY (SELECT * FROM bench) TO file ({options}) on the same connection",
                note="db_extract step incl. DESCRIBE, sha256 and rename; 5 columns",
            ))
        connector.close()
    return rows


def measure() -> list[dict]:
    return _postgres_rows() + _duckdb_rows()


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--rss-child":
        _rss_child(sys.argv[2], sys.argv[3])
        return 0
    for item in measure():
        ours = item["ours_s"]
        base = item["baseline_s"]
        ratio = f"{ours / base:.2f}x" if ours and base else "-"
        rss = f"{item['peak_rss_mb']:.0f} MB" if item["peak_rss_mb"] else "-"
        print(f"{item['figure']:<36} ours {ours:.3f} s  baseline {base if base is None else f'{base:.3f} s'}  "
              f"ratio {ratio}  peak RSS {rss}\n    baseline: {item['baseline'] or '-'}\n    note: {item['note']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
