"""Start-up stays light: no driver is imported by --help or connectors list (SPEC 2, 8)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import base_env, run_cli

DRIVERS = ["paramiko", "psycopg", "duckdb", "smbprotocol", "smbclient", "httpx", "pyarrow", "sqlalchemy", "pymysql", "MySQLdb"]

PROBE = """
import json, sys
{action}
print(json.dumps(sorted(m for m in {drivers} if m in sys.modules)))
"""


def imported_drivers(action: str) -> list[str]:
    code = PROBE.format(action=action, drivers=DRIVERS)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=base_env())
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_in_process(*args: str) -> str:
    return (
        "import contextlib, io\n"
        "from aetherflow.cli.main import app\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        app({list(args)!r})\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code in (0, None), exc.code\n"
    )


def test_importing_the_cli_imports_no_driver():
    assert imported_drivers("import aetherflow.cli.main") == []


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("connectors", "list"),
        ("connectors", "list", "--json"),
        ("connectors", "show", "db/postgres"),
        ("connectors", "show", "db/mysql"),
        ("steps", "list"),
        ("steps", "show", "db_extract"),
        ("--version",),
    ],
    ids=lambda a: " ".join(a),
)
def test_cheap_commands_import_no_driver(args):
    assert imported_drivers(run_in_process(*args)) == []


def test_version_prints_the_package_version():
    from aetherflow.core import __version__

    result = run_cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"aetherflow {__version__}"


def test_help_lists_the_commands():
    result = run_cli("--help")
    assert result.exit_code == 0
    for command in ("run", "validate", "resolve", "connectors", "steps"):
        assert f"  {command} " in result.stdout


def test_usage_error_exits_2_without_traceback():
    result = run_cli("run")
    assert result.exit_code == 2
    assert "Missing argument 'FLOW'" in result.stderr and "Traceback" not in result.output
    bad = run_cli("run", "x.yaml", "--log-format", "xml")
    assert bad.exit_code == 2 and "--log-format 'xml' is not supported" in bad.stderr


def test_connectors_list_shows_every_builtin_with_availability():
    result = run_cli("connectors", "list", "--json")
    assert result.exit_code == 0
    keys = {(r["kind"], r["driver"]) for r in result.json}
    assert {("db", "postgres"), ("db", "sqlite3"), ("db", "duckdb"), ("rest", "httpx"), ("mail", "smtp"),
            ("sftp", "paramiko"), ("smb", "smbprotocol"), ("fs", "local"), ("archive", "zipfile"), ("archive", "tar")} <= keys
    for row in result.json:
        assert set(row) >= {"kind", "driver", "class", "origin", "available", "requires", "summary"}
        assert row["origin"] == "builtin" and row["available"] is True
        assert row["config_schema"], f"{row['kind']}/{row['driver']} declares no config schema"
    kind = run_cli("connectors", "list", "--kind", "db", "--json")
    assert {r["driver"] for r in kind.json} == {"duckdb", "mysql", "postgres", "sqlalchemy", "sqlite3"}
    unknown = run_cli("connectors", "list", "--kind", "dbb")
    assert unknown.exit_code == 2 and "did you mean 'db'" in unknown.stderr
