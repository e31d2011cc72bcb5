"""MariaDB -> CSV of 1,000,000 rows (issue 16).

The ``db_extract`` step on a fresh ``db/mysql`` connector per run (connect, stream the
unbuffered result, write CSV, sha256, rename) beside the MariaDB command-line client's
``mariadb --batch -e "SELECT ..." > file`` (a fresh process per run, tab-separated
output without quoting: the cheapest dump the client makes), against the same private
server started by ``tests/services/mariadb.py``, same query, same TCP login.

Ours runs with each DB-API driver: mysqlclient (C; db/mysql's choice when installed)
for the figure, PyMySQL (pure Python) in the note. Runs are interleaved, one warm-up
round, then the median of three.

    python -m benchmarks.bench_mariadb        (from the repository root)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_db import _interleaved, _step_context
from benchmarks.common import row

ROWS = 1_000_000
QUERY = "SELECT * FROM bench"

TABLE = f"""
CREATE TABLE bench (id INT PRIMARY KEY, name CHAR(32), amount DECIMAL(12,2), created DATETIME, flag BOOLEAN, note TEXT)
  CHARACTER SET utf8mb4;
INSERT INTO bench
SELECT seq, MD5(seq), seq * 0.37, TIMESTAMP('2024-01-01') + INTERVAL seq SECOND, seq % 2 = 0,
       IF(seq % 10 = 0, NULL, CONCAT('note, with "quotes"\\tand tab ', seq))
FROM seq_1_to_{ROWS};
"""


def _extract(config: dict, workspace: Path) -> dict:
    from aetherflow.core.connectors.builtin.db_sqlalchemy import MySQLConnector
    from aetherflow.core.steps.builtin.db import DbExtract

    connector = MySQLConnector(config=config, options={})
    connector.name = "bench"
    try:
        ctx = _step_context(workspace, {"bench": connector})
        return DbExtract().run(ctx, DbExtract.bind_inputs({"resource": "bench", "sql": QUERY, "output": "ours.csv"})).outputs
    finally:
        connector.close()


def measure() -> list[dict]:
    import importlib.util

    from tests.services.mariadb import mariadb_server

    if importlib.util.find_spec("MySQLdb") is None:
        raise RuntimeError("mysqlclient is not installed: pip install 'aetherflow[mysql-fast]'")
    with mariadb_server() as server, tempfile.TemporaryDirectory(prefix="aetherflow-bench-maria-") as tmp:
        server.admin(f"USE {server.database};{TABLE}")
        tmp_path = Path(tmp)
        client_out = tmp_path / "client.tsv"
        argv = server.client_argv("--batch", "-e", QUERY)
        env = server.client_env()

        def run_client():
            with open(client_out, "wb") as fh:
                subprocess.run(argv, env=env, check=True, stdout=fh)

        outputs: dict[str, dict] = {}

        def ours(client: str):
            def run():
                outputs[client] = _extract(server.config(client=client), tmp_path / client)

            return run

        times = _interleaved({"mysqlclient": ours("mysqlclient"), "client": run_client, "pymysql": ours("pymysql")})
        same = Path(outputs["mysqlclient"]["path"]).read_bytes() == Path(outputs["pymysql"]["path"]).read_bytes()
        return [row(
            "mariadb -> csv 1M rows",
            times["mysqlclient"], times["client"], f'mariadb --batch -e "{QUERY}" > file',
            note=f"db_extract step with db/mysql on mysqlclient, incl. connect, sha256 and rename; "
                 f"{outputs['mysqlclient']['bytes'] / 1e6:.1f} MB CSV ({client_out.stat().st_size / 1e6:.1f} MB TSV from the client); "
                 f"on PyMySQL: {times['pymysql']:.2f} s ({times['pymysql'] / times['client']:.2f}x), "
                 f"{'the same bytes' if same else 'OUTPUT DIFFERS between the drivers'}",
        )]


def main() -> int:
    for item in measure():
        print(f"{item['figure']}: ours {item['ours_s']:.3f} s, baseline {item['baseline_s']:.3f} s "
              f"({item['ours_s'] / item['baseline_s']:.2f}x)\n    baseline: {item['baseline']}\n    note: {item['note']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
