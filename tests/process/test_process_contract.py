"""The ``external.process`` contract, one key at a time, with real child processes:
``success`` (exit codes, required and forbidden files), ``idempotency.marker``,
``atomic_dir``, ``retry_on_exit_codes`` / ``retry_on_timeout`` and ``log``."""

from __future__ import annotations

import json

import pytest

from aetherflow.core.errors import StepError, StepInputError, retryable
from aetherflow.core.steps.base import STEP_SKIPPED, STEP_SUCCESS
from aetherflow.core.steps.builtin.process import ExternalProcess
from aetherflow.core.steps.builtin.process_contract import WORK_SENTINEL
from tests.helpers import base_env, run_cli, write_flow

from .conftest import SECRET


@pytest.fixture
def step(make_ctx):
    """Run the step; returns the whole StepResult."""

    def run(ctx=None, **inputs):
        ctx = ctx or make_ctx()
        return ExternalProcess().run(ctx, ExternalProcess.bind_inputs(inputs))

    return run


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


# -- success ------------------------------------------------------------------------------------


def test_success_exit_codes_allow_other_codes(step):
    result = step(command=sh("exit 3"), success={"exit_codes": [0, 3]})
    assert result.outputs["exit_code"] == 3
    with pytest.raises(StepError, match=r"exited with code 4; allowed exit codes: \[0, 3\]"):
        step(command=sh("exit 4"), success={"exit_codes": [0, 3]})


def test_exit_codes_given_twice_is_an_input_error(step):
    with pytest.raises(StepInputError, match="give the allowed exit codes once"):
        step(command=["true"], success={"exit_codes": [0]}, success_exit_codes=[0, 1])


def test_unknown_key_in_success_is_an_input_error_with_a_suggestion(step):
    with pytest.raises(StepInputError, match="unknown key 'require_file' in input 'success' \\(did you mean 'require_files'\\?\\)"):
        step(command=["true"], success={"require_file": ["x"]})


def test_required_files_must_match_after_exit(step, make_ctx):
    ctx = make_ctx()
    ok = step(ctx, command=sh("mkdir -p out && echo 1 > out/part-0.csv"), success={"require_files": ["out/*.csv"]})
    assert ok.status == STEP_SUCCESS
    with pytest.raises(StepError, match=r"success checks failed: required 'out/_SUCCESS' matches no file"):
        step(ctx, command=sh("mkdir -p out && echo 1 > out/part-1.csv"), success={"require_files": ["out/*.csv", "out/_SUCCESS"]})


def test_forbidden_files_fail_the_step_naming_what_matched(step, make_ctx):
    ctx = make_ctx()
    with pytest.raises(StepError, match=r"forbidden 'out/\*\*/\*\.tmp' matches '.*/out/deep/x\.tmp'"):
        step(ctx, command=sh("mkdir -p out/deep && touch out/deep/x.tmp out/ok.csv"), success={"forbid_files": ["out/**/*.tmp"]})
    ok = step(ctx, command=sh("rm out/deep/x.tmp"), success={"forbid_files": ["out/**/*.tmp"]})
    assert ok.status == STEP_SUCCESS


# -- idempotency ----------------------------------------------------------------------------------


def test_marker_is_written_on_success_and_skips_the_next_run_with_a_reason(step, make_ctx, tmp_path, logs):
    marker = tmp_path / "markers" / "load-2024-05-01.done"
    counter = tmp_path / "runs.txt"
    inputs = {"command": sh(f"echo ran >> {counter}"), "idempotency": {"marker": str(marker)}}
    first = step(**inputs)
    assert first.status == STEP_SUCCESS
    assert first.outputs["marker"] == str(marker) and first.outputs["skipped"] is False
    written = json.loads(marker.read_text())
    assert written["run_id"] == "test-run" and written["step_id"] == "test_step" and written["exit_code"] == 0

    second = step(**inputs)
    assert second.status == STEP_SKIPPED
    assert second.outputs["skipped"] is True
    assert second.outputs["reason"].startswith(f"marker {str(marker)!r} exists (written by run test-run at ")
    assert counter.read_text() == "ran\n"  # the command ran once
    [skipped] = logs.events("process.skipped")
    assert skipped["reason"] == second.outputs["reason"]


def test_marker_is_not_written_when_the_command_fails(step, tmp_path):
    marker = tmp_path / "m.done"
    with pytest.raises(StepError):
        step(command=sh("exit 1"), idempotency={"marker": str(marker)})
    assert not marker.exists()


def test_marker_whose_required_files_vanished_runs_again(step, tmp_path, logs):
    marker, output = tmp_path / "m.done", tmp_path / "out.csv"
    inputs = {"command": sh(f"echo x > {output}"), "idempotency": {"marker": str(marker)}, "success": {"require_files": [str(output)]}}
    step(**inputs)
    output.unlink()
    again = step(**inputs)
    assert again.status == STEP_SUCCESS and output.exists()
    [ignored] = logs.events("process.marker_ignored")
    assert "matches no file" in ignored["reason"]


# -- atomic_dir ------------------------------------------------------------------------------------


def test_atomic_dir_publishes_the_work_directory_on_success(step, tmp_path):
    work, publish = tmp_path / "stage" / "out.work", tmp_path / "final" / "out"
    result = step(
        command=sh('echo "$AETHERFLOW_OUTPUT_DIR" > "$AETHERFLOW_OUTPUT_DIR/where.txt" && touch "$AETHERFLOW_OUTPUT_DIR/_SUCCESS"'),
        atomic_dir={"work": str(work), "publish": str(publish)},
        success={"require_files": [str(publish / "_SUCCESS")]},  # looked up in work before publishing
    )
    assert result.outputs["published"] == str(publish)
    assert (publish / "where.txt").read_text().strip() == str(work)
    assert sorted(p.name for p in publish.iterdir()) == ["_SUCCESS", "where.txt"]  # no sentinel
    assert not work.exists()


def test_atomic_dir_is_not_published_when_the_process_fails(step, tmp_path):
    work, publish = tmp_path / "out.work", tmp_path / "out"
    publish.mkdir()
    (publish / "yesterday.csv").write_text("old")
    with pytest.raises(StepError, match="exited with code 2"):
        step(command=sh('echo half > "$AETHERFLOW_OUTPUT_DIR/today.csv"; exit 2'), atomic_dir={"work": str(work), "publish": str(publish)})
    assert [p.name for p in publish.iterdir()] == ["yesterday.csv"]  # untouched
    assert (work / "today.csv").read_text() == "half\n"  # kept for inspection


def test_atomic_dir_is_not_published_when_a_success_check_fails(step, tmp_path):
    work, publish = tmp_path / "w", tmp_path / "p"
    with pytest.raises(StepError, match=r"matches no file.*nothing was published"):
        step(command=sh('touch "$AETHERFLOW_OUTPUT_DIR/data.csv"'), atomic_dir={"work": str(work), "publish": str(publish)},
             success={"require_files": [str(publish / "_SUCCESS")]})
    assert not publish.exists()


def test_atomic_dir_replaces_an_earlier_publication_and_a_retry_starts_empty(step, tmp_path):
    work, publish = tmp_path / "w", tmp_path / "p"
    spec = {"work": str(work), "publish": str(publish)}
    step(command=sh('touch "$AETHERFLOW_OUTPUT_DIR/a"'), atomic_dir=spec)
    with pytest.raises(StepError):
        step(command=sh('touch "$AETHERFLOW_OUTPUT_DIR/leftover"; exit 1'), atomic_dir=spec)
    step(command=sh('seen=$(ls -A "$AETHERFLOW_OUTPUT_DIR"); echo "$seen" > "$AETHERFLOW_OUTPUT_DIR/seen"'), atomic_dir=spec)
    assert sorted(p.name for p in publish.iterdir()) == ["seen"]
    assert (publish / "seen").read_text().split() == [WORK_SENTINEL]  # the leftover was emptied
    assert not any(p.name.startswith(".p.old-") for p in tmp_path.iterdir())


def test_atomic_dir_never_empties_a_directory_it_did_not_create(step, tmp_path):
    work = tmp_path / "precious"
    work.mkdir()
    (work / "keep.txt").write_text("mine")
    with pytest.raises(StepError, match="already exists and was not created by this step"):
        step(command=["true"], atomic_dir={"work": str(work), "publish": str(tmp_path / "p")})
    assert (work / "keep.txt").read_text() == "mine"


def test_atomic_dir_defaults_the_work_directory_beside_publish(step, tmp_path):
    publish = tmp_path / "p"
    step(command=["sh", "-c", 'test "$AETHERFLOW_OUTPUT_DIR" = "$0" && touch "$AETHERFLOW_OUTPUT_DIR/x"', str(tmp_path / ".p.work")],
         atomic_dir={"publish": str(publish)})
    assert (publish / "x").exists()


def test_atomic_dir_work_inside_publish_is_an_input_error(step, tmp_path):
    with pytest.raises(StepInputError, match="must be separate directories"):
        step(command=["true"], atomic_dir={"work": str(tmp_path / "p" / "w"), "publish": str(tmp_path / "p")})


# -- retry_on_exit_codes / retry_on_timeout ---------------------------------------------------------


def test_exit_codes_outside_retry_on_exit_codes_are_final(step):
    with pytest.raises(StepError, match=r"not retried: exit code 2 is not in retry_on_exit_codes \[75\]") as caught:
        step(command=sh("exit 2"), retry_on_exit_codes=[75])
    assert not retryable(caught.value)
    with pytest.raises(StepError) as listed:
        step(command=sh("exit 75"), retry_on_exit_codes=[75])
    assert retryable(listed.value)


def test_without_retry_on_exit_codes_every_failure_stays_retryable(step):
    with pytest.raises(StepError) as caught:
        step(command=sh("exit 2"))
    assert retryable(caught.value)


def test_retry_on_timeout_false_makes_a_timeout_final(step):
    with pytest.raises(StepError, match="timed out.*not retried: retry_on_timeout is false") as caught:
        step(command=["sleep", "5"], timeout_seconds=0.2, kill_grace_seconds=1, retry_on_timeout=False)
    assert not retryable(caught.value)


def test_a_code_both_allowed_and_retried_is_an_input_error(step):
    with pytest.raises(StepInputError, match=r"exit codes \[3\] are both allowed"):
        step(command=["true"], success={"exit_codes": [0, 3]}, retry_on_exit_codes=[3])


# -- log ----------------------------------------------------------------------------------------------


def test_both_streams_to_one_file_are_scrubbed_and_kept_whole(step, make_ctx):
    ctx = make_ctx(env={"PATH": "/usr/bin:/bin", "TOKEN": SECRET})
    result = step(ctx, command=sh('for i in 1 2 3; do echo "out $i $TOKEN"; echo "err $i" >&2; done'),
                  log={"stdout": "file:logs/job.log", "stderr": "file:logs/job.log"})
    text = (ctx.workspace / "logs" / "job.log").read_text()
    assert SECRET not in text
    assert sorted(text.splitlines()) == sorted([f"out {i} ***" for i in (1, 2, 3)] + [f"err {i}" for i in (1, 2, 3)])
    assert result.outputs["stdout"] is None


def test_stdout_captured_while_stderr_goes_to_the_log(step, logs):
    result = step(command=sh("echo data; echo progress >&2"), log={"stdout": "capture", "stderr": "log"})
    assert result.outputs["stdout"] == "data\n" and result.outputs["stderr"] is None
    assert [(e["stream"], e["line"]) for e in logs.events("process.output")] == [("stderr", "progress")]


def test_discarded_stderr_is_not_read_and_the_error_says_so(step):
    with pytest.raises(StepError, match=r"stderr was not read \(log.stderr: discard\)"):
        step(command=sh("echo lost >&2; exit 1"), log={"stderr": "discard"})


def test_file_output_of_a_failing_command_still_feeds_the_error_tail(step, make_ctx):
    ctx = make_ctx()
    with pytest.raises(StepError, match="stderr ends with: disk full"):
        step(ctx, command=sh("echo disk full >&2; exit 1"), log={"stderr": "file:err.log"})
    assert (ctx.workspace / "err.log").read_text() == "disk full\n"


def test_unknown_stream_mode_and_capture_with_log_are_input_errors(step):
    with pytest.raises(StepInputError, match="'log.stdout' is 'captur' \\(did you mean 'capture'\\?\\)"):
        step(command=["true"], log={"stdout": "captur"})
    with pytest.raises(StepInputError, match="either capture: true or log"):
        step(command=["true"], capture=True, log={"stdout": "capture"})
    with pytest.raises(StepInputError, match="'file:' without a path"):
        step(command=["true"], log={"stderr": "file:"})


# -- through the runner: retries and re-runs ------------------------------------------------------------

FLOW = """
version: 1
flow:
  id: contract
  workspace: {root: "{{ env.AETHERFLOW_WORK_ROOT }}", cleanup_policy: never}
jobs:
  - id: j
    steps:
      - id: flaky
        type: external.process
        retry: {max_attempts: 3}
        inputs:
          command: ["sh", "-c", "echo x >> {counter}; test $(wc -l < {counter}) -ge 2 || exit 75"]
          retry_on_exit_codes: [75]
      - id: broken
        type: external.process
        retry: {max_attempts: 3}
        inputs:
          command: ["sh", "-c", "echo x >> {counter2}; exit 2"]
          retry_on_exit_codes: [75]
"""


def test_retry_policy_repeats_only_the_listed_exit_codes(tmp_path):
    flow = write_flow(tmp_path / "flow.yaml", FLOW.replace("{counter}", str(tmp_path / "c1")).replace("{counter2}", str(tmp_path / "c2")))
    result = run_cli("run", flow, "--json", env=base_env(tmp_path))
    assert result.exit_code == 1, result.output
    steps = {s["id"]: s for s in result.json["jobs"][0]["steps"]}
    assert (steps["flaky"]["status"], steps["flaky"]["attempts"]) == ("SUCCESS", 2)
    assert (steps["broken"]["status"], steps["broken"]["attempts"]) == ("FAILED", 1)
    assert "not in retry_on_exit_codes [75]" in steps["broken"]["error"]
    assert (tmp_path / "c2").read_text() == "x\n"


def test_retry_on_timeout_true_lets_the_policy_repeat_a_timeout(tmp_path):
    flow = write_flow(tmp_path / "flow.yaml", f"""
        version: 1
        flow: {{id: timeouts}}
        jobs:
          - id: j
            steps:
              - id: slow
                type: external.process
                retry: {{max_attempts: 2}}
                inputs: {{command: ["sh", "-c", "echo x >> {tmp_path / 'c'}; sleep 5"], timeout_seconds: 0.3, kill_grace_seconds: 1}}
    """)
    result = run_cli("run", flow, "--json", env=base_env(tmp_path))
    step = result.json["jobs"][0]["steps"][0]
    assert (step["status"], step["attempts"]) == ("FAILED", 2)
    assert (tmp_path / "c").read_text() == "x\nx\n"


def test_a_re_run_of_the_flow_skips_the_step_whose_marker_exists(tmp_path):
    marker = tmp_path / "markers" / "{{ flow_id }}-2024-05-01.done"
    flow = write_flow(tmp_path / "flow.yaml", f"""
        version: 1
        flow: {{id: nightly}}
        jobs:
          - id: load
            steps:
              - id: spark
                type: external.process
                inputs:
                  command: ["sh", "-c", "echo ran >> {tmp_path / 'count'}"]
                  idempotency: {{marker: "{marker}"}}
                outputs: {{skipped: "{{{{ result.skipped }}}}", reason: "{{{{ result.reason }}}}"}}
    """)
    env = base_env(tmp_path)
    first = run_cli("run", flow, "--json", env=env)
    second = run_cli("run", flow, "--json", env=env)
    assert first.exit_code == 0 and second.exit_code == 0, second.output
    assert first.json["run_id"] != second.json["run_id"]
    assert first.json["jobs"][0]["steps"][0]["status"] == "SUCCESS"
    step = second.json["jobs"][0]["steps"][0]
    assert step["status"] == "SKIPPED"
    written = json.loads((tmp_path / "markers" / "nightly-2024-05-01.done").read_text())
    assert step["outputs"]["reason"].endswith(f"(written by run {first.json['run_id']} at {written['finished_at']})")
    assert (tmp_path / "count").read_text() == "ran\n"


def test_inherited_stdout_goes_to_the_runners_own_stdout(tmp_path):
    flow = write_flow(tmp_path / "flow.yaml", """
        version: 1
        flow: {id: inherit}
        jobs:
          - id: j
            steps:
              - {id: s, type: external.process, inputs: {command: [echo, straight-through], log: {stdout: inherit}}}
    """)
    result = run_cli("run", flow, env=base_env(tmp_path))
    assert result.exit_code == 0, result.output
    assert "straight-through" in result.stdout
