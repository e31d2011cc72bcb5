"""Variables a secrets provider adds with ``expand_env`` are secrets only when it marks
them or their names look secret; the others are data and are never masked."""

from __future__ import annotations

import textwrap

from tests.helpers import base_env, run_cli, write_flow

PROVIDER = '''
def decode(value):
    return value


def expand_env(env):
    added = {"STAGE": "prod", "REGION": "eu-west", "API_TOKEN": "tok-abcdef-123", "VAULT_VALUE": "vault-opaque-77", "PIN": "4711"}
    return {**env, **added}, {"VAULT_VALUE", "PIN"}
'''

FLOW = """
version: 1
flow: {id: expand}
jobs:
  - id: a
    steps:
      - id: say
        type: external.process
        inputs:
          command:
            - echo
            - "deploying product to {{ env.STAGE }} in {{ env.REGION }}; {{ env.API_TOKEN }}; {{ env.VAULT_VALUE }}; pin {{ env.PIN }}, order 947112"
          capture: true
"""


def test_only_marked_or_credential_named_values_are_masked(tmp_path):
    provider = tmp_path / "provider.py"
    provider.write_text(textwrap.dedent(PROVIDER))
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    result = run_cli("run", flow, "--json", env=base_env(tmp_path, AETHERFLOW_SECRETS_PATH=str(provider)))
    assert result.exit_code == 0, result.output
    stdout = result.json["jobs"][0]["steps"][0]["outputs"]["stdout"]
    # A short secret is masked where it stands alone, not inside a longer word or number.
    assert stdout == "deploying product to prod in eu-west; ***; ***; pin ***, order 947112\n"
    assert "tok-abcdef-123" not in result.output and "vault-opaque-77" not in result.output


def test_secret_names_that_are_not_a_collection_are_refused(tmp_path):
    provider = tmp_path / "provider.py"
    provider.write_text("def decode(v):\n    return v\n\ndef expand_env(env):\n    return env, 'API_TOKEN'\n")
    flow = write_flow(tmp_path / "flow.yaml", FLOW)
    result = run_cli("run", flow, env=base_env(tmp_path, AETHERFLOW_SECRETS_PATH=str(provider)))
    assert result.exit_code == 2
    assert "expand_env() returned str as secret names" in result.stderr
    assert 'return env, {"API_TOKEN"}' in result.stderr


def test_short_secrets_are_masked_as_whole_words_only():
    from aetherflow.core.redaction import Scrubber

    scrubber = Scrubber(["prod", "s3cr3t-long-value"])
    assert scrubber.scrub("deploying product to prod (prod.) xprod") == "deploying product to *** (***.) xprod"
    assert scrubber.scrub("id=s3cr3t-long-valueX") == "id=***X"
