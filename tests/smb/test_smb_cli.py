"""An SMB resource through the resolver and the CLI: values from the environment are
coerced, ``resolve --check`` logs in for real, and the password never shows."""

from __future__ import annotations

from tests.helpers import base_env, run_cli, write_flow
from tests.services.smbd import TEST_PASSWORD

FLOW = """
    version: 1
    flow:
      id: smb_check
      workspace: {root: "{{ env.AETHERFLOW_WORK_ROOT }}"}
    resources:
      nas:
        kind: smb
        driver: smbprotocol
        config:
          server: "{{ env.SMB_SERVER }}"
          share: "{{ env.SMB_SHARE }}"
          port: "{{ env.SMB_PORT }}"
          username: "{{ env.SMB_USER }}"
          password: "{{ env.SMB_PASSWORD }}"
        options: {encrypt: "{{ env.SMB_ENCRYPT }}", timeout_seconds: 10}
    jobs:
      - id: noop
        steps:
          - {id: gate, type: check_items, inputs: {items: [1]}}
"""


def smb_env(tmp_path, smbd, password: str, encrypt: str = "false") -> dict[str, str]:
    return base_env(
        tmp_path,
        SMB_SERVER=smbd.server,
        SMB_SHARE=smbd.share,
        SMB_PORT=str(smbd.port),
        SMB_USER=smbd.username,
        SMB_PASSWORD=password,
        SMB_ENCRYPT=encrypt,
    )


def test_resolve_check_logs_in_to_the_share(tmp_path, smbd):
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    result = run_cli("resolve", flow, "--check", "--show", "--json", env=smb_env(tmp_path, smbd, TEST_PASSWORD, "true"))
    assert result.exit_code == 0, result.output
    (resource,) = result.json["resources"]
    assert resource["check"]["ok"] is True
    assert resource["config"]["port"] == smbd.port  # "12345" from the environment became an integer
    assert resource["options"]["encrypt"] is True
    assert TEST_PASSWORD not in result.output


def test_resolve_check_with_a_wrong_password_fails_without_showing_it(tmp_path, smbd):
    wrong = "Wr0ng-S3cr3t-Pa55-xyz"
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    result = run_cli("resolve", flow, "--check", env=smb_env(tmp_path, smbd, wrong))
    assert result.exit_code == 1
    assert "nas" in result.output and "logon failure" in result.output
    assert wrong not in result.output
