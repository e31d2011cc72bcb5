"""Property-based fuzzing of the flow loader and ``validate`` (hypothesis).

Whatever the file holds — a generated flow, a mutated one, YAML-looking noise, alias and
nesting bombs, huge integers — ``aetherflow validate`` answers with exit code 0, 1 or 2,
never a traceback or an internal error, within 5 seconds and 200 MB.

The flows are validated by one worker process (``validate_worker.py``) that runs the
CLI in-process for each example and reports its peak resident memory during that
example (the kernel's high-water mark, reset before each; it includes the interpreter
itself, so the bound is conservative). The time bound is hypothesis's deadline on each
example, and the worker's own measure of the validate call.
"""

from __future__ import annotations

import io
import json
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import ROOT, base_env

MAX_SECONDS = 5.0
MAX_MEMORY_MB = 200.0
HANG_SECONDS = 30

FUZZ = settings(
    max_examples=120,
    deadline=MAX_SECONDS * 1000,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


class Validator:
    """A worker process running ``validate`` for each flow text it is given."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.count = 0
        self.proc: subprocess.Popen | None = None
        self.worst_seconds = 0.0
        self.peak_mb = 0.0

    def _start(self) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.spec.validate_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=base_env(self.folder),
        )

    def validate(self, text: str, json_output: bool) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        self.count += 1
        flow = self.folder / f"flow-{self.count}.yaml"
        flow.write_text(text, encoding="utf-8", errors="surrogatepass")
        args = ["validate", str(flow)] + (["--json"] if json_output else [])
        self.proc.stdin.write(json.dumps({"args": args}) + "\n")
        self.proc.stdin.flush()
        # The deadline cannot stop a worker that hangs: give up on it well after it.
        ready, _, _ = select.select([self.proc.stdout], [], [], HANG_SECONDS)
        if not ready:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            pytest.fail(f"no answer from validate within {HANG_SECONDS} s for:\n{text[:400]}")
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            stderr = self.proc.stderr.read()
            self.proc = None
            pytest.fail(f"the validator died (exit {code}) on {flow}:\n{stderr[-2000:]}")
        reply = json.loads(line)
        flow.unlink()
        self.worst_seconds = max(self.worst_seconds, reply["seconds"])
        self.peak_mb = max(self.peak_mb, reply["max_rss_mb"])
        return reply

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def validator(tmp_path_factory):
    worker = Validator(tmp_path_factory.mktemp("fuzz"))
    yield worker
    worker.close()
    print(f"\nfuzz: {worker.count} flows validated; slowest {worker.worst_seconds:.3f} s; peak memory {worker.peak_mb:.0f} MB")


def check(validator: Validator, text: str, json_output: bool = False) -> dict:
    reply = validator.validate(text, json_output)
    shown = text if len(text) < 400 else text[:400] + "..."
    assert reply["crash"] is None, f"exception escaped the CLI for:\n{shown}\n{reply['crash']}"
    assert reply["code"] in (0, 1, 2), (reply, shown)
    output = reply["stdout"] + reply["stderr"]
    assert "Traceback" not in output, output
    assert "internal error" not in output, f"{output}\nfor:\n{shown}"
    assert reply["seconds"] < MAX_SECONDS, f"{reply['seconds']:.1f} s for:\n{shown}"
    assert reply["max_rss_mb"] < MAX_MEMORY_MB, f"{reply['max_rss_mb']:.0f} MB after:\n{shown}"
    if json_output:
        document = json.loads(reply["stdout"])
        assert document["ok"] is (reply["code"] == 0)
        for problem in document["errors"]:
            assert problem["file"] and problem["message"]
    elif reply["code"] == 2:
        assert re.search(r"\b\d+ problems? found in ", reply["stderr"]) or "error:" in reply["stderr"], reply
    return reply


# ---------------------------------------------------------------- generated flows

NAMES = st.text(alphabet="abz09_.-/ $", min_size=0, max_size=6)
TEMPLATES = st.sampled_from(
    [
        "{{ env.HOME }}",
        "{{ steps.nope.outputs.x }}",
        "{{ jobs.a.outputs.x }}",
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "{{ '%0999999999d' % 1 }}",
        "{{",
        "{% if %}",
        "{{ ''.__class__ }}",
        "SELECT * FROM t WHERE a = '{{ env.X }}'",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**320),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    TEMPLATES,
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=12,
)
STEP_TYPES = st.sampled_from(
    ["check_items", "external.process", "with_lock", "db_fetch", "db_execute", "http_request", "files_list", "archive_extract", "mail_send", "nope"]
)
INPUT_NAMES = st.sampled_from(
    ["items", "min_count", "command", "timeout_seconds", "lock_key", "step", "wait_seconds", "resource", "sql", "params", "allow_sql_template", "unknown"]
)
STEP = st.fixed_dictionaries(
    {"id": NAMES, "type": STEP_TYPES},
    optional={
        "inputs": st.one_of(st.dictionaries(INPUT_NAMES, VALUES, max_size=5), VALUES),
        "outputs": st.dictionaries(st.text(max_size=5), VALUES, max_size=2),
        "retry": st.one_of(st.dictionaries(st.sampled_from(["max_attempts", "delay_seconds", "backoff", "x"]), SCALARS, max_size=3), SCALARS),
        "on_no_data": st.sampled_from(["skip_job", "continue", "skip"]),
        "description": SCALARS,
    },
)
JOB = st.fixed_dictionaries(
    {"id": NAMES, "steps": st.one_of(st.lists(STEP, max_size=3), SCALARS)},
    optional={"depends_on": st.one_of(st.lists(NAMES, max_size=2), NAMES), "when": st.one_of(TEMPLATES, st.text(max_size=10))},
)
RESOURCE = st.fixed_dictionaries(
    {"kind": st.sampled_from(["db", "rest", "fs", "nope", ""]), "driver": st.sampled_from(["sqlite3", "httpx", "local", "postgres", "x"])},
    optional={"config": st.dictionaries(st.text(max_size=8), VALUES, max_size=3), "options": VALUES, "decode": VALUES, "profile": SCALARS},
)
FLOW_META = st.fixed_dictionaries(
    {"id": NAMES},
    optional={
        "lock": st.dictionaries(st.sampled_from(["key", "ttl_seconds", "wait_seconds", "on_locked"]), SCALARS, max_size=3),
        "workspace": st.dictionaries(st.sampled_from(["root", "cleanup_policy"]), st.one_of(SCALARS, TEMPLATES), max_size=2),
        "state": st.dictionaries(st.sampled_from(["backend", "path", "dsn"]), SCALARS, max_size=2),
    },
)
FLOWS = st.fixed_dictionaries(
    {"version": st.sampled_from([1, 1, 1, 2, "1", None]), "flow": st.one_of(FLOW_META, SCALARS), "jobs": st.one_of(st.lists(JOB, max_size=3), SCALARS)},
    optional={"resources": st.dictionaries(NAMES, RESOURCE, max_size=2), "extra": VALUES},
)


def to_yaml(data) -> str:
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = None
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()


@FUZZ
@given(flow=FLOWS, json_output=st.booleans())
def test_generated_flows(validator, flow, json_output):
    check(validator, to_yaml(flow), json_output)


SNIPPETS = st.sampled_from(
    ["\n", ": ", "- ", "[", "]", "{", "}", "&a ", "*a", "!!python/object:os.system ", "'", '"', "#", "|", ">", "\t", "  ", "? "]
    + ["---\n", "...\n", "%YAML 1.1\n", "<<: *a", "\x00", "\ufeff", "\udcff", "9" * 5000]
)


@FUZZ
@given(flow=FLOWS, edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 8), SNIPPETS), min_size=1, max_size=6), json_output=st.booleans())
def test_mutated_flows(validator, flow, edits, json_output):
    text = to_yaml(flow)
    for where, cut, snippet in edits:
        at = int(where * len(text))
        text = text[:at] + snippet + text[at + cut :]
    check(validator, text, json_output)


YAMLISH = st.lists(st.sampled_from(list("ab1.:-[]{},&*!|>'\"#%@?\n \t") + ["version: 1\n", "jobs:\n", "flow:\n", "  "]), max_size=200).map("".join)


@FUZZ
@given(text=YAMLISH, json_output=st.booleans())
def test_yaml_noise(validator, text, json_output):
    check(validator, text, json_output)


# ---------------------------------------------------------------- bombs

HEADER = "version: 1\nflow: {id: fuzz}\njobs:\n  - id: a\n    steps:\n      - id: s\n        type: check_items\n        inputs:\n          items:\n"
BOMBS = settings(FUZZ, max_examples=40)


@BOMBS
@given(levels=st.integers(1, 12), fanout=st.integers(1, 12), block=st.booleans())
def test_alias_chains(validator, levels, fanout, block):
    lines = ["            - &l0 [" + ", ".join(["x"] * fanout) + "]"]
    for level in range(1, levels):
        refs = ", ".join([f"*l{level - 1}"] * fanout)
        lines.append(f"            - &l{level} [{refs}]")
    if block:
        lines.append("            -\n" + "\n".join([f"              - *l{levels - 1}"] * fanout))
    reply = check(validator, HEADER + "\n".join(lines) + "\n")
    sizes = [1 + fanout]
    for _ in range(1, levels):
        sizes.append(1 + fanout * sizes[-1])
    added = sum(fanout * size for size in sizes[:-1]) + (fanout * sizes[-1] if block else 0)
    assert (reply["code"] == 2 and "aliases expand" in reply["stderr"]) == (added > 100_000), (added, reply)


@BOMBS
@given(depth=st.integers(1, 400), flow_style=st.booleans())
def test_deep_nesting(validator, depth, flow_style):
    if flow_style:
        body = "            - " + "[" * depth + "]" * depth + "\n"
    else:
        body = "".join("            " + "  " * i + "- \n" for i in range(depth))
    reply = check(validator, HEADER + body)
    if depth > 110:
        assert reply["code"] == 2 and "levels deep" in reply["stderr"]


@BOMBS
@given(digits=st.integers(1, 20_000), sign=st.sampled_from(["", "-", "+"]), where=st.sampled_from(["item", "key", "min_count"]))
def test_long_integers(validator, digits, sign, where):
    number = sign + "7" * digits
    body = {
        "item": f"            - {number}\n",
        "key": f"            - {{{number}: 1}}\n",
        "min_count": "            - 1\n          min_count: " + number + "\n",
    }[where]
    reply = check(validator, HEADER + body)
    if digits > 4300:
        assert reply["code"] == 2 and "digits" in reply["stderr"]


@BOMBS
@given(size=st.integers(1, 2_000_000), copies=st.integers(1, 60))
def test_long_strings_repeated_by_aliases(validator, size, copies):
    body = f"            - &s '{'x' * size}'\n" + "".join("            - *s\n" for _ in range(copies))
    reply = check(validator, HEADER + body)
    if size * copies > 10_000_000:
        assert reply["code"] == 2 and "aliases expand" in reply["stderr"]


def test_the_worker_reports_what_the_cli_says(validator):
    good = HEADER + "            - 1\n"
    assert check(validator, good)["code"] == 0
    bad = check(validator, good.replace("check_items", "check_itemz"), json_output=True)
    assert bad["code"] == 2 and "did you mean 'check_items'" in bad["stdout"]
    assert validator.peak_mb > 10

