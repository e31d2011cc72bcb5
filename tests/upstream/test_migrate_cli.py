"""``aetherflow migrate FLOW [--profiles-file F] [--write] [--json]``, and the old
``--flow-yaml`` / ``--flow-job`` flags."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.helpers import base_env, run_cli, write_flow

FIXTURES = Path(__file__).parent / "fixtures" / "flows"


def _project(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    for name in names:
        shutil.copy(FIXTURES / name, folder / name)
    return folder


def test_migrate_prints_a_diff_then_writes_and_a_second_run_is_a_no_op(tmp_path):
    folder = _project(tmp_path, "nightly.yaml", "profiles.yaml")
    flow, profiles = folder / "nightly.yaml", folder / "profiles.yaml"
    before = flow.read_text(), profiles.read_text()
    env = base_env(tmp_path)

    shown = run_cli("migrate", flow, env=env)
    assert shown.exit_code == 0, shown.output
    assert (flow.read_text(), profiles.read_text()) == before
    assert shown.stdout.startswith(f"--- {flow}\n+++ {flow} (migrated)\n@@ ")
    assert "-  locks:\n-    scope: flow\n-    ttl_seconds: 1800\n" in shown.stdout
    assert "\n+  lock: {key: nightly_orders, ttl_seconds: 1800}\n" in shown.stdout
    assert f"--- {profiles}\n+++ {profiles} (migrated)\n" in shown.stdout
    assert f"{flow}:34 at resources.orders_api.config.bearer_token: config.bearer_token is config.token here" in shown.stderr
    assert "not rewritten, for you to decide:\n" in shown.stderr
    assert f"  {flow}:43 at resources.partner.options.timeout: profile 'partner_prod' also sets options.timeout" in shown.stderr
    assert "the migrated flow validates; run again with --write to apply" in shown.stderr

    written = run_cli("migrate", flow, "--write", env=env)
    assert written.exit_code == 0, written.output
    assert written.stdout == ""
    assert f"wrote {flow}\nwrote {profiles}" in written.stderr
    migrated = flow.read_text()
    assert "# dashboards key on this id" in migrated and "bearer_token" not in migrated
    assert run_cli("validate", flow, env=env).exit_code == 0

    again = run_cli("migrate", flow, "--write", env=env)
    assert again.exit_code == 0, again.output
    assert flow.read_text() == migrated and again.stdout == ""
    assert f"{flow}: nothing to migrate" in again.stderr and "wrote" not in again.stderr


def test_migrate_json_and_what_is_left_exits_2(tmp_path):
    folder = _project(tmp_path, "gaps.yaml")
    result = run_cli("migrate", folder / "gaps.yaml", "--json", env=base_env(tmp_path))
    assert result.exit_code == 2, result.output
    document = result.json
    assert document["changed"] is True and document["valid"] is False and document["written"] == []
    (item,) = document["files"]
    assert item["file"] == str(folder / "gaps.yaml")
    assert {
        "line": 24,
        "path": "jobs[0].steps[1].type",
        "message": "step type 'excel_fill_small' is not available here",
        "hint": "the step type excel_fill_small there is excel_fill here; its inputs are template, output, cells and data (see docs/excel.md)",
    } in item["remaining"]
    assert item["diff"].startswith(f"--- {folder / 'gaps.yaml'}")
    assert {p["path"] for p in document["problems"]} == {"resources.oracle.driver", "jobs[0].steps[1].type"}


def test_an_explicit_profiles_file_is_migrated_too(tmp_path):
    folder = _project(tmp_path, "nightly.yaml")
    shutil.copy(FIXTURES / "profiles.yaml", tmp_path / "elsewhere.yaml")
    result = run_cli("migrate", folder / "nightly.yaml", "--profiles-file", tmp_path / "elsewhere.yaml", "--write", env=base_env(tmp_path))
    assert result.exit_code == 0, result.output
    assert "private_key_path: /secrets/partner_ed25519   # mounted by the job runner" in (tmp_path / "elsewhere.yaml").read_text()


def test_secrets_written_in_a_flow_are_masked_in_the_diff(tmp_path):
    flow = write_flow(tmp_path / "flow.yaml", """
version: 1
flow: {id: s}
resources:
  box:
    kind: sftp
    driver: paramiko
    config:
      host: sftp.example.test
      user: etl
      password: "Hunter2-Literal-Pw"
  dw:
    kind: db
    driver: postgres
    config: {url: "postgresql+psycopg2://etl:Url-Pass-778@db/dw"}
jobs:
  - id: a
    steps: [{id: s, type: check_items, inputs: {items: [1]}}]
""")
    for args in ((), ("--json",)):
        result = run_cli("migrate", flow, *args, env=base_env(tmp_path))
        assert result.exit_code == 0, result.output
        assert "Hunter2-Literal-Pw" not in result.output and "Url-Pass-778" not in result.output
        assert "password" in result.output and "postgresql://etl:***@db/dw" in result.output
    run_cli("migrate", flow, "--write", env=base_env(tmp_path))
    assert 'password: "Hunter2-Literal-Pw"' in flow.read_text()


def test_old_command_line_flags_name_the_command_to_type(tmp_path):
    result = run_cli("run", "--flow-yaml", "flows/nightly.yaml", "--flow-job", "extract", env=base_env(tmp_path))
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --flow-yaml and --flow-job are aetherflow-core's flags\n"
        "  hint: here write: aetherflow run flows/nightly.yaml --only extract\n"
    )
    result = run_cli("validate", "--flow-yaml=flows/nightly.yaml", "--json", env=base_env(tmp_path))
    assert result.exit_code == 2
    assert "hint: here write: aetherflow validate flows/nightly.yaml --json" in result.stderr
