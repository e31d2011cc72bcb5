"""``external.process`` through ``aetherflow run``: a secret the resolver learnt from a
resource never reaches the console, the logs or the run document."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from tests.helpers import base_env, run_cli, write_flow
from tests.services import process_gone

SECRET = "S3cr3t-Pa55-xyz"

FLOW = """
version: 1
flow:
  id: process_secrets
  workspace:
    root: "{{ env.AETHERFLOW_WORK_ROOT }}"
resources:
  api:
    kind: rest
    driver: httpx
    config:
      base_url: http://127.0.0.1:9
      token: "{{ env.API_TOKEN }}"
jobs:
  - id: leak
    steps:
      - id: streamed
        type: external.process
        inputs:
          command: ["sh", "-c", "echo token=$API_TOKEN; echo stderr $API_TOKEN >&2"]
      - id: captured
        type: external.process
        inputs:
          command: ["sh", "-c", "echo token=$API_TOKEN; echo run=$AETHERFLOW_RUN_ID flow=$AETHERFLOW_FLOW_ID"]
          capture: true
        outputs:
          line: "{{ result.stdout.splitlines()[0] }}"
      - id: failing
        type: external.process
        inputs:
          command: "echo refused for $API_TOKEN >&2; exit 5"
          shell: true
"""


def test_secret_printed_by_a_process_is_scrubbed_everywhere(tmp_path):
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    result = run_cli("run", flow, "--json", env=base_env(tmp_path, API_TOKEN=SECRET))
    assert result.exit_code == 1, result.output
    assert SECRET not in result.stdout
    assert SECRET not in result.stderr
    doc = result.json
    steps = {s["id"]: s for s in doc["jobs"][0]["steps"]}
    assert steps["streamed"]["status"] == "SUCCESS"
    captured = steps["captured"]["outputs"]
    assert captured["stdout"].splitlines()[0] == "token=***"
    assert f"run={doc['run_id']} flow=process_secrets" in captured["stdout"]
    assert doc["jobs"][0]["outputs"]["line"] == "token=***"
    assert steps["failing"]["status"] == "FAILED"
    assert "exited with code 5" in steps["failing"]["error"]
    assert "refused for ***" in steps["failing"]["error"]
    assert "token=***" in result.stderr  # the streamed output reached the log, masked


INTERRUPT_FLOW = """
version: 1
flow:
  id: process_interrupt
  workspace:
    root: "{{ env.AETHERFLOW_WORK_ROOT }}"
jobs:
  - id: long
    steps:
      - id: tree
        type: external.process
        inputs:
          command: "sleep 60 & echo $! > {{ env.PID_FILE }}; wait"
          shell: true
          kill_grace_seconds: 2
"""


def test_interrupting_the_run_stops_the_process_tree(tmp_path):
    flow = write_flow(tmp_path / "flow.yaml", INTERRUPT_FLOW)
    pid_file = tmp_path / "grandchild.pid"
    env = base_env(tmp_path, PID_FILE=str(pid_file))
    proc = subprocess.Popen([sys.executable, "-m", "aetherflow.cli", "run", str(flow)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (pid_file.exists() and pid_file.read_text().strip()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the flow never started its process"
            time.sleep(0.02)
        grandchild = int(pid_file.read_text())
        assert not process_gone(grandchild)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert process_gone(grandchild)
    assert "process.stopped" in stderr
