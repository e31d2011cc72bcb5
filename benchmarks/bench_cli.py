"""Start-up of the CLI and `resolve` of a 500-resource flow (SPEC section 8)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from .common import AETHERFLOW, PYTHON, clean_env, command_time, row


def _resource_flow(path: Path, count: int) -> Path:
    lines = ["version: 1", "flow: {id: many_resources}", "resources:"]
    for i in range(count):
        lines += [
            f"  db_{i}:",
            "    kind: db",
            "    driver: postgres",
            "    config:",
            f"      host: \"{{{{ env.BENCH_DB_HOST | default('db{i}.internal') }}}}\"",
            "      port: \"{{ env.BENCH_DB_PORT }}\"",
            f"      dbname: sales_{i}",
            "      user: etl",
            "      password: \"{{ env.BENCH_DB_PASSWORD }}\"",
            "    options: {connect_timeout: 5, application_name: bench}",
        ]
    lines += ["jobs:", "  - id: a", "    steps: [{id: s, type: check_items, inputs: {items: [1]}}]"]
    path.write_text("\n".join(lines) + "\n")
    return path


def measure() -> list[dict]:
    env = clean_env()
    rows = []
    python_pass = command_time([PYTHON, "-c", "pass"], env=env)
    import_typer = command_time([PYTHON, "-c", "import typer"], env=env)
    help_time = command_time([*AETHERFLOW, "--help"], env=env)
    rows.append(row("cli --help", help_time, python_pass, "python -c pass",
                    note=f"import typer alone: {import_typer * 1000:.0f} ms"))
    list_time = command_time([*AETHERFLOW, "connectors", "list"], env=env)
    rows.append(row("cli connectors list", list_time, import_typer, "python -c 'import typer'",
                    note=f"python -c pass: {python_pass * 1000:.0f} ms"))
    with tempfile.TemporaryDirectory() as tmp:
        flow = _resource_flow(Path(tmp) / "flow.yaml", 500)
        renv = clean_env(BENCH_DB_PORT="5432", BENCH_DB_PASSWORD="bench-password-value", AETHERFLOW_STATE_ROOT=tmp)
        resolve_time = command_time([*AETHERFLOW, "resolve", str(flow)], runs=5, env=renv)
        validate_time = command_time([*AETHERFLOW, "validate", str(flow)], runs=5, env=renv)
    rows.append(row("resolve 500 resources", resolve_time, validate_time, "validate of the same flow",
                    note="whole command, process start included"))
    return rows


if __name__ == "__main__":
    for r in measure():
        print(r)
