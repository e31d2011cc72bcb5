"""HTTP steps through ``aetherflow run`` against the local HTTPS server."""

from __future__ import annotations

from tests.helpers import base_env, run_cli, write_flow
from tests.services.http_server import large_sha256

FLOW = """
version: 1
flow:
  id: http_flow
  workspace:
    root: "{{ env.AETHERFLOW_WORK_ROOT }}"
resources:
  api:
    kind: rest
    driver: httpx
    config:
      base_url: "{{ env.API_URL }}"
      token: "{{ env.API_TOKEN }}"
      verify: "{{ env.API_CA }}"
      headers:
        X-Api-Key: "{{ env.API_KEY }}"
        X-Client: aetherflow-tests
    options:
      timeout_seconds: "30"
jobs:
  - id: fetch
    steps:
      - id: items
        type: http_request
        inputs:
          resource: api
          path: /json
          params: {items: 4}
        outputs:
          count: "{{ result.json.count }}"
      - id: echo
        type: http_request
        inputs:
          resource: api
          method: POST
          path: /echo
          json: {count: "{{ steps.items.outputs.json.count }}", declared: "{{ job.outputs.count }}"}
      - id: blob
        type: http_download
        inputs:
          resource: api
          path: /large?size=1048576
          output: blob.bin
  - id: broken
    steps:
      - id: missing
        type: http_request
        inputs:
          resource: api
          path: /status/404
          params: {body: "no report for token {{ env.API_TOKEN }}"}
"""


def test_http_steps_run_in_a_flow_and_never_show_the_token(tmp_path, https_srv):
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    env = base_env(tmp_path, API_URL=https_srv.url, API_TOKEN=https_srv.token, API_CA=https_srv.ca_file, API_KEY="K3y-Hidden-abc")
    result = run_cli("run", flow, "--json", env=env)
    assert result.exit_code == 1, result.output
    assert https_srv.token not in result.stdout + result.stderr
    assert "K3y-Hidden-abc" not in result.stdout + result.stderr
    jobs = {job["id"]: job for job in result.json["jobs"]}
    fetch = {step["id"]: step for step in jobs["fetch"]["steps"]}
    assert jobs["fetch"]["status"] == "SUCCESS"
    assert fetch["items"]["outputs"]["json"]["count"] == 4
    echoed = fetch["echo"]["outputs"]["json"]
    assert echoed["json"] == {"count": 4, "declared": 4}  # native ints survived templating
    assert echoed["headers"]["authorization"] == "Bearer ***"  # the server echoed the token: scrubbed
    assert echoed["headers"]["x-api-key"] == "***"  # a secret-looking header name makes a secret
    assert echoed["headers"]["x-client"] == "aetherflow-tests"
    blob = fetch["blob"]["outputs"]
    assert blob["bytes"] == 1048576 and blob["sha256"] == large_sha256(1048576)
    [missing] = jobs["broken"]["steps"]
    assert missing["status"] == "FAILED"
    assert "answered 404 Not Found, expected 2xx: no report for token ***" in missing["error"]



STEP_CREDENTIALS = """
version: 1
flow: {id: step_credentials}
resources:
  api:
    kind: rest
    driver: httpx
    config:
      base_url: "{{ env.API_URL }}/"
      verify: "{{ env.API_CA }}"
jobs:
  - id: call
    steps:
      - id: echo
        type: http_request
        inputs:
          resource: api
          path: /echo
          headers: {X-Api-Key: "{{ env.STEP_KEY }}", X-Trace: visible-trace}
          params: {api_key: "{{ env.STEP_PARAM }}", page: "7"}
      - id: url
        type: http_request
        inputs:
          resource: api
          url: "{{ env.API_URL }}/status/418?access_token={{ env.URL_TOKEN }}&body=teapot+for+{{ env.URL_TOKEN }}"
"""


def test_credentials_given_in_a_steps_inputs_are_secrets(tmp_path, https_srv):
    flow = write_flow(tmp_path / "flow.yaml", STEP_CREDENTIALS)
    env = base_env(tmp_path, API_URL=https_srv.url, API_CA=https_srv.ca_file)
    env.update(STEP_KEY="Step-K3y-9876", STEP_PARAM="Step-P4ram-5432", URL_TOKEN="Url-T0ken-1111")
    result = run_cli("run", flow, "--json", "-v", "--log-format", "json", env=env)
    assert result.exit_code == 1, result.output
    secrets = ("Step-K3y-9876", "Step-P4ram-5432", "Url-T0ken-1111")
    state = (tmp_path / "state" / "state.db").read_bytes().decode("latin-1")
    for secret in secrets:
        assert secret not in result.stdout + result.stderr, secret
        assert secret not in state, secret
    echo, url = result.json["jobs"][0]["steps"]
    echoed = echo["outputs"]["json"]
    assert echoed["headers"]["x-api-key"] == "***" and echoed["headers"]["x-trace"] == "visible-trace"
    assert echoed["query"] == {"api_key": "***", "page": "7"}
    assert "access_token=***" in url["error"] and "teapot for ***" in url["error"]
