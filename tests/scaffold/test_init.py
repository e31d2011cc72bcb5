"""`aetherflow init`: a project that validates and runs as written."""

from __future__ import annotations

import json

import pytest

from aetherflow.core.errors import UserError
from aetherflow.core.scaffold import create_project, template_names
from tests.helpers import ROOT, base_env, check_jsonschema, run_cli


def test_aetherflow_init_then_validate_and_run_dev_succeed_with_no_edits(tmp_path):
    env = base_env(tmp_path)
    created = run_cli("init", "orders-etl", env=env, cwd=tmp_path)
    assert created.exit_code == 0, created.output
    directory = tmp_path / "orders-etl"
    names = {str(path.relative_to(directory)) for path in directory.rglob("*") if path.is_file()}
    assert {"example.flow.yaml", "profiles.yaml", ".env.example", "plugins/local.py", "schemas/flow.schema.json",
            "schemas/profiles.schema.json", ".gitignore", "README.md"} == names
    assert "created 8 files in orders-etl (template duckdb, flow id orders-etl)" in created.stdout
    assert "aetherflow run example.flow.yaml --profile dev" in created.stdout
    flow = directory / "example.flow.yaml"
    assert flow.read_text().startswith("# yaml-language-server: $schema=schemas/flow.schema.json\n")
    assert (directory / "profiles.yaml").read_text().startswith("# yaml-language-server: $schema=schemas/profiles.schema.json\n")

    validated = run_cli("validate", flow.name, env=env, cwd=directory)
    assert validated.exit_code == 0, validated.output
    ran = run_cli("run", flow.name, "--profile", "dev", "--json", env=env, cwd=directory)
    assert ran.exit_code == 0, ran.output
    document = ran.json
    assert document["flow_id"] == "orders-etl" and document["status"] == "SUCCESS"
    load = next(job for job in document["jobs"] if job["id"] == "load")
    assert load["outputs"] == {"rows": 3}
    assert [s["type"] for s in load["steps"]] == ["db_load", "local.expect_rows"]
    assert (directory / "data" / "warehouse.duckdb").is_file()
    # Run again: the project is rerunnable as it stands.
    again = run_cli("run", flow.name, "--profile", "dev", env=env, cwd=directory)
    assert again.exit_code == 0, again.output


def test_written_files_pass_check_jsonschema_against_their_schemas_and_the_repository_ones(tmp_path):
    project = create_project(tmp_path / "p")
    flow, profiles = project.directory / "example.flow.yaml", project.directory / "profiles.yaml"
    for schemas in (project.directory / "schemas", ROOT / "schemas"):
        for schema, document in ((schemas / "flow.schema.json", flow), (schemas / "profiles.schema.json", profiles)):
            proc = check_jsonschema(schema, document)
            assert proc.returncode == 0, f"{schema} rejects {document.name}: {proc.stdout}{proc.stderr}"


def test_the_project_schema_knows_the_projects_own_step(tmp_path):
    project = create_project(tmp_path / "p")
    schema = json.loads((project.directory / "schemas" / "flow.schema.json").read_text())
    assert "local.expect_rows" in schema["$defs"]["StepSpec"]["properties"]["type"]["examples"]
    flow = project.directory / "example.flow.yaml"
    flow.write_text(flow.read_text().replace("min_rows: 1", "min_row: 1"))
    proc = check_jsonschema(project.directory / "schemas" / "flow.schema.json", flow)
    assert proc.returncode == 1
    assert "'min_row' was unexpected" in proc.stdout


def test_init_leaves_the_registries_as_it_found_them(tmp_path):
    from aetherflow.core.connectors.registry import entries
    from aetherflow.core.steps.registry import step_types

    before = (step_types(), [e.key for e in entries()])
    create_project(tmp_path / "a")
    create_project(tmp_path / "b")  # the same plugin again: no "already registered"
    assert (step_types(), [e.key for e in entries()]) == before


def test_init_refuses_to_overwrite_on_the_command_line_too(tmp_path):
    first = run_cli("init", str(tmp_path / "p"), "--template", "minimal")
    assert first.exit_code == 0, first.output
    again = run_cli("init", str(tmp_path / "p"), "--template", "minimal")
    assert again.exit_code == 2 and "already exist" in again.stderr and "--force" in again.stderr
    forced = run_cli("init", str(tmp_path / "p"), "--template", "minimal", "--force")
    assert forced.exit_code == 0, forced.output
    typo = run_cli("init", str(tmp_path / "q"), "--template", "duckbd")
    assert typo.exit_code == 2 and "did you mean 'duckdb'" in typo.stderr and "Traceback" not in typo.stderr


def test_existing_files_are_never_replaced_unless_forced(tmp_path):
    target = tmp_path / "p"
    target.mkdir()
    (target / "profiles.yaml").write_text("mine: {}\n")
    with pytest.raises(UserError) as info:
        create_project(target)
    assert "1 file(s) already exist" in info.value.message and "profiles.yaml" in info.value.message
    assert "--force" in info.value.hint
    assert sorted(p.name for p in target.iterdir()) == ["profiles.yaml"], "nothing is written when one file exists"
    assert (target / "profiles.yaml").read_text() == "mine: {}\n"
    create_project(target, force=True)
    assert "dev:" in (target / "profiles.yaml").read_text()


def test_templates_are_listed_and_a_typo_is_named(tmp_path):
    assert {"duckdb", "minimal"} <= set(template_names())
    with pytest.raises(UserError) as info:
        create_project(tmp_path / "p", template="minimall")
    assert "did you mean 'minimal'" in info.value.message and not (tmp_path / "p").exists()


def test_the_minimal_template_runs_too(tmp_path):
    project = create_project(tmp_path / "tiny", template="minimal")
    assert not any(path.suffix == ".py" for path in project.files)
    ran = run_cli("run", "example.flow.yaml", "--profile", "dev", "--json", env=base_env(tmp_path), cwd=project.directory)
    assert ran.exit_code == 0, ran.output
    assert ran.json["jobs"][0]["outputs"] == {"greeting": "hello from tiny"}
