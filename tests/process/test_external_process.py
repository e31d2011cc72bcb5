"""``external.process`` against real child processes: argv, env, exit codes, output
bounds, scrubbing, and stopping whole process trees on timeout and cancellation."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from aetherflow.core.errors import Interrupted, StepError, StepInputError
from aetherflow.core.steps.builtin.process import ExternalProcess
from tests.services import process_gone

from .conftest import SECRET


def _pid(path: Path) -> int:
    return int(path.read_text().strip())


# -- argv, shell, cwd -------------------------------------------------------------------------


def test_argv_list_runs_without_a_shell(run_process):
    out = run_process(command=["echo", "$HOME", "a b"], capture=True)
    assert out["stdout"] == "$HOME a b\n"
    assert out["exit_code"] == 0
    assert isinstance(out["duration_ms"], int)


def test_string_command_is_split_like_a_shell_but_not_interpreted(run_process):
    out = run_process(command="printf '%s|' 'one two' $HOME", capture=True)
    assert out["stdout"] == "one two|$HOME|"


def test_args_are_appended_and_quoted_for_the_shell(run_process):
    out = run_process(command="printf '%s|'", args=["a b", "$(id)", 7], shell=True, capture=True)
    assert out["stdout"] == "a b|$(id)|7|"


def test_shell_true_interprets_pipes_and_variables(run_process):
    out = run_process(command="echo one two | wc -w", shell=True, capture=True)
    assert out["stdout"].strip() == "2"


def test_default_cwd_is_the_workspace_and_relative_cwd_stays_inside(run_process, make_ctx):
    ctx = make_ctx()
    (ctx.workspace / "sub").mkdir()
    assert run_process(ctx, command=["pwd"], capture=True)["stdout"].strip() == str(ctx.workspace)
    assert run_process(ctx, command=["pwd"], cwd="sub", capture=True)["stdout"].strip() == str(ctx.workspace / "sub")
    with pytest.raises(StepError, match="escapes the job workspace"):
        run_process(ctx, command=["pwd"], cwd="../..")
    with pytest.raises(StepError, match="does not exist"):
        run_process(ctx, command=["pwd"], cwd="missing")


def test_missing_command_fails_with_a_clear_message(run_process):
    with pytest.raises(StepError, match="command not found: 'no-such-command-xyz'"):
        run_process(command=["no-such-command-xyz", "--flag"])


def test_empty_command_is_an_input_error(run_process):
    with pytest.raises(StepInputError, match="'command' is empty"):
        run_process(command="   ")


# -- environment -------------------------------------------------------------------------------


def test_child_env_comes_from_ctx_env_plus_given_vars_and_run_ids(run_process, make_ctx, monkeypatch):
    monkeypatch.setenv("AF_ONLY_IN_OS_ENVIRON", "leaked")
    ctx = make_ctx(env={"PATH": "/usr/bin:/bin", "FROM_SNAPSHOT": "snap", "DROP_ME": "x"})
    out = run_process(ctx, command=["env"], env={"GIVEN": "yes", "NUM": 5, "FLAG": True, "DROP_ME": None}, capture=True)
    env = dict(line.split("=", 1) for line in out["stdout"].splitlines())
    assert env["FROM_SNAPSHOT"] == "snap"
    assert (env["GIVEN"], env["NUM"], env["FLAG"]) == ("yes", "5", "true")
    assert "DROP_ME" not in env
    assert "AF_ONLY_IN_OS_ENVIRON" not in env  # the step never reads os.environ
    assert env["AETHERFLOW_RUN_ID"] == "test-run"
    assert env["AETHERFLOW_FLOW_ID"] == "test_flow"
    assert env["AETHERFLOW_JOB_ID"] == "test_job"
    assert env["AETHERFLOW_STEP_ID"] == "test_step"
    assert env["AETHERFLOW_WORKSPACE"] == str(ctx.workspace)


def test_inherit_env_false_starts_from_an_empty_environment(run_process, make_ctx):
    ctx = make_ctx(env={"PATH": "/usr/bin:/bin", "FROM_SNAPSHOT": "snap"})
    out = run_process(ctx, command=["/usr/bin/env"], inherit_env=False, env={"ONLY": "this"}, capture=True)
    names = {line.split("=", 1)[0] for line in out["stdout"].splitlines()}
    assert names == {"ONLY", "AETHERFLOW_RUN_ID", "AETHERFLOW_FLOW_ID", "AETHERFLOW_JOB_ID", "AETHERFLOW_STEP_ID", "AETHERFLOW_WORKSPACE"}


# -- exit codes --------------------------------------------------------------------------------


def test_allowed_exit_codes_count_as_success(run_process):
    out = run_process(command="exit 3", shell=True, success_exit_codes=[0, 3])
    assert out["exit_code"] == 3


def test_other_exit_codes_fail_naming_the_code_and_the_stderr_tail(run_process):
    with pytest.raises(StepError) as info:
        run_process(command="echo first line >&2; echo 'disk full' >&2; exit 4", shell=True, success_exit_codes=[0, 3])
    message = str(info.value)
    assert "exited with code 4" in message
    assert "allowed exit codes: [0, 3]" in message
    assert "disk full" in message


def test_a_command_killed_by_a_signal_is_reported_by_signal_name(run_process):
    with pytest.raises(StepError, match="killed by signal SIGKILL"):
        run_process(command="kill -9 $$", shell=True)


def test_shell_exit_127_says_the_shell_could_not_find_the_command(run_process):
    with pytest.raises(StepError, match="could not find the command"):
        run_process(command="no-such-command-xyz", shell=True)


# -- output ------------------------------------------------------------------------------------


def test_captured_output_keeps_only_the_last_mebibyte_and_says_so(run_process, logs):
    out = run_process(command="head -c 3145728 /dev/zero | tr '\\0' a; printf END; echo small >&2", shell=True, capture=True)
    assert len(out["stdout"]) == 1024 * 1024
    assert out["stdout"].endswith("aaaEND")
    assert out["stdout_truncated"] is True
    assert out["stderr"] == "small\n"
    assert out["stderr_truncated"] is False
    [warning] = logs.events("process.output_truncated")
    assert warning["stream"] == "stdout" and warning["bytes"] == 3 * 1024 * 1024 + 3


def test_max_capture_bytes_sets_the_bound(run_process):
    out = run_process(command="seq 1 100000", shell=True, capture=True, max_capture_bytes=100)
    assert out["stdout"].endswith("99999\n100000\n")
    assert len(out["stdout"]) <= 100
    assert out["stdout_truncated"] is True


def test_uncaptured_output_is_logged_line_by_line_with_its_stream(run_process, logs):
    out = run_process(command="echo out-1; echo err-1 >&2; echo out-2", shell=True)
    assert out["stdout"] is None and out["stderr"] is None
    lines = [(e["stream"], e["line"]) for e in logs.events("process.output")]
    assert [line for line in lines if line[0] == "stdout"] == [("stdout", "out-1"), ("stdout", "out-2")]
    assert ("stderr", "err-1") in lines


# -- secrets -----------------------------------------------------------------------------------


def test_captured_outputs_are_data_the_runner_scrubs_where_they_leave(run_process):
    # Later steps get what the command wrote; the run's exits mask it
    # (tests/runner/test_outputs_between_jobs.py).
    out = run_process(command=f"echo token={SECRET}; echo also {SECRET} >&2", shell=True, capture=True)
    assert out["stdout"] == f"token={SECRET}\n"
    assert out["stderr"] == f"also {SECRET}\n"


def test_secret_printed_by_the_command_is_scrubbed_from_logs(run_process, logs):
    run_process(command=["sh", "-c", f"echo token={SECRET}; echo {SECRET} >&2"])
    logged = [e["line"] for e in logs.events("process.output")]
    assert sorted(logged) == ["***", "token=***"]
    started = logs.events("process.started")[0]
    assert SECRET not in started["command"]
    assert all(SECRET not in str(record.__dict__) for record in logs.records)


def test_secret_in_stderr_of_a_failing_command_is_scrubbed_from_the_error(run_process):
    with pytest.raises(StepError) as info:
        run_process(command=f"echo 'login failed for {SECRET}' >&2; exit 2", shell=True, capture=True)
    assert SECRET not in str(info.value)
    assert "login failed for ***" in str(info.value)


def test_a_secret_across_the_16_kib_line_split_is_scrubbed_in_both_pieces(run_process, logs):
    # One line of 16 KiB + 20 bytes: the secret straddles the point where the line is split.
    run_process(command=f"head -c 16379 /dev/zero | tr '\\0' a; printf '{SECRET}'; head -c 20 /dev/zero | tr '\\0' b; echo", shell=True)
    lines = [e["line"] for e in logs.events("process.output")]
    assert len(lines) == 2, [len(line) for line in lines]
    assert "".join(lines) == "a" * 16379 + "***" + "b" * 20
    for line in lines:
        assert SECRET[:4] not in line and SECRET[-4:] not in line


def test_a_multibyte_character_across_the_line_split_is_kept_whole(run_process, logs):
    run_process(command="head -c 16383 /dev/zero | tr '\\0' a; printf '\\303\\251tail\\n'", shell=True)
    assert "".join(e["line"] for e in logs.events("process.output")) == "a" * 16383 + "\u00e9tail"


def test_the_stderr_tail_in_an_error_is_cut_after_scrubbing(run_process):
    # The error shows the last 2,000 characters of stderr: the cut falls inside the secret.
    with pytest.raises(StepError) as info:
        run_process(command=f"printf '{SECRET}' >&2; head -c 1995 /dev/zero | tr '\\0' x >&2; exit 3", shell=True)
    assert SECRET[-4:] not in str(info.value)
    assert "***" + "x" * 1995 in str(info.value)


def test_max_capture_bytes_never_keeps_half_a_secret(run_process):
    out = run_process(command=f"printf 'zz{SECRET}'; head -c 90 /dev/zero | tr '\\0' y; printf '{SECRET}' >&2", shell=True, capture=True, max_capture_bytes=100)
    assert out["stdout_truncated"] is True
    assert SECRET[-4:] not in out["stdout"] and "Pa55" not in out["stdout"]
    assert out["stdout"] == "***" + "y" * 90
    assert out["stderr"] == SECRET  # whole: the run's exits mask it


def test_a_secret_with_an_apostrophe_is_scrubbed_from_the_logged_command(run_process, make_ctx, logs):
    secret = "it's-a-Secr3t"
    run_process(make_ctx(secrets=(secret,)), command=["echo", f"--password={secret}"])
    [started] = logs.events("process.started")
    assert "Secr3t" not in started["command"] and "***" in started["command"]
    assert all("Secr3t" not in e["line"] for e in logs.events("process.output"))


# -- stopping process trees --------------------------------------------------------------------


def test_timeout_stops_the_whole_process_tree(run_process, make_ctx, logs):
    ctx = make_ctx()
    pid_file = ctx.workspace / "grandchild.pid"
    with pytest.raises(StepError, match=r"timed out after 1s; its process group was stopped"):
        run_process(ctx, command="sleep 60 & echo $! > grandchild.pid; wait", shell=True, timeout_seconds=1)
    grandchild = _pid(pid_file)
    assert process_gone(grandchild)
    [stopped] = logs.events("process.stopped")
    assert stopped["reason"] == "timeout" and stopped["how"] == "terminated"


def test_cancelled_run_stops_the_tree_and_kills_what_ignores_sigterm(run_process, make_ctx, logs):
    ctx = make_ctx()
    ready = ctx.workspace / "ready"
    # The grandchild ignores SIGTERM (inherited through exec) and reports when it does.
    command = """sh -c 'trap "" TERM; echo $$ > grandchild.pid; touch ready; exec sleep 60' & wait"""

    def cancel_when_ready():
        while not ready.exists():
            threading.Event().wait(0.01)
        ctx.cancel.cancel("interrupted by SIGINT")

    helper = threading.Thread(target=cancel_when_ready, daemon=True)
    helper.start()
    with pytest.raises(Interrupted, match="stopped: interrupted by SIGINT"):
        run_process(ctx, command=command, shell=True, kill_grace_seconds=0.3)
    helper.join(timeout=5)
    assert process_gone(_pid(ctx.workspace / "grandchild.pid"))
    [stopped] = logs.events("process.stopped")
    assert stopped["reason"] == "cancelled"
    assert stopped["how"] == "killed"  # SIGTERM was ignored: SIGKILL after the grace period


def test_processes_left_behind_by_a_finished_command_are_stopped(run_process, make_ctx, logs):
    ctx = make_ctx()
    out = run_process(ctx, command="sleep 60 > /dev/null 2>&1 & echo $! > grandchild.pid", shell=True, capture=True)
    assert out["exit_code"] == 0
    assert process_gone(_pid(ctx.workspace / "grandchild.pid"))
    assert logs.events("process.leftovers_stopped")


def test_inputs_are_checked_before_anything_runs():
    with pytest.raises(StepInputError, match="missing required input 'command'"):
        ExternalProcess.bind_inputs({})
    with pytest.raises(StepInputError, match="'timeout_seconds': expected"):
        ExternalProcess.bind_inputs({"command": "true", "timeout_seconds": "soon"})
