"""A decoded secret never appears in anything aetherflow writes (SPEC 4.6)."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.helpers import run_cli, write_flow

SECRETS = Path(__file__).resolve().parents[1] / "fixtures" / "secrets_provider.py"
SECRET = "S3cr3t/Pa55:w0rd+xyz"
ENCODED = "enc:" + SECRET[::-1]

FLOW = f"""
version: 1
flow:
  id: leaks
resources:
  vault:
    kind: demo
    driver: leaky
    config:
      password: "{ENCODED}"
    decode: {{config: {{password: true}}}}
jobs:
  - id: output
    steps:
      - {{id: leak, type: test.leak, inputs: {{resource: vault}}, outputs: {{again: "{{{{ result.plain }}}}"}}}}
      - {{id: echo, type: test.echo, inputs: {{values: {{copied: "{{{{ steps.leak.outputs.sentence }}}}"}}}}}}
  - id: raises
    steps:
      - {{id: leak, type: test.leak, inputs: {{resource: vault, mode: raise}}}}
  - id: crashes
    steps:
      - {{id: leak, type: test.leak, inputs: {{resource: vault, mode: crash}}}}
"""


def forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [secret, quote(secret, safe=""), json.dumps(secret)[1:-1], base64.b64encode(raw).decode()]


def assert_clean(text: str, where: str) -> None:
    for form in forms(SECRET):
        assert form not in text, f"secret form {form!r} leaked into {where}"


@pytest.fixture
def leak_env(tmp_path, cli_env):
    return {**cli_env, "AETHERFLOW_SECRETS_PATH": str(SECRETS)}


def test_decoded_secret_appears_nowhere(tmp_path, leak_env):
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    outputs = {}
    for name, args in {
        "run": [],
        "run -v": ["-v"],
        "run --json": ["--json"],
        "run json logs": ["--json", "--log-format", "json", "-v"],
    }.items():
        result = run_cli("run", flow, *args, env=leak_env)
        assert result.exit_code == 1, result.output
        assert_clean(result.stdout, f"{name} stdout")
        assert_clean(result.stderr, f"{name} stderr")
        outputs[name] = result

    doc = outputs["run --json"].json
    jobs = {job["id"]: job for job in doc["jobs"]}
    assert jobs["output"]["status"] == "SUCCESS"
    assert jobs["output"]["steps"][0]["outputs"] == {"plain": "***", "list": ["***"], "sentence": "the password is ***"}
    assert jobs["output"]["outputs"] == {"again": "***"}
    assert jobs["output"]["steps"][1]["outputs"] == {"copied": "the password is ***"}
    assert "server rejected ***" in jobs["raises"]["steps"][0]["error"]
    assert "authentication failed for '***'" in jobs["crashes"]["steps"][0]["error"]
    assert "leak.attempt" in outputs["run json logs"].stderr
    assert "Traceback" in outputs["run -v"].stderr

    for name, args in {"resolve --show": ["--show"], "resolve --json": ["--show", "--json"], "resolve --check": ["--check", "-v"]}.items():
        result = run_cli("resolve", flow, *args, env=leak_env)
        assert_clean(result.output, name)
    checked = run_cli("resolve", flow, "--check", "--json", env=leak_env)
    assert checked.exit_code == 1
    assert checked.json["resources"][0]["check"]["error"].endswith("login refused for password ***")

    state = tmp_path / "state" / "state.db"
    assert state.exists()
    assert_clean(state.read_bytes().decode("latin-1"), "state database")
    with sqlite3.connect(state) as conn:
        dump = "\n".join(conn.iterdump())
    assert_clean(dump, "state rows")
    for path in (tmp_path / "state").glob("*"):
        assert_clean(path.read_bytes().decode("latin-1"), str(path))
    for path in (tmp_path / "work").rglob("*"):
        if path.is_file():
            assert_clean(path.read_bytes().decode("latin-1"), str(path))


def test_secrets_provider_failure_stops_before_any_job(tmp_path, leak_env):
    flow = write_flow(tmp_path / "flow.yaml", FLOW.replace(ENCODED, "not-encoded-secret-value"))
    result = run_cli("run", flow, "--json", env=leak_env)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "failed to decode vault.config.password: ValueError" in result.stderr
    assert "not-encoded-secret-value" not in result.output
    assert not (tmp_path / "work").exists()


def test_decode_without_a_provider_is_an_error(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    result = run_cli("run", flow, env=cli_env)
    assert result.exit_code == 2
    assert "no secrets provider is configured" in result.stderr


def test_expand_env_values_are_secrets_too(tmp_path, leak_env):
    token = "Tok-987654321-abc"
    flow = write_flow(tmp_path / "flow.yaml", """
version: 1
flow: {id: expand}
jobs:
  - id: a
    steps:
      - {id: s, type: test.echo, inputs: {values: {token: "{{ env.API_TOKEN }}", header: "Bearer {{ env.API_TOKEN }}"}}}
""")
    result = run_cli("run", flow, "--json", env={**leak_env, "ENCODED_TOKEN": "enc:" + token[::-1]})
    assert result.exit_code == 0, result.output
    assert token not in result.output
    assert result.json["jobs"][0]["steps"][0]["outputs"] == {"token": "***", "header": "Bearer ***"}


def test_secrets_provider_by_module_name_wins_over_path(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    broken = tmp_path / "broken_provider.py"
    broken.write_text("raise RuntimeError('must not be loaded')\n")
    env = {
        **cli_env,
        "PYTHONPATH": str(SECRETS.parent),
        "AETHERFLOW_SECRETS_MODULE": "secrets_provider",
        "AETHERFLOW_SECRETS_PATH": str(broken),
    }
    result = run_cli("resolve", flow, "--show", "--json", env=env)
    assert result.exit_code == 0, result.output
    assert result.json["resources"][0]["sources"]["config.password"] == "decoded"
    missing = run_cli("resolve", flow, env={**env, "AETHERFLOW_SECRETS_MODULE": "no_such_provider_module"})
    assert missing.exit_code == 2
    assert "cannot import secrets module 'no_such_provider_module'" in missing.stderr


def run_on_terminal(args: list[str], env: dict) -> str:
    """Run the CLI with stdout and stderr on a pseudo-terminal (Rich output paths)."""
    import os
    import pty
    import subprocess
    import sys

    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "aetherflow.cli", *args], stdout=follower, stderr=follower, env={**env, "TERM": "xterm"})
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode("utf-8", "replace")


def test_terminal_output_is_scrubbed_too(tmp_path, leak_env):
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    for args in (["run", str(flow)], ["run", str(flow), "-v"], ["resolve", str(flow), "--show", "--check"]):
        text = run_on_terminal(args, leak_env)
        assert "***" in text, text
        assert "\x1b[" in text, "expected Rich output on a terminal"
        assert_clean(text, " ".join(args[:1] + args[2:]) + " on a terminal")


@pytest.mark.parametrize("how", ["path", "module"])
def test_secrets_provider_load_error_withholds_the_providers_message(tmp_path, cli_env, how):
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    provider = tmp_path / "vault_provider.py"
    provider.write_text("raise RuntimeError('cannot reach vault with token Vault-Tok-31337')\n")
    if how == "path":
        env = {**cli_env, "AETHERFLOW_SECRETS_PATH": str(provider)}
    else:
        env = {**cli_env, "PYTHONPATH": str(tmp_path), "AETHERFLOW_SECRETS_MODULE": "vault_provider"}
    for args in (["resolve", flow], ["run", flow, "--json"], ["run", flow, "-v"]):
        result = run_cli(*args, env=env)
        assert result.exit_code == 2, result.output
        assert "Vault-Tok-31337" not in result.output
        assert "RuntimeError" in result.stderr
        assert "withheld" in result.stderr


def test_credentials_in_a_base_url_query_are_masked_by_resolve_show(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", """
version: 1
flow: {id: query_credentials}
resources:
  api:
    kind: rest
    driver: httpx
    config:
      base_url: "https://api.example.test/v1?api_key={{ env.API_KEY }}&region=eu"
jobs:
  - id: a
    steps: [{id: s, type: check_items, inputs: {items: [1]}}]
""")
    env = {**cli_env, "API_KEY": "Qk3y-Hidden-7788"}
    shown = run_cli("resolve", flow, "--show", env=env)
    assert shown.exit_code == 0, shown.output
    assert "Qk3y-Hidden-7788" not in shown.output
    assert "api_key=***&region=eu" in shown.output
    document = run_cli("resolve", flow, "--show", "--json", env=env)
    [resource] = document.json["resources"]
    assert resource["config"]["base_url"] == "https://api.example.test/v1?api_key=***&region=eu"
    assert "Qk3y-Hidden-7788" not in document.output
