"""``migrate``: flows and profiles written for aetherflow-core 0.0.14, rewritten.

The fixtures in ``fixtures/flows`` are written in that project's style for these
tests: ``{{VAR:DEFAULT}}``, ``steps.X.Y``, ``locks:``, ``bearer_token``, ``user``,
``timeout``, SQLAlchemy URLs, ``log:`` on external.process, old step types and drivers.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

from aetherflow.core.migrate import migrate_flow, write_migration
from tests.helpers import base_env, run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "flows"


def _copy(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "project"
    folder.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(FIXTURES / name, folder / name)
    return folder


def _comments(text: str) -> list[str]:
    return [match.group(0).strip() for match in re.finditer(r"#[^\n]*", text)]


def _findings(items) -> list[tuple[int | None, str]]:
    return [(f.line, f.path) for f in items]


def test_a_migrated_flow_and_its_profiles_validate_and_resolve(tmp_path):
    folder = _copy(tmp_path, "nightly.yaml", "profiles.yaml")
    migration = migrate_flow(folder / "nightly.yaml")
    flow, profiles = migration.files
    assert migration.problems == []
    assert _findings(flow.rewritten) == [
        (7, "flow.workspace.cleanup_policy"),
        (8, "flow.workspace.root"),
        (10, "flow.workspace.layout"),
        (14, "flow.state.path"),
        (16, "flow.locks"),
        (23, "resources.warehouse.driver"),
        (25, "resources.warehouse.config.url"),
        (27, "resources.warehouse.options.pool_size"),
        (28, "resources.warehouse.options.pool_pre_ping"),
        (33, "resources.orders_api.config.base_url"),
        (34, "resources.orders_api.config.bearer_token"),
        (35, "resources.orders_api.options.timeout"),
        (35, "resources.orders_api.options.verify_ssl"),
        (41, "resources.partner.config.user"),
        (41, "resources.partner.config.user"),
        (43, "resources.partner.options.timeout"),
        (49, "resources.notify.config.user"),
        (49, "resources.notify.config.user"),
        (61, "jobs[0].steps[0].inputs.log.max_capture_kb"),
        (69, "jobs[0].steps[1].inputs.items"),
        (77, "jobs[1].steps[0].inputs.command"),
        (79, "jobs[1].steps[0].inputs.retry"),
    ]
    # The one thing left for a person: there a resource's own value won over its profile's.
    assert [(f.line, f.path, f.message) for f in flow.remaining] == [
        (
            43,
            "resources.partner.options.timeout",
            "profile 'partner_prod' also sets options.timeout: there the resource's value won, here the profile's wins",
        )
    ]
    assert _findings(profiles.rewritten) == [(4, "partner_prod.config.host"), (5, "partner_prod.config.pkey_path"), (7, "partner_prod.options.timeout")]
    text = flow.migrated
    for expected in (
        "root: \"{{ env.ORDERS_WORK_ROOT | default('/tmp/orders-work') }}\"",
        "lock: {key: nightly_orders, ttl_seconds: 1800}",
        "driver: postgres",
        'url: "postgresql://etl:{{env.DW_PASSWORD}}@dw.internal:5432/dw"',
        'token: "{{env.ORDERS_TOKEN}}"   # rotated weekly',
        "verify: false",
        "options: {timeout_seconds: 30}",
        'username: "{{ env.PARTNER_USER }}"',
        "log:\n            stdout: capture\n            stderr: capture\n          max_capture_bytes: 262144\n",
        "success:\n            exit_codes: [0]\n",
        'items: "{{steps.dump.outputs.stdout}}"',
        "command: \"echo run {{run_id}} to {{ env.TARGET | default('prod') }}\"",
    ):
        assert expected in text, expected
    for gone in ("locks:", "layout:", "pool_size", "bearer_token", "max_capture_kb", "retry:", "sqlalchemy"):
        assert gone not in text, gone

    # Nothing is written until asked; then both files are, and keep every comment.
    assert (folder / "nightly.yaml").read_text() == flow.original
    assert write_migration(migration) == [str(folder / "nightly.yaml"), str(folder / "profiles.yaml")]
    for item in (flow, profiles):
        assert _comments(Path(item.path).read_text()) == _comments(item.original)
    assert sorted(p.name for p in folder.iterdir()) == ["nightly.yaml", "profiles.yaml"]

    env = base_env(tmp_path, DW_PASSWORD="pw-in-the-url", ORDERS_TOKEN="tok-1234", PARTNER_USER="acme")
    assert run_cli("validate", folder / "nightly.yaml", env=env).exit_code == 0
    resolved = run_cli("resolve", folder / "nightly.yaml", "--json", env=env)
    assert resolved.exit_code == 0, resolved.output
    rows = {row["name"]: row for row in resolved.json["resources"]}
    assert rows["partner"]["config"] == {
        "host": "sftp.partner.test",
        "port": 22,
        "username": "acme",
        "private_key_path": "/secrets/partner_ed25519",
    }
    assert rows["partner"]["options"]["timeout_seconds"] == 45
    assert rows["orders_api"]["config"]["verify"] is False and rows["orders_api"]["config"]["token"] == "***"
    assert rows["notify"]["config"]["username"] == "robot"


def test_a_second_migrate_changes_nothing(tmp_path):
    folder = _copy(tmp_path, "nightly.yaml", "profiles.yaml")
    write_migration(migrate_flow(folder / "nightly.yaml"))
    again = migrate_flow(folder / "nightly.yaml")
    assert not again.changed
    assert all(item.rewritten == [] and item.diff() == "" for item in again.files)
    assert again.problems == []


def test_what_cannot_be_rewritten_is_kept_and_listed_with_its_line(tmp_path):
    folder = _copy(tmp_path, "gaps.yaml")
    migration = migrate_flow(folder / "gaps.yaml")
    (flow,) = migration.files
    assert [(f.line, f.path) for f in flow.remaining] == [
        (7, "resources.oracle.driver"),
        (10, "resources.drop.config.share"),
        (20, "jobs[0].steps[0].inputs.log.stdout"),
        (21, "jobs[0].steps[0].inputs.idempotency"),
        (22, "jobs[0].steps[0].inputs.retry.max_backoff_seconds"),
        (24, "jobs[0].steps[1].type"),
    ]
    hints = {f.path: f.hint for f in flow.remaining}
    assert "Oracle is reached through `driver: sqlalchemy` here, with an oracle+oracledb:// URL" in hints["resources.oracle.driver"]
    assert "prefixes used: ARCHIVE, EXPORTS" in hints["resources.drop.config.share"]
    assert hints["jobs[0].steps[0].inputs.log.stdout"] == "write log: {stdout: file:PATH}"
    assert "idempotency is {marker: PATH} here" in hints["jobs[0].steps[0].inputs.idempotency"]
    assert "its inputs are template, output, cells and data" in hints["jobs[0].steps[1].type"]
    # Kept as they were, for validate (or the step, when it runs) to point at.
    for kept in ("driver: oracledb", "log: {stdout: file}", "idempotency: {strategy: checksum}", "excel_fill_small"):
        assert kept in flow.migrated
    assert sorted(p.location.path for p in migration.problems) == ["jobs[0].steps[1].type", "resources.oracle.driver"]
    # What could be rewritten was.
    assert _findings(flow.rewritten) == [
        (3, "flow.workspace"),
        (11, "resources.drop.driver"),
        (22, "jobs[0].steps[0].inputs.retry"),
        (27, "jobs[0].steps[2].type"),
        (33, "jobs[0].steps[3].type"),
    ]
    assert "retry_on_exit_codes: [75]\n          retry_on_timeout: false\n        retry: {max_attempts: 2, delay_seconds: 0}\n" in flow.migrated


def test_the_process_contract_written_the_old_way_runs_after_migration(tmp_path):
    folder = _copy(tmp_path, "process.yaml")
    migration = migrate_flow(folder / "process.yaml")
    assert migration.problems == [] and migration.files[0].remaining == []
    write_migration(migration)
    text = (folder / "process.yaml").read_text()
    for expected in (
        'log: {stdout: capture, stderr: "file:make.log"}\n          max_capture_bytes: 65536\n',
        "atomic_dir: {work: out.tmp, publish: out}",
        "success: {exit_codes: [0], forbid_files: [out.tmp/*.err]}",
        "retry_on_exit_codes: [75]\n          retry_on_timeout: false\n        retry: {max_attempts: 2, delay_seconds: 1}\n",
        "idempotency: {marker: stamp.done}",
    ):
        assert expected in text, expected
    result = run_cli("run", folder / "process.yaml", "--json", env=base_env(tmp_path, WORK_ROOT=str(tmp_path / "w")))
    assert result.exit_code == 0, result.output
    make, stamp = result.json["jobs"][0]["steps"]
    workspace = tmp_path / "w" / "process_contract" / "build" / result.json["run_id"]
    assert make["outputs"]["stdout"] == "done\n" and make["outputs"]["published"] == str(workspace / "out")
    assert (workspace / "out" / "result.txt").read_text() == "built\n"
    assert (workspace / "make.log").read_text() == "noise\n"
    assert stamp["outputs"]["marker"] == str(workspace / "stamp.done")


def test_a_migrated_local_flow_runs(tmp_path):
    folder = _copy(tmp_path, "local.yaml")
    migration = migrate_flow(folder / "local.yaml")
    assert migration.problems == [] and migration.files[0].remaining == []
    write_migration(migration)
    text = (folder / "local.yaml").read_text()
    assert "driver: sqlite3" in text and 'path: "{{env.LEDGER_DIR}}/ledger.sqlite"' in text
    env = base_env(tmp_path, LEDGER_DIR=str(tmp_path))
    result = run_cli("run", folder / "local.yaml", "--json", env=env)
    assert result.exit_code == 0, result.output
    assert result.json["jobs"][0]["outputs"] == {"count": 3}
    with sqlite3.connect(tmp_path / "ledger.sqlite") as db:
        assert db.execute("select n from counts").fetchall() == [(3,)]


def test_unusual_layouts_are_edited_in_place(tmp_path):
    flow = tmp_path / "odd.yaml"
    flow.write_text(
        "version: 1\n"
        "flow: {id: odd, workspace: {root: '{{env.ROOT:/tmp/odd}}', layout: {a: b}}}\n"
        "resources:\n"
        "    api:\n"
        "        kind: rest\n"
        "        driver: httpx\n"
        "        config: {base_url: 'http://x', bearer_token: \"{{TOKEN}}\"}\n"
        "        options:\n"
        "            verify_ssl: false\n"
        "jobs:\n"
        "- id: a\n"
        "  steps:\n"
        "  - {id: s, type: check_items, inputs: {items: '{{env.ITEMS:a,b}}'}}\n"
    )
    migration = migrate_flow(flow)
    assert migration.problems == []
    assert migration.files[0].migrated == (
        "version: 1\n"
        "flow: {id: odd, workspace: {root: '{{ env.ROOT | default(\"/tmp/odd\") }}', cleanup_policy: on_success}}\n"
        "resources:\n"
        "    api:\n"
        "        kind: rest\n"
        "        driver: httpx\n"
        "        config: {base_url: 'http://x', token: \"{{ env.TOKEN }}\", verify: false}\n"
        "jobs:\n"
        "- id: a\n"
        "  steps:\n"
        "  - {id: s, type: check_items, inputs: {items: '{{ env.ITEMS | default(\"a,b\") }}'}}\n"
    )


def test_windows_line_endings_are_kept(tmp_path):
    flow = tmp_path / "crlf.yaml"
    flow.write_bytes((FIXTURES / "local.yaml").read_text().replace("\n", "\r\n").encode())
    migration = migrate_flow(flow)
    assert migration.problems == []
    write_migration(migration)
    data = flow.read_bytes()
    assert data.count(b"\r\n") == data.count(b"\n") and b"lock: {key: local_counts, ttl_seconds: 60}\r\n" in data
    assert not migrate_flow(flow).changed


def test_inputs_renamed_on_a_step_type_of_the_same_name(tmp_path):
    flow = tmp_path / "excel.yaml"
    flow.write_text(
        "version: 1\n"
        "flow: {id: x, workspace: {cleanup_policy: never}}\n"
        "jobs:\n"
        "  - id: a\n"
        "    steps:\n"
        "      - id: check\n"
        "        type: excel_validate_template\n"
        "        inputs:\n"
        "          template_path: report.xlsx   # from the share\n"
        "          required_names: [report_date, region]\n"
    )
    migration = migrate_flow(flow)
    assert migration.problems == []
    assert "          template: report.xlsx   # from the share\n          cells: [report_date, region]\n" in migration.files[0].migrated
    assert [f.message for f in migration.files[0].rewritten][-1] == (
        "input required_names is cells here (names are looked up as defined names (named cells), not as cell text)"
    )


def test_csv_options_of_db_extract_are_renamed_or_listed(tmp_path):
    flow = tmp_path / "extract.yaml"
    flow.write_text(
        "version: 1\n"
        "flow: {id: x, workspace: {cleanup_policy: never}}\n"
        "resources:\n"
        "  db: {kind: db, driver: sqlite3, config: {path: db.sqlite}}\n"
        "jobs:\n"
        "  - id: a\n"
        "    steps:\n"
        "      - id: dump\n"
        "        type: db_extract_stream\n"
        "        inputs:\n"
        "          resource: db\n"
        "          sql: select 1 as n\n"
        "          output: out.csv\n"
        "          delimiter: ';'\n"
        "          encoding: cp1252\n"
        "          linefeed: \"\\r\\n\"   # for the old importer\n"
        "          quotechar: \"'\"\n"
        "          quoting: all\n"
    )
    migration = migrate_flow(flow)
    (item,) = migration.files
    assert "          line_terminator: \"\\r\\n\"   # for the old importer\n          quote: \"'\"\n" in item.migrated
    assert "          delimiter: ';'\n          encoding: cp1252\n" in item.migrated
    assert [(f.line, f.path) for f in item.remaining] == [(18, "jobs[0].steps[0].inputs.quoting")]
    assert "set `escape: CHAR` to escape quotes instead" in item.remaining[0].hint
    assert [p.location.path for p in migration.problems] == ["jobs[0].steps[0].inputs.quoting"]


def test_sqlalchemy_resources_move_to_a_native_driver_or_stay(tmp_path):
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "version: 1\n"
        "flow: {id: sa}\n"
        "resources:\n"
        "  shop: {kind: db, driver: sqlalchemy, config: {url: 'mysql+pymysql://etl:{{env.PW}}@shop:3306/shop'}}\n"
        "  erp: {kind: db, driver: sqlalchemy, config: {url: 'oracle+oracledb://etl:{{env.PW}}@erp/?service_name=ERP'}}\n"
        "jobs:\n"
        "  - id: a\n"
        "    steps:\n"
        "      - {id: s, type: db_fetch, inputs: {resource: shop, sql: SELECT 1}}\n",
        encoding="utf-8",
    )
    (migrated,) = migrate_flow(flow).files
    assert [f.path for f in migrated.rewritten if f.path.startswith("resources")] == ["resources.shop.config.url", "resources.shop.driver"]
    assert migrated.remaining == []
    assert "shop: {kind: db, driver: mysql, config: {url: 'mysql://etl:{{env.PW}}@shop:3306/shop'}}" in migrated.migrated
    assert "erp: {kind: db, driver: sqlalchemy, config: {url: 'oracle+oracledb://etl:{{env.PW}}@erp/?service_name=ERP'}}" in migrated.migrated
