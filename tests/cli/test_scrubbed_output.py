"""What the new commands print passes the scrubber: a secret the secrets provider
added to the environment, written literally in a flow, is masked in ``graph``,
``validate`` and piped ``run --json`` output."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import base_env, run_cli, write_flow

SECRETS = Path(__file__).resolve().parents[1] / "fixtures" / "secrets_provider.py"
TOKEN = "Tok-987654321-abc"

FLOW = f"""
version: 1
flow: {{id: scrubbed}}
jobs:
  - id: first
    steps: [{{id: s, type: check_items, inputs: {{items: [1]}}}}]
  - id: gated
    depends_on: [first]
    when: "'{TOKEN}' != ''"
    steps: [{{id: s, type: check_items, inputs: {{items: [1]}}}}]
"""


def secret_env(tmp_path: Path) -> dict[str, str]:
    return base_env(tmp_path, AETHERFLOW_SECRETS_PATH=str(SECRETS), ENCODED_TOKEN="enc:" + TOKEN[::-1])


def test_graph_and_validate_output_is_scrubbed(tmp_path):
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    for output_format in ("mermaid", "dot", "text"):
        result = run_cli("graph", flow, "--format", output_format, env=secret_env(tmp_path))
        assert result.exit_code == 0, result.output
        assert TOKEN not in result.output and "***" in result.stdout
    flow.write_text(FLOW.replace("items: [1]}}]\n", f"items: [1], min_count: '{TOKEN}'}}}}]\n"), encoding="utf-8")
    result = run_cli("validate", flow, env=secret_env(tmp_path))
    assert result.exit_code == 2
    assert "input 'min_count': expected integer, got string '***'" in result.stderr and TOKEN not in result.output
    as_json = run_cli("validate", flow, "--json", env=secret_env(tmp_path))
    assert TOKEN not in as_json.output and as_json.json["ok"] is False
