"""The JSON Schema of flow and profiles files: generated, committed, and used by editors and CI."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.helpers import ROOT, base_env, check_jsonschema, run_cli, write_flow

SCHEMAS = ROOT / "schemas"


def generated(name: str) -> str:
    """The schema as `aetherflow schema NAME` prints it in a fresh process, no plugin loaded."""
    result = run_cli("schema", name, env=base_env())
    assert result.exit_code == 0, result.stderr
    return result.stdout


def errors_of(proc: subprocess.CompletedProcess) -> list[tuple[str, str]]:
    return [(e["path"], e["message"]) for e in json.loads(proc.stdout)["errors"]]


@pytest.mark.parametrize("name", ["flow", "profiles"])
def test_committed_schema_is_the_generated_one(name):
    committed = (SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8")
    assert committed == generated(name), f"schemas/{name}.schema.json is stale: run `make schemas` and commit the result"


def test_every_sample_flow_passes_check_jsonschema():
    flows = sorted((ROOT / "sample_flows").glob("*.yaml"))
    assert flows
    proc = check_jsonschema(SCHEMAS / "flow.schema.json", *flows)
    assert proc.returncode == 0, proc.stdout + proc.stderr


BAD_FLOW = """
version: 1
flow: {id: typos}
resources:
  wh: {kind: db, driver: postgres, config: {hots: db.internal, port: "{{ env.PGPORT }}"}, options: {connect_timeout: "5"}}
jobs:
  - id: extract
    steps:
      - id: count
        type: db_fetch
        inputs: {resource: wh, sql: "select 1", max_rowz: 3}
      - id: gate
        type: check_items
        inputs: {items: [1], min_count: many}
    dependz_on: []
"""


def test_check_jsonschema_rejects_mistyped_keys_at_every_level(tmp_path):
    flow = write_flow(tmp_path / "typos.yaml", BAD_FLOW)
    proc = check_jsonschema(SCHEMAS / "flow.schema.json", flow)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    found = errors_of(proc)
    messages = " | ".join(f"{path}: {message}" for path, message in found)
    assert ("$.jobs[0]", "Additional properties are not allowed ('dependz_on' was unexpected)") in found, messages
    assert ("$.jobs[0].steps[0].inputs", "Additional properties are not allowed ('max_rowz' was unexpected)") in found, messages
    assert ("$.resources.wh.config", "Additional properties are not allowed ('hots' was unexpected)") in found, messages
    assert any(path == "$.jobs[0].steps[1].inputs.min_count" for path, _ in found), messages
    # Templates and text that resolution converts (port from the environment, "5") are not errors.
    assert not any(path.endswith(("port", "connect_timeout")) for path, _ in found), messages


def test_a_template_may_stand_for_any_typed_value_and_text_converts_for_connector_keys(tmp_path):
    flow = write_flow(tmp_path / "ok.yaml", """
        version: 1
        flow: {id: ok}
        resources:
          mail: {kind: mail, driver: smtp, config: {host: localhost, port: "2525", starttls: "Yes", ssl: "{{ env.SSL }}"}}
          wh: {kind: db, driver: duckdb, options: {settings: {threads: 2}}}
        jobs:
          - id: a
            steps:
              - id: n
                type: check_items
                inputs: {items: "a,b", min_count: "{{ env.MIN | int }}"}
              - id: q
                type: db_extract
                inputs: {resource: wh, sql: "select 1", output: out.csv, format: "{{ env.FMT }}", header: null}
        """)
    proc = check_jsonschema(SCHEMAS / "flow.schema.json", flow)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    write_flow(flow, flow.read_text().replace('"Yes"', '"maybe"').replace('"{{ env.FMT }}"', "xlsx"))
    proc = check_jsonschema(SCHEMAS / "flow.schema.json", flow)
    paths = {path for path, _ in errors_of(proc)}
    assert {"$.resources.mail.config.starttls", "$.jobs[0].steps[1].inputs.format"} <= paths, proc.stdout


def test_a_step_missing_a_required_input_is_rejected(tmp_path):
    flow = write_flow(tmp_path / "missing.yaml", """
        version: 1
        flow: {id: m}
        jobs:
          - id: a
            steps:
              - {id: s, type: db_fetch, inputs: {resource: x}}
              - {id: t, type: external.process}
        """)
    found = errors_of(check_jsonschema(SCHEMAS / "flow.schema.json", flow))
    assert ("$.jobs[0].steps[0].inputs", "'sql' is a required property") in found, found
    assert ("$.jobs[0].steps[1]", "'inputs' is a required property") in found, found


def test_profiles_schema_accepts_overlays_and_rejects_typos(tmp_path):
    good = write_flow(tmp_path / "profiles.yaml", """
        dev:
          description: laptop
          config: {path: dev.duckdb}
          resources:
            wh: {options: {settings: {threads: 1}}}
        prod:
        """)
    assert check_jsonschema(SCHEMAS / "profiles.schema.json", good).returncode == 0
    bad = write_flow(tmp_path / "bad.yaml", """
        prod:
          confg: {host: x}
          resources:
            wh: {opts: {}}
        """)
    found = {path for path, _ in errors_of(check_jsonschema(SCHEMAS / "profiles.schema.json", bad))}
    assert {"$.prod", "$.prod.resources.wh"} <= found


def test_descriptions_and_defaults_come_from_the_declarations():
    from aetherflow.core.connectors.builtin.db_postgres import PostgresConnector
    from aetherflow.core.spec.json_schema import flow_schema
    from aetherflow.core.steps.builtin.db import DbFetch

    schema = flow_schema()
    steps = {rule["if"]["properties"]["type"]["const"]: rule["then"] for rule in schema["$defs"]["StepSpec"]["allOf"]}
    max_rows = steps["db_fetch"]["properties"]["inputs"]["properties"]["max_rows"]
    assert max_rows["description"] == DbFetch.inputs["max_rows"].help and max_rows["default"] == 10_000
    connectors = {
        (rule["if"]["properties"]["kind"]["const"], rule["if"]["properties"]["driver"]["const"]): rule["then"]["properties"]
        for rule in schema["$defs"]["ResourceSpec"]["allOf"]
        if "driver" in rule["if"]["properties"]
    }
    password = connectors[("db", "postgres")]["config"]["properties"]["password"]
    assert password["description"] == PostgresConnector.config_schema["password"].help + "; secret: redacted wherever shown"
    assert connectors[("db", "postgres")]["options"]["properties"]["connect_timeout"]["default"] == 10


def test_every_key_an_editor_offers_has_help():
    from aetherflow.core.spec.json_schema import flow_schema, profiles_schema

    missing = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, sub in (node.get("properties") or {}).items():
                if not sub.get("description"):
                    missing.append(f"{path}.{key}")
            for key, sub in node.items():
                walk(sub, f"{path}/{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{path}[{i}]")

    for schema in (flow_schema(), profiles_schema()):
        walk(schema, "#")
    # Schemas under `if` only select a branch; they are never offered.
    assert [m for m in missing if "/if" not in m] == []


def test_profile_model_is_the_shape_the_loader_checks():
    from aetherflow.core import profiles
    from aetherflow.core.spec.models import ProfileResourceSpec, ProfileSpec

    assert set(ProfileSpec.model_fields) == set(profiles._PROFILE_KEYS)
    assert set(ProfileResourceSpec.model_fields) == set(profiles._SECTIONS)
