"""The template sandbox: strict, one pass, no attribute walking (SPEC 4.4)."""

from __future__ import annotations

import os

import pytest

from aetherflow.core.errors import TemplateError
from aetherflow.core.templating import ENGINE, EnvView, named
from tests.helpers import run_cli, write_flow

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ run_id.__class__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ steps.__class__.__init__.__globals__['os'] }}",
    "{{ (1).__class__.__base__ }}",
    "{{ env._env }}",
]


@pytest.mark.parametrize("template", ESCAPES)
def test_attribute_walking_is_refused(template):
    with pytest.raises(TemplateError):
        ENGINE.render(template, {"env": EnvView({}), "steps": named("steps", {}), "run_id": "r"})


def test_attribute_walking_in_a_flow_exits_2(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", """
version: 1
flow: {id: sandbox}
jobs:
  - id: a
    steps:
      - {id: s, type: test.echo, inputs: {values: {x: "{{ run_id.__class__.__mro__ }}"}}}
""")
    result = run_cli("run", flow, "--json", env=cli_env)
    assert result.exit_code == 2
    error = result.json["jobs"][0]["steps"][0]["error"]
    assert "unsafe" in error or "undefined" in error
    assert "<class" not in result.output


def test_a_missing_variable_names_itself_and_where_it_is():
    with pytest.raises(TemplateError) as info:
        ENGINE.render("{{ env.NOT_SET_ANYWHERE }}", {"env": EnvView({})})
    assert "'env.NOT_SET_ANYWHERE' is undefined" in info.value.message
    with pytest.raises(TemplateError) as info:
        ENGINE.render("x {{ nothing_here }} y", {"env": EnvView({})})
    assert "'nothing_here' is undefined" in info.value.message


def test_missing_env_in_a_resource_names_file_line_path_and_variable(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", """
version: 1
flow: {id: missing}
resources:
  api:
    kind: demo
    driver: echo
    config:
      greeting: "hi {{ env.GREETING_NAME }}"
jobs:
  - id: a
    steps: [{id: s, type: check_items, inputs: {items: [1]}}]
""")
    result = run_cli("run", flow, env=cli_env)
    assert result.exit_code == 2
    assert f"{flow}:8:" in result.stderr and "resources.api.config.greeting" in result.stderr
    assert "'env.GREETING_NAME' is undefined" in result.stderr
    assert "hi {{ env.GREETING_NAME }}" in result.stderr


def test_single_expressions_keep_native_types_and_mixed_text_is_a_string():
    context = {"steps": named("steps", {"a": {"outputs": {"n": 3, "l": [1, 2], "m": {"k": True}}}})}
    assert ENGINE.render("{{ steps.a.outputs.n }}", context) == 3
    assert ENGINE.render("{{ steps.a.outputs.l }}", context) == [1, 2]
    assert ENGINE.render("{{ steps.a.outputs.m }}", context) == {"k": True}
    assert ENGINE.render("n={{ steps.a.outputs.n }}", context) == "n=3"
    assert ENGINE.render("  {{ steps.a.outputs.n > 2 }} ", context) is True


def test_values_from_the_environment_are_never_rendered_again(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", """
version: 1
flow: {id: onepass}
jobs:
  - id: a
    steps:
      - {id: s, type: test.echo, inputs: {values: {x: "{{ env.TRICKY }}"}}}
      - {id: t, type: test.echo, inputs: {values: {y: "{{ steps.s.outputs.x }}"}}}
""")
    result = run_cli("run", flow, "--json", env={**cli_env, "TRICKY": "{{ run_id.__class__ }}"})
    assert result.exit_code == 0, result.output
    steps = result.json["jobs"][0]["steps"]
    assert steps[0]["outputs"] == {"x": "{{ run_id.__class__ }}"}
    assert steps[1]["outputs"] == {"y": "{{ run_id.__class__ }}"}


def test_resources_see_only_env(tmp_path, cli_env):
    flow = write_flow(tmp_path / "flow.yaml", """
version: 1
flow: {id: roots}
resources:
  api:
    kind: demo
    driver: echo
    config: {greeting: "{{ run_id }}"}
jobs:
  - id: a
    steps: [{id: s, type: check_items, inputs: {items: [1]}}]
""")
    result = run_cli("resolve", flow, env=cli_env)
    assert result.exit_code == 2
    assert "'run_id' is undefined" in result.stderr and "available roots here: env" in result.stderr


def test_os_environ_is_unchanged_by_a_run_with_env_files(tmp_path, monkeypatch):
    from aetherflow.cli.commands import run_command
    from aetherflow.cli.errors import Session
    from aetherflow.cli.options import RunOptions

    for key in [k for k in os.environ if k.startswith("AETHERFLOW_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AETHERFLOW_WORK_ROOT", str(tmp_path / "work"))
    monkeypatch.setenv("AETHERFLOW_STATE_ROOT", str(tmp_path / "state"))
    env_file = tmp_path / "extra.env"
    env_file.write_text("FROM_ENV_FILE=value-from-file\nHOME_OVERRIDE=1\n")
    flow = write_flow(tmp_path / "flow.yaml", """
version: 1
flow: {id: environ}
jobs:
  - id: a
    steps: [{id: s, type: check_items, inputs: {items: ["{{ env.FROM_ENV_FILE }}"]}}]
""")
    before = dict(os.environ)
    code = run_command(Session(), RunOptions(flow=str(flow), env_files=(str(env_file),), json_output=True, quiet=True))
    assert code == 0
    assert dict(os.environ) == before
    assert "FROM_ENV_FILE" not in os.environ


RUNAWAY = {
    "nested-loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "printf-width": "{{ '%0999999999d' % 1 }}",
    "printf-star-width": "{{ '%*d' % (999999999, 1) }}",
    "string-repetition": "{{ ('a' * 10**9) | length }}",
    "list-repetition": "{{ ([1] * 10**9) | length }}",
    "power": "{{ 7 ** 999999999 }}",
    "integer-squaring": "{% set ns = namespace(x=7) %}{% for i in range(64) %}{% set ns.x = ns.x * ns.x %}{% endfor %}{{ ns.x > 0 }}",
    "center-filter": "{{ 'x' | center(999999999) }}",
    "indent-filter": "{{ 'a\nb' | indent(999999999) }}",
    "format-filter": "{{ '%0999999999d' | format(1) }}",
    "format-method": "{{ '{:>999999999}'.format(1) }}",
    "ljust-method": "{{ 'ab'.ljust(999999999) }}",
    "replace-method": "{{ ('a' * 4000000).replace('a', 'aaaaaaaaaa') | length }}",
    "join-method": "{{ ('x' * 1000000).join(range(100000) | map('string')) | length }}",
    "batch-fill": "{{ range(3) | batch(999999999, 0) | list | length }}",
    "slice-count": "{{ range(3) | slice(999999999) | list | length }}",
    "doubling-concatenation": "{% set ns = namespace(x='ab') %}{% for i in range(64) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x | length }}",
    "doubling-addition": "{% set ns = namespace(x=[1]) %}{% for i in range(64) %}{% set ns.x = ns.x + ns.x %}{% endfor %}{{ ns.x | length }}",
    "output-size": "{% for i in range(1000) %}{% for j in range(1000) %}{{ 'x' * 100 }}{% endfor %}{% endfor %}",
    "output-size-of-literal-text": "{% for i in range(1000) %}{% for j in range(1000) %}" + "x" * 100 + "{% endfor %}{% endfor %}",
    "macro-output": "{% macro m() %}{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}{% endmacro %}{{ m() | length }}",
    "macro-recursion": "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
}


@pytest.mark.parametrize("template", RUNAWAY.values(), ids=RUNAWAY.keys())
def test_runaway_templates_are_refused_with_a_clear_error(template):
    with pytest.raises(TemplateError) as info:
        ENGINE.render(template, {"env": EnvView({})})
    assert "Traceback" not in info.value.describe()
    assert info.value.hint and "limit" in info.value.hint


def test_templates_within_the_limits_still_render():
    assert ENGINE.render("{{ 'ab' * 3 }}|{{ '%05d' % 42 }}|{{ 2 ** 64 }}|{{ [0] * 3 }}", {}) == "ababab|00042|18446744073709551616|[0, 0, 0]"
    assert ENGINE.render("{{ 'x' | center(5) }}{{ '{:>4}'.format(7) }}{{ 'a'.ljust(3) }}|", {}) == "  x     7a  |"
    total = "{% set ns = namespace(n=0) %}{% for i in range(1000) %}{% for j in range(500) %}{% set ns.n = ns.n + 1 %}{% endfor %}{% endfor %}{{ ns.n }}"
    assert ENGINE.render(total, {}) == "500000"
    assert ENGINE.render("{{ [[1], [2]] | sum(start=[]) }}", {}) == [1, 2]
    # Adding lists one by one was quadratic: joined once, 200,000 lists take no time.
    assert ENGINE.render("{{ ([[1]] * 200000) | sum(start=[]) | length }}", {}) == 200000
    with pytest.raises(TemplateError, match="'lipsum' is undefined"):
        ENGINE.render("{{ lipsum(100000000) | length }}", {})


def test_an_undefined_name_inside_a_structure_is_a_template_error():
    context = {"result": named("result", {"exit_code": 0})}
    with pytest.raises(TemplateError) as info:
        ENGINE.render("{{ {'code': result.exit_cod} }}", context)
    assert "'result.exit_cod' is undefined" in info.value.message
    with pytest.raises(TemplateError) as info:
        ENGINE.render("{{ [1, result.nope] }}", context)
    assert "'result.nope' is undefined" in info.value.message
    with pytest.raises(TemplateError):
        ENGINE.render("{{ [result] | map(attribute='exit_cod') | list }}", context)
