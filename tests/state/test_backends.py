"""The state backends themselves: schema creation and versioning, PostgreSQL connection
handling and secrecy of its DSN, and resume semantics that hold on both backends."""

from __future__ import annotations

import threading

import pytest

from aetherflow.core.errors import StateError
from aetherflow.core.state import open_state_store
from aetherflow.core.state.rows import RunRow, StepRunRow
from aetherflow.core.status import Status

from .conftest import flow_yaml, lines, make_host, write_flow_for

SECRET = "S3cr3t-Pa55-xyz"


# -- schema -------------------------------------------------------------------------------


def test_several_processes_creating_the_postgres_schema_at_once_all_succeed(pg_server):
    from aetherflow.core.state.postgres import PostgresStateStore

    for _ in range(3):
        with pg_server.fresh_database() as dsn:
            barrier = threading.Barrier(8)
            outcomes: list[object] = [None] * 8

            def open_store(index: int) -> None:
                barrier.wait()
                try:
                    store = PostgresStateStore(dsn)
                    store.close()
                    outcomes[index] = "ok"
                except Exception as exc:
                    outcomes[index] = exc

            threads = [threading.Thread(target=open_store, args=(i,)) for i in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert outcomes == ["ok"] * 8
            store = PostgresStateStore(dsn)
            try:
                assert store._query("SELECT id, version FROM aetherflow_schema") == [{"id": 1, "version": PostgresStateStore.schema_version()}]
            finally:
                store.close()


def test_a_state_schema_newer_than_this_program_is_refused(backend):
    store = backend.open()
    try:
        if backend.name == "postgres":
            store._execute("UPDATE aetherflow_schema SET version = 99")
        else:
            store._execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    finally:
        store.close()
    with pytest.raises(StateError, match="schema version 99, newer than this aetherflow"):
        backend.open()


def test_reopening_a_state_keeps_its_data_and_version(backend):
    store = backend.open()
    try:
        store.create_run(RunRow(run_id="r1", flow_id="f", status=Status.RUNNING, started_at=1.0))
        store.record_step(StepRunRow(run_id="r1", job_id="j", step_id="s", step_type="t", status=Status.SUCCESS, attempts=1, outputs={"n": [1, "x"]}))
    finally:
        store.close()
    store = backend.open()
    try:
        assert store.get_run("r1").flow_id == "f"
        (step,) = store.step_runs("r1")
        assert (step.status, step.outputs) == ("SUCCESS", {"n": [1, "x"]})
    finally:
        store.close()


# -- PostgreSQL connection ------------------------------------------------------------------


def test_postgres_store_survives_a_dropped_connection(pg_server, pg_database):
    import psycopg

    store = open_state_store("postgres", dsn=pg_database)
    try:
        store.create_run(RunRow(run_id="r", flow_id="f", status=Status.RUNNING, started_at=1.0))
        dbname = pg_database.rsplit("/", 1)[1]
        with psycopg.connect(pg_server.superuser_conninfo, autocommit=True) as conn:
            killed = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            ).fetchone()[0]
        assert killed == 1
        store.finish_run("r", "SUCCESS", 2.0, 1000)
        assert store.get_run("r").status == "SUCCESS"
    finally:
        store.close()


def _secret_flow(state_dsn_env: str = "AF_STATE_DSN") -> str:
    jobs = "- id: j\n  steps:\n    - {id: s, type: check_items, inputs: {items: [1]}}\n"
    return flow_yaml("secretive", jobs, state='{backend: postgres, dsn: "{{ env.' + state_dsn_env + ' }}"}')


def test_the_postgres_dsn_password_never_appears_in_output_or_errors(pg_backend):
    backend = pg_backend
    host = make_host(backend, "host-a")
    hosts = (host,)
    assert SECRET in backend.dsn
    flow = write_flow_for(hosts, "secretive.yaml", _secret_flow())
    outputs = []

    ok = host.run("run", flow, "--json", "-v")
    assert ok.exit_code == 0, ok.stderr
    outputs.append(ok.output)
    for args in (("runs", "list", flow), ("runs", "list", flow, "--json"), ("locks", "list", "--flow", flow)):
        result = host.run(*args)
        assert result.exit_code == 0
        outputs.append(result.output)
    run_id = ok.json["run_id"]
    outputs.append(host.run("runs", "show", run_id, "--flow", flow, "--json").output)

    wrong_password = backend.dsn.replace(SECRET, "Wr0ng-" + SECRET)
    host.env["AF_STATE_DSN"] = wrong_password
    refused = host.run("run", flow)
    assert refused.exit_code == 1
    assert "password authentication failed" in refused.stderr and "cannot connect" in refused.stderr
    outputs.append(refused.output)
    outputs.append(host.run("runs", "list", flow, "-v").output)

    host.env["AF_STATE_DSN"] = backend.dsn.replace(f":{backend.dsn.rsplit(':', 1)[1].split('/')[0]}/", ":not-a-port/")
    unparsable = host.run("run", flow, "-v")
    assert unparsable.exit_code == 1 and "state database" in unparsable.stderr
    outputs.append(unparsable.output)

    host.env["AF_STATE_DSN"] = f"host=127.0.0.1 port=1 user=aetherflow password={SECRET} connect_timeout=2"
    unreachable = host.run("run", flow)
    assert unreachable.exit_code == 1 and "cannot connect" in unreachable.stderr
    outputs.append(unreachable.output)

    for text in outputs:
        assert SECRET not in text


def test_state_errors_raised_by_the_postgres_store_never_carry_the_password():
    from aetherflow.core.state.postgres import PostgresStateStore

    for dsn in (f"postgresql://u:{SECRET}@127.0.0.1:1/db?connect_timeout=2", f"host=127.0.0.1 port=x password={SECRET}", f"password={SECRET} = ="):
        with pytest.raises(StateError) as info:
            PostgresStateStore(dsn)
        assert SECRET not in str(info.value) and SECRET not in repr(info.value.args)


# -- resume ---------------------------------------------------------------------------------


RESUME_JOBS = """
- id: a
  steps:
    - id: s1
      type: statetest.ledger
      inputs: {ledger: "{{ env.LEDGER }}", previous: seed, artifact: s1.bin, size: 32, sleep_ms: [0, 1]}
    - id: s2
      type: statetest.ledger
      inputs:
        {ledger: "{{ env.LEDGER }}", previous: "{{ steps.s1.outputs.token }}", artifact: s2.bin, size: 32, sleep_ms: [0, 1],
         fail: "{{ env.FAIL == 'yes' }}"}
"""


def test_resume_picks_the_latest_unfinished_run_reuses_finished_steps_and_feeds_their_outputs(backend, hosts):
    host, other = hosts
    ledger = backend.root / "ledger"
    for h in hosts:
        h.env.update(LEDGER=str(ledger), FAIL="yes")
    flow = write_flow_for(hosts, "resume.yaml", flow_yaml("resume", RESUME_JOBS, state=backend.state_yaml))
    failed = host.run("run", flow, "--json")
    assert failed.exit_code == 1
    run_id = failed.json["run_id"]
    token = failed.json["jobs"][0]["steps"][0]["outputs"]["token"]

    other.env["FAIL"] = "no"
    resumed = other.run("run", flow, "--resume", "--json")
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.json["run_id"] == run_id and resumed.json["status"] == "SUCCESS"
    assert [line.split()[:2] for line in lines(ledger)] == [["start", "a.s1"], ["end", "a.s1"], ["start", "a.s2"], ["start", "a.s2"], ["end", "a.s2"]]
    s1, s2 = resumed.json["jobs"][0]["steps"]
    assert s1["outputs"]["token"] == token, "the reused step reports its stored outputs"
    assert s2["outputs"]["token"] != token and s2["status"] == "SUCCESS"
    assert "step.reused" in resumed.stderr

    again = other.run("run", flow, "--resume")
    assert again.exit_code == 2
    assert "error: no unfinished run of flow 'resume' to resume\n  hint: run without --resume to start a new run" in again.stderr
    assert "Traceback" not in again.stderr


def test_resuming_after_the_flow_file_changed_warns(backend, hosts):
    host, _ = hosts
    host.env.update(LEDGER=str(backend.root / "ledger"), FAIL="yes")
    flow = write_flow_for((host,), "changed.yaml", flow_yaml("changed", RESUME_JOBS, state=backend.state_yaml))
    assert host.run("run", flow, "--run-id", "changing").exit_code == 1
    (host.root / flow).write_text((host.root / flow).read_text() + "# edited\n")
    host.env["FAIL"] = "no"
    result = host.run("run", flow, "--run-id", "changing")
    assert result.exit_code == 0
    assert "the flow file changed since run changing started" in result.output


def test_a_run_id_of_another_flow_is_refused(backend, hosts):
    host, _ = hosts
    host.env.update(LEDGER=str(backend.root / "ledger"), FAIL="no")
    first = write_flow_for((host,), "one.yaml", flow_yaml("one", RESUME_JOBS, state=backend.state_yaml))
    second = write_flow_for((host,), "two.yaml", flow_yaml("two", RESUME_JOBS, state=backend.state_yaml))
    assert host.run("run", first, "--run-id", "shared-id").exit_code == 0
    result = host.run("run", second, "--run-id", "shared-id")
    assert result.exit_code == 2 and "belongs to flow 'one'" in result.stderr
