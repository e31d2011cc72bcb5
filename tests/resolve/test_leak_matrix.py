"""The leak matrix: each form of a secret, at each exit, is never written in plain text.

Forms: a plain secret; secrets with a space, an apostrophe, a double quote, a percent
sign, an at sign and non-ASCII letters; a password inside a URL and inside a key=value
DSN; and a secret the program writes base64-encoded, JSON-escaped, repr-escaped or
URL-encoded. Exits: the text output (with -v, tracebacks included), the --json
document, JSON logs at debug level, the state database's bytes, ``runs show`` (text
and --json), and ``resolve --show``, ``--json`` and ``--check``.

One flow run per form covers the run's exits; the flow leaks the secret everywhere it
can: step outputs and logs (in every written form), a connector error, a crash, the
command line and captured output of a process, and an input type error echoing the
value.
"""

from __future__ import annotations

import re
import sqlite3

import pytest

from aetherflow.core.registration import registrations_undone
from tests.helpers import run_cli, write_flow

with registrations_undone():
    # The plugin's step and connector must not stay registered in the test process.
    from tests.fixtures.plugins.leak_matrix import written_forms

WRITTEN = ("base64", "json", "repr", "url")
ENCODED = "Enc'P4ss \"w/ä%x"

# (form, secret, how the resource holds it, the written forms the step emits)
FORMS = [
    ("plain", "Pl4inSecr3tValue", "leaf", ["plain"]),
    ("space", "Sp4ce Zq9x Wv7y", "leaf", ["plain"]),
    ("apostrophe", "Ap0s'tr0phe-Kq8", "leaf", ["plain"]),
    ("quote", 'Qu0te"D0uble-Jz5', "leaf", ["plain"]),
    ("percent", "Perc%20ent%-Xw3", "leaf", ["plain"]),
    ("at", "At@Sign-Mv6@k", "leaf", ["plain"]),
    ("non-ascii", "Ünï-cödé-Sëcr3t", "leaf", ["plain"]),
    ("url", "Url-P4ss w0rd'x", "url", ["plain"]),
    ("key=value", "Kv-P4ss w0rd_x", "dsn", ["plain"]),
    *[(name, ENCODED, "leaf", [name] + (["url_plus"] if name == "url" else [])) for name in WRITTEN],
]

CARRIERS = {
    "leaf": 'password: "{{ env.LEAK_SECRET }}"',
    "url": 'url: "postgresql://etl:{{ env.LEAK_SECRET }}@db.internal:5432/dw"',
    "dsn": 'dsn: "host=db.internal password={{ env.LEAK_SECRET }} user=etl"',
}

FLOW = """
version: 1
flow: {{id: leak_matrix}}
resources:
  vault:
    kind: demo
    driver: vault
    config:
      {carrier}
jobs:
  - id: emit
    steps:
      - id: forms
        type: test.leak_forms
        inputs: {{resource: vault, forms: {forms}}}
        outputs: {{again: "{{{{ result.sentence }}}}"}}
      - id: process
        type: external.process
        inputs:
          command: [sh, -c, 'printf "%s\\n" "$1"; printf "%s\\n" "$1" >&2', leak, "{{{{ env.LEAK_SECRET }}}}"]
          capture: true
  - id: failing_process
    steps:
      - id: process
        type: external.process
        inputs:
          command: [sh, -c, 'printf "denied: %s\\n" "$1" >&2; exit 3', leak, "{{{{ env.LEAK_SECRET }}}}"]
  - id: raises
    steps:
      - {{id: boom, type: test.leak_forms, inputs: {{resource: vault, forms: {forms}, mode: raise}}}}
  - id: crashes
    steps:
      - {{id: boom, type: test.leak_forms, inputs: {{resource: vault, forms: {forms}, mode: crash}}}}
  - id: typed
    steps:
      - {{id: count, type: check_items, inputs: {{items: [1], min_count: "{{{{ env.LEAK_SECRET }}}}"}}}}
"""


def leaked(secret: str, text: str) -> list[str]:
    """The forms of ``secret`` (and its distinctive pieces) found in ``text``."""
    found = [name for name, form in written_forms(secret).items() if form in text]
    found += [piece for piece in re.split(r"[\s'\"%@/]+", secret) if len(piece) >= 5 and piece in text]
    return found


@pytest.mark.parametrize("form, secret, carrier, emitted", FORMS, ids=[f[0] for f in FORMS])
def test_no_form_of_a_secret_reaches_any_exit(tmp_path, cli_env, form, secret, carrier, emitted):
    flow = write_flow(tmp_path / "flow.yaml", FLOW.format(carrier=CARRIERS[carrier], forms=emitted))
    env = {**cli_env, "LEAK_SECRET": secret}
    exits: dict[str, str] = {}

    text = run_cli("run", flow, "-v", env=env)
    assert text.exit_code == 2, text.output  # the input type error is invalid input
    assert "Traceback" in text.stderr  # -v shows the crash's traceback, scrubbed
    exits["run -v (text)"] = text.output

    document = run_cli("run", flow, "--json", "--log-format", "json", "-v", env=env)
    exits["run --json"] = document.stdout
    exits["JSON logs"] = document.stderr
    doc = document.json
    jobs = {job["id"]: job for job in doc["jobs"]}
    # The flow did leak, and each leak was caught: the checks below look at real output.
    assert jobs["emit"]["status"] == "SUCCESS", jobs["emit"]
    assert "***" in jobs["emit"]["steps"][0]["outputs"]["sentence"]
    assert jobs["emit"]["steps"][1]["outputs"]["stdout"] == "***\n"
    assert "***" in jobs["failing_process"]["steps"][0]["error"]
    assert "***" in jobs["raises"]["steps"][0]["error"] and "***" in jobs["crashes"]["steps"][0]["error"]
    assert "***" in jobs["typed"]["steps"][0]["error"]
    assert "leak.forms" in document.stderr and "process.started" in document.stderr

    state_dir = tmp_path / "state"
    exits["state bytes"] = "\n".join(p.read_bytes().decode("utf-8", "replace") for p in state_dir.iterdir() if p.is_file())
    with sqlite3.connect(state_dir / "state.db") as conn:
        exits["state rows"] = "\n".join(conn.iterdump())
    run_id = doc["run_id"]
    shown = run_cli("runs", "show", run_id, env=env)
    assert shown.exit_code == 0, shown.output
    exits["runs show"] = shown.output
    exits["runs show --json"] = run_cli("runs", "show", run_id, "--json", env=env).output

    for args in (["--show"], ["--show", "--json"], ["--check", "-v"]):
        result = run_cli("resolve", flow, *args, env=env)
        exits["resolve " + " ".join(args)] = result.output
    assert "***" in exits["resolve --check -v"]

    found = {where: leaked(secret, output) for where, output in exits.items()}
    assert not any(found.values()), {where: forms for where, forms in found.items() if forms}
