"""Shell completion: the scripts Typer prints, and the values the shell is offered,
driven through the environment variables the scripts set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, base_env, run_cli

PROFILES = """
dev:
  description: a laptop
prod:
  config: {}
staging: {}
"""


def complete(shell: str, line: str, cwd: Path, **env: str) -> list[str]:
    """What ``aetherflow`` offers when the shell asks, the cursor at the end of ``line``."""
    variables = base_env(None, _AETHERFLOW_COMPLETE=f"complete_{shell}", **env)
    if shell == "bash":  # the script joins COMP_WORDS with newlines; the word under the cursor may be empty
        words = line.split(" ")
        variables.update(COMP_WORDS="\n".join(words), COMP_CWORD=str(len(words) - 1))
    else:
        variables["_TYPER_COMPLETE_ARGS"] = line
        if shell == "fish":
            variables["_TYPER_COMPLETE_FISH_ACTION"] = "get-args"
    proc = subprocess.run([sys.executable, "-m", "aetherflow.cli"], capture_output=True, text=True, env=variables, cwd=cwd, timeout=60)
    assert proc.returncode == 0, proc.stderr
    if shell == "zsh":  # _arguments '*: :(("a" "b"))'
        return [word.strip('"') for word in proc.stdout.split("((", 1)[1].split("))", 1)[0].split()] if "((" in proc.stdout else []
    return [line.split("\t")[0] for line in proc.stdout.splitlines() if line]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "flow.yaml").write_text((ROOT / "sample_flows" / "hello.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "profiles.yaml").write_text(PROFILES, encoding="utf-8")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "profiles.yaml").write_text("eu: {}\nus: {}\n", encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_show_completion_prints_the_script_of_each_shell(shell):
    result = run_cli("--show-completion", shell)
    assert result.exit_code == 0, result.output
    assert "_AETHERFLOW_COMPLETE=complete_" + shell in result.stdout
    if shell == "bash":
        assert "complete -o default -F _aetherflow_completion aetherflow" in result.stdout


def test_install_completion_writes_the_script_where_the_shell_reads_it(tmp_path):
    result = run_cli("--install-completion", "fish", env=base_env(None, HOME=str(tmp_path)))
    assert result.exit_code == 0, result.output
    script = tmp_path / ".config" / "fish" / "completions" / "aetherflow.fish"
    assert "_AETHERFLOW_COMPLETE=complete_fish" in script.read_text(encoding="utf-8")
    unknown = run_cli("--show-completion", "tcsh")
    assert unknown.exit_code == 2 and "no completion for shell 'tcsh'" in unknown.stderr and "Traceback" not in unknown.output


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_profile_names_come_from_the_flows_profiles_file(project, shell):
    assert complete(shell, "aetherflow run flow.yaml --profile ", project) == ["dev", "prod", "staging"]
    assert complete(shell, "aetherflow resolve flow.yaml --profile st", project) == ["staging"]


def test_profile_names_follow_profiles_file_and_the_environment(project):
    assert complete("bash", "aetherflow run flow.yaml --profiles-file other/profiles.yaml --profile ", project) == ["eu", "us"]
    assert complete("bash", "aetherflow run flow.yaml --profile ", project, AETHERFLOW_PROFILES_FILE="other/profiles.yaml") == ["eu", "us"]
    # bash gives the whole line: a flow typed after the option counts too
    variables = base_env(None, _AETHERFLOW_COMPLETE="complete_bash", COMP_WORDS="aetherflow\nrun\n--profile\nd\nflow.yaml", COMP_CWORD="3")
    proc = subprocess.run([sys.executable, "-m", "aetherflow.cli"], capture_output=True, text=True, env=variables, cwd=project, timeout=60)
    assert proc.stdout.split() == ["dev"]


def test_commands_jobs_resources_step_types_and_connectors_complete(project):
    assert complete("bash", "aetherflow ru", project) == ["run", "runs"]
    assert complete("bash", "aetherflow run flow.yaml --job ", project) == ["greet", "report", "store"]
    assert complete("zsh", "aetherflow resolve flow.yaml --resource ", project) == ["local_db"]
    assert complete("bash", "aetherflow steps show db_", project) == ["db_execute", "db_extract", "db_fetch", "db_load"]
    assert complete("fish", "aetherflow connectors show db/", project) == ["db/duckdb", "db/mysql", "db/postgres", "db/sqlalchemy", "db/sqlite3"]
    assert "--profiles-file" in complete("bash", "aetherflow run flow.yaml --prof", project)


def test_a_broken_flow_or_profiles_file_offers_nothing(project):
    (project / "profiles.yaml").write_text("dev: [not, a, mapping]\n", encoding="utf-8")
    assert complete("bash", "aetherflow run flow.yaml --profile ", project) == []
    assert complete("bash", "aetherflow run missing.yaml --job ", project) == []


def test_completion_code_is_not_imported_by_the_cli_start_up():
    code = (
        "import json, sys\n"
        "from aetherflow.cli.main import app\n"
        "try:\n"
        "    app(['--help'], prog_name='aetherflow')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('aetherflow.core'))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=base_env(), timeout=60)
    assert json.loads(proc.stdout.splitlines()[-1]) == ["aetherflow.core", "aetherflow.core.errors", "aetherflow.core.redaction"]
