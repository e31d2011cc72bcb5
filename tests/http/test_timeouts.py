"""A step's timeout_seconds aborts a transfer and removes its partial file."""

from __future__ import annotations

from tests.helpers import run_cli, write_flow

DRIP = """
version: 1
flow:
  id: drip_timeout
resources:
  api: {kind: rest, driver: httpx, config: {base_url: "{{ env.API_URL }}"}}
jobs:
  - id: fetch
    steps:
      - id: slow
        type: http_download
        timeout_seconds: 1
        inputs: {resource: api, path: "/drip?count=600&interval=0.1", output: partial.bin}
"""


def test_a_transfer_over_its_timeout_is_aborted_and_leaves_no_partial_file(tmp_path, cli_env, http_srv):
    flow = write_flow(tmp_path / "flow.yaml", DRIP)
    result = run_cli("run", flow, "--json", env={**cli_env, "API_URL": http_srv.url})
    assert result.exit_code == 1, result.output
    [step] = result.json["jobs"][0]["steps"]
    assert step["status"] == "FAILED" and step["error"].startswith("step 'slow' timed out after 1s (timeout_seconds: 1)")
    assert step["duration_ms"] < 5000  # the server would drip for a minute
    workspace = next((tmp_path / "work" / "drip_timeout" / "fetch").iterdir())
    assert [p.name for p in workspace.rglob("*")] == []
