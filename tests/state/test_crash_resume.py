"""Crash safety: ``kill -9`` a run at random moments, then resume it by its run id.

Each trial runs a two-job, eight-step flow in a subprocess. Every step appends
``start``/``end`` to a ledger, sleeps a random short time and writes an artifact
through a temporary name and a rename; its output token feeds the next step's input
(across jobs too, through job outputs), so a resumed run only produces the right
artifacts if the stored outputs of reused steps reach the later templates.

The run is killed after a random number of ledger lines plus a random delay (or at a
random moment after start, before any step ran), and resumed on the *other* host
(another working directory and work root; with PostgreSQL the two share nothing but
the state). In every trial: a step whose success was committed is not run again, the
resumed run ends SUCCESS, no artifact is half-written, and the state is intact.
"""

from __future__ import annotations

import hashlib
import random
import signal
import time
from pathlib import Path

import pytest

from .conftest import Host, flow_yaml, kill9, lines, wait_for, write_flow_for

TRIALS = 20
JOBS = {"a": ["s1", "s2", "s3", "s4"], "b": ["s1", "s2", "s3", "s4"]}
NAMES = [f"{job}.{step}" for job, steps in JOBS.items() for step in steps]
ARTIFACT_SIZE = 64 * 1024


def crash_flow(state: str | None) -> str:
    ledger = '"{{ env.LEDGER }}"'
    jobs = ""
    for job, steps in JOBS.items():
        jobs += f"- id: {job}\n"
        if job == "b":
            jobs += "  depends_on: [a]\n"
        jobs += "  steps:\n"
        for i, step in enumerate(steps):
            if i > 0:
                token = f'"{{{{ steps.{steps[i - 1]}.outputs.token }}}}"'
            else:
                token = '"{{ jobs.a.outputs.last }}"' if job == "b" else "seed"
            # The last step is the longest, so a kill timed after any earlier ledger line
            # always lands before the run ends.
            sleep_ms = "[150, 200]" if (job, step) == ("b", steps[-1]) else "[10, 30]"
            jobs += (
                f"    - id: {step}\n"
                f"      type: statetest.ledger\n"
                f"      inputs: {{ledger: {ledger}, previous: {token}, artifact: {step}.bin, size: {ARTIFACT_SIZE}, sleep_ms: {sleep_ms}}}\n"
            )
            if job == "a" and i == len(steps) - 1:
                jobs += '      outputs: {last: "{{ result.token }}"}\n'
    return flow_yaml("crashy", jobs, state=state)


def chain_token(previous: str, name: str) -> str:
    """What plugins/state_steps.py computes (restated here as the test's oracle)."""
    return hashlib.sha256(f"{previous}/{name}".encode()).hexdigest()[:16]


def artifact_bytes(token: str, size: int) -> bytes:
    return (token.encode() * (size // len(token) + 1))[:size]


def expected_tokens() -> dict[str, str]:
    tokens, previous = {}, "seed"
    for name in NAMES:
        previous = tokens[name] = chain_token(previous, name)
    return tokens


def artifact_path(host: Host, run_id: str, name: str) -> Path:
    job, step = name.split(".")
    return host.work_root / "crashy" / job / run_id / f"{step}.bin"


def final_artifacts(host: Host) -> list[Path]:
    root = host.work_root / "crashy"
    return [p for p in root.rglob("*.bin") if not p.name.startswith(".")] if root.exists() else []


def ledger_events(entries: list[str]) -> list[tuple[str, str]]:
    return [(kind, name) for kind, name, _pid in (line.split() for line in entries)]


@pytest.mark.parametrize("trial", range(TRIALS))
def test_kill_9_at_a_random_moment_then_resume_reruns_nothing_finished(trial, backend, hosts):
    rng = random.Random(1000 + trial)
    first, second = hosts if trial % 2 == 0 else hosts[::-1]
    ledger = backend.root / "ledger.txt"
    for host in hosts:
        host.env["LEDGER"] = str(ledger)
    flow = write_flow_for(hosts, "crashy.yaml", crash_flow(backend.state_yaml))
    run_id = f"crash-{trial}"
    tokens = expected_tokens()

    # -- crash ---------------------------------------------------------------------------
    proc = first.spawn("run", flow, "--run-id", run_id)
    after_lines = rng.randint(0, 2 * len(NAMES) - 1)  # up to the start of the last (long) step
    if after_lines == 0:
        time.sleep(rng.uniform(0, 0.35))  # start-up, run creation, the first state writes
    else:
        wait_for(lambda: len(lines(ledger)) >= after_lines, what=f"{after_lines} ledger lines")
        time.sleep(rng.uniform(0, 0.010))
    assert kill9(proc) == -signal.SIGKILL, "the run finished before it could be killed"
    assert backend.integrity_check() == "ok"

    store = backend.open()
    try:
        committed = {f"{r.job_id}.{r.step_id}" for r in store.step_runs(run_id) if r.status == "SUCCESS"}
    finally:
        store.close()
    before = ledger_events(lines(ledger))
    ended = [name for kind, name in before if kind == "end"]
    assert committed <= set(ended), "a step is recorded SUCCESS without having finished"
    if ended:
        # Only the last step to finish can have been killed between its end and its commit.
        assert set(ended) - committed <= {ended[-1]}
    for path in final_artifacts(first):
        name = f"{path.parent.parent.name}.{path.stem}"
        assert path.read_bytes() == artifact_bytes(tokens[name], ARTIFACT_SIZE), f"half-written artifact {path}"

    # -- resume on the other host ----------------------------------------------------------
    result = second.run("run", flow, "--run-id", run_id, "--json")
    assert result.exit_code == 0, result.stderr
    document = result.json
    assert document["run_id"] == run_id and document["status"] == "SUCCESS"
    outputs = {f"{job['id']}.{step['id']}": step for job in document["jobs"] for step in job["steps"]}
    assert {name: step["status"] for name, step in outputs.items()} == {name: "SUCCESS" for name in NAMES}
    assert {name: step["outputs"]["token"] for name, step in outputs.items()} == tokens

    resumed = ledger_events(lines(ledger)[len(before):])
    rerun = [name for kind, name in resumed if kind == "start"]
    assert not committed & set(rerun), f"committed steps ran again: {sorted(committed & set(rerun))}"
    assert sorted(rerun) == sorted(set(NAMES) - committed), "each unfinished step runs exactly once"
    assert [name for kind, name in resumed if kind == "end"] == rerun

    for name in NAMES:
        owner = first if name in committed else second
        assert artifact_path(owner, run_id, name).read_bytes() == artifact_bytes(tokens[name], ARTIFACT_SIZE)
    for host in hosts:
        for path in final_artifacts(host):
            name = f"{path.parent.parent.name}.{path.stem}"
            assert path.read_bytes() == artifact_bytes(tokens[name], ARTIFACT_SIZE), f"half-written artifact {path}"
    assert backend.integrity_check() == "ok"

    store = backend.open()
    try:
        run = store.get_run(run_id)
        assert run.status == "SUCCESS"
        if before:  # the first invocation had created the run: this one resumed it
            assert run.invocations == 2
        assert {r.status for r in store.step_runs(run_id)} == {"SUCCESS"}
        assert store.list_locks() == []
    finally:
        store.close()
