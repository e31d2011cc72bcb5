"""Options shared by several commands are declared once and read the same everywhere;
the invocation objects carry them to the core unchanged."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from aetherflow.cli.main import app
from aetherflow.cli.options import ResolveOptions, RunOptions

COMMANDS = [
    ["run"], ["validate"], ["resolve"], ["connectors", "list"], ["connectors", "show"], ["steps", "list"],
    ["runs", "list"], ["runs", "show"], ["locks", "list"], ["locks", "release"], ["graph"], ["steps", "show"],
]


def option_help(command: list[str], option: str) -> str | None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"}, terminal_width=200, max_content_width=200)
    assert result.exit_code == 0, result.output
    for line in result.output.splitlines():
        if line.strip().startswith("-") and re.search(rf"(^|\s){re.escape(option)}\b", line):  # not the examples
            return re.sub(r"\s+", " ", line.strip())
    return None


@pytest.mark.parametrize("option", ["--verbose", "--json", "--env-file", "--state", "--flow", "--profile"])
def test_a_shared_option_reads_the_same_in_every_command_that_has_it(option):
    texts = {" ".join(command): option_help(command, option) for command in COMMANDS}
    present = {text for text in texts.values() if text is not None}
    assert len(present) == 1, texts


def test_run_and_resolve_options_become_the_core_invocation():
    run = RunOptions(flow="f.yaml", profile="prod", profiles_file="p.yaml", env_files=("a.env", "b.env"), log_format="json")
    invocation = run.invocation(log_format=run.log_format)
    assert (invocation.flow_path, invocation.profile, invocation.profiles_file, list(invocation.env_files), invocation.log_format) == (
        "f.yaml", "prod", "p.yaml", ["a.env", "b.env"], "json"
    )
    assert ResolveOptions(flow="f.yaml", resources=("db",)).invocation().profile is None
