"""Persisted values (watermarks) on both state backends: written only by a run that
succeeds, read by later runs as `store.<name>`, listed and repaired with `aetherflow store`."""

from __future__ import annotations

import json

from tests.conftest import PLUGINS as RUNNER_PLUGINS
from tests.state.conftest import PLUGINS, flow_yaml, make_host


def host_for(backend, **extra):
    """A runner with the state tests' steps and the runner test steps (test.echo, test.fail)."""
    host = make_host(backend, "host", **extra)
    host.env["AETHERFLOW_PLUGIN_PATHS"] = f"{PLUGINS},{RUNNER_PLUGINS}"
    return host

JOBS = """
- id: extract
  steps:
    - id: window
      type: test.echo
      inputs: {values: {since: "{{ store.last_ts | default(0) }}", until: "{{ (store.last_ts | default(0)) + 10 }}"}}
      outputs: {until: "{{ result.until }}"}
      persist: {last_ts: "{{ result.until }}", window: "{{ [result.since, result.until] }}"}
- id: load
  depends_on: [extract]
  steps:
    - id: check
      type: test.fail
      inputs: {message: load failed, succeed_on_attempt: "{{ 0 if env.BREAK_LOAD is defined else 1 }}"}
"""


def store_list(host, flow: str) -> dict:
    result = host.run("store", "list", flow, "--json")
    assert result.exit_code == 0, result.output
    return {value["name"]: value for value in result.json["values"]}


def test_a_watermark_advances_after_success_and_stays_after_a_failure(backend):
    host = host_for(backend)
    (host.root / "flow.yaml").write_text(flow_yaml("watermarks", JOBS, state=backend.state_yaml))

    first = host.run("run", "flow.yaml", "--json")
    assert first.exit_code == 0, first.output
    assert first.json["jobs"][0]["outputs"] == {"until": 10}
    assert first.json["persisted"] == {"last_ts": 10, "window": [0, 10]}
    second = host.run("run", "flow.yaml", "--json")
    assert second.json["jobs"][0]["outputs"] == {"until": 20}, "the second run read store.last_ts"

    values = store_list(host, "flow.yaml")
    assert values["last_ts"]["value"] == 20 and values["last_ts"]["run_id"] == second.json["run_id"]

    host.env["BREAK_LOAD"] = "1"
    failed = host.run("run", "flow.yaml", "--json")
    assert failed.exit_code == 1 and failed.json["status"] == "FAILED"
    assert failed.json["jobs"][0]["outputs"] == {"until": 30}, "the step ran and computed the next value"
    assert failed.json["persisted"] == {}
    values = store_list(host, "flow.yaml")
    assert values["last_ts"]["value"] == 20, "a failed run persists nothing"
    assert values["window"]["value"] == [10, 20]

    listed = host.run("store", "list", "flow.yaml")
    assert listed.exit_code == 0
    assert any(line.split()[:2] == ["last_ts", "20"] for line in listed.stdout.splitlines()), listed.stdout

    # The failed run resumed: its reused step's persist counts once the run succeeds.
    del host.env["BREAK_LOAD"]
    resumed = host.run("run", "flow.yaml", "--run-id", failed.json["run_id"], "--json")
    assert resumed.exit_code == 0, resumed.output
    assert resumed.json["persisted"]["last_ts"] == 30
    assert store_list(host, "flow.yaml")["last_ts"]["value"] == 30


def test_store_set_and_delete_repair_values(backend):
    host = host_for(backend)
    (host.root / "flow.yaml").write_text(flow_yaml("repair", JOBS, state=backend.state_yaml))

    assert host.run("store", "list", "flow.yaml", "--json").json == {"flow_id": "repair", "values": []}
    set_number = host.run("store", "set", "flow.yaml", "last_ts", "100", "--json")
    assert set_number.exit_code == 0, set_number.output
    assert set_number.json["value"] == 100 and set_number.json["run_id"] is None
    assert host.run("store", "set", "flow.yaml", "note", "2024-05-01 10:00").exit_code == 0
    values = store_list(host, "flow.yaml")
    assert (values["last_ts"]["value"], values["note"]["value"]) == (100, "2024-05-01 10:00")

    run = host.run("run", "flow.yaml", "--json")
    assert run.json["jobs"][0]["outputs"] == {"until": 110}, "the value set by hand is read"

    assert host.run("store", "delete", "flow.yaml", "last_ts").exit_code == 0
    assert "last_ts" not in store_list(host, "flow.yaml")
    missing = host.run("store", "delete", "flow.yaml", "last_ts")
    assert missing.exit_code == 2 and "no value 'last_ts' persisted for flow 'repair'" in missing.stderr
    assert "persisted names: note, window" in missing.stderr
    bad = host.run("store", "set", "flow.yaml", "not-a-name", "1")
    assert bad.exit_code == 2 and "invalid name 'not-a-name'" in bad.stderr


SECRET = "Pw-for-the-api-77"

SECRET_JOBS = """
- id: a
  steps:
    - id: login
      type: test.echo
      persist: {session: "token={{ env.API_PASSWORD }}"}
"""


def test_a_persisted_value_holding_a_secret_is_refused_not_stored(backend):
    host = host_for(backend, API_PASSWORD=SECRET)
    text = flow_yaml("secretive", SECRET_JOBS, state=backend.state_yaml).replace(
        "jobs:\n",
        'resources:\n  api: {kind: demo, driver: echo, config: {password: "{{ env.API_PASSWORD }}"}}\njobs:\n',
    )
    (host.root / "flow.yaml").write_text(text)
    result = host.run("run", "flow.yaml", "--json")
    assert result.exit_code == 2, result.output
    step = result.json["jobs"][0]["steps"][0]
    assert step["status"] == "FAILED"
    assert "persisted value 'session' contains a secret; it is not stored" in step["error"]
    assert SECRET not in result.output
    assert store_list(host, "flow.yaml") == {}

    set_secret = host.run("store", "set", "flow.yaml", "dsn", json.dumps("postgresql://u:hunter22@db/x"))
    assert set_secret.exit_code == 2 and "contains a secret" in set_secret.stderr and "hunter22" not in set_secret.output
