"""The typed rows of the state store and its migrations, on both backends: every row
round-trips field for field, both backends have a column for every field, and a later
schema version that adds a column migrates an existing state in place."""

from __future__ import annotations

import dataclasses

import pytest

from aetherflow.core.errors import StateError
from aetherflow.core.state.base import LockOwner
from aetherflow.core.state.postgres import PostgresStateStore
from aetherflow.core.state.rows import JobRunRow, LockInfo, PersistedRow, RunRow, StepRunRow
from aetherflow.core.state.sqlite import SQLiteStateStore
from aetherflow.core.status import Status

TABLES = {"sqlite": "{}", "postgres": "aetherflow_{}"}


def table(backend, name: str) -> str:
    return TABLES[backend.name].format(name)


def columns(store, backend, name: str) -> list[str]:
    if backend.name == "sqlite":
        return [row["name"] for row in store._query(f"PRAGMA table_info({table(backend, name)})")]
    rows = store._query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position", (table(backend, name),)
    )
    return [row["column_name"] for row in rows]


def store_class(backend) -> type:
    return SQLiteStateStore if backend.name == "sqlite" else PostgresStateStore


def open_as(cls: type, backend):
    return cls(backend.sqlite_path if backend.name == "sqlite" else backend.dsn)


def test_both_backends_migrate_to_the_same_version_one_step_at_a_time():
    for cls in (SQLiteStateStore, PostgresStateStore):
        assert sorted(cls.MIGRATIONS) == list(range(1, cls.schema_version() + 1))
    assert SQLiteStateStore.schema_version() == PostgresStateStore.schema_version()


def test_every_field_of_a_row_is_a_column_of_its_table(backend):
    store = backend.open()
    try:
        for row_type in (RunRow, JobRunRow, StepRunRow, LockInfo, PersistedRow):
            assert set(row_type.columns()) <= set(columns(store, backend, row_type.TABLE)), row_type.__name__
    finally:
        store.close()


def test_typed_rows_round_trip_field_for_field(backend):
    run = RunRow(
        run_id="r-1", flow_id="f", status=Status.RUNNING, started_at=1700000000.25, profile="prod", flow_path="/flows/f.yaml",
        flow_sha256="ab" * 32, fingerprint="fp", host="h", pid=4242, vars={"day": {"value": "2024-05-01", "source": "var:cli"}},
    )
    job = JobRunRow(
        run_id="r-1", job_id="j", status=Status.SUCCESS, started_at=1700000001.5, ended_at=1700000002.75, duration_ms=1250,
        outputs={"n": 3, "nested": {"list": [1, "x", None]}}, error=None, position=0,
    )
    step = StepRunRow(
        run_id="r-1", job_id="j", step_id="s", step_type="check_items", status=Status.FAILED, attempts=3,
        started_at=1700000001.5, ended_at=1700000002.5, duration_ms=1000, outputs={}, error="boom", position=0,
    )
    store = backend.open()
    try:
        store.create_run(run)
        store.record_job(dataclasses.replace(job, status=Status.RUNNING, ended_at=None, duration_ms=None, outputs={}))
        store.record_job(job)
        store.record_step(step)
        assert store.get_run("r-1") == run
        assert store.list_runs("f") == [run] and store.list_runs("other") == []
        assert store.job_runs("r-1") == [job], "a recorded job is replaced by the next record of it"
        assert store.step_runs("r-1") == [step]
        assert isinstance(store.get_run("r-1"), RunRow) and store.get_run("missing") is None

        assert store.latest_unfinished_run("f") == "r-1"
        store.finish_run("r-1", Status.SUCCESS, 1700000009.0, 9000)
        assert store.latest_unfinished_run("f") is None
        assert store.get_run("r-1") == dataclasses.replace(run, status=Status.SUCCESS, ended_at=1700000009.0, duration_ms=9000)

        store.reopen_run("r-1", fingerprint="fp2", host=None, pid=77)
        reopened = store.get_run("r-1")
        assert (reopened.status, reopened.ended_at, reopened.invocations) == (Status.RUNNING, None, 2)
        assert (reopened.fingerprint, reopened.host, reopened.pid) == ("fp2", "h", 77), "a fact not given is kept"

        store.set_run_vars("r-1", {"day": {"value": "2024-05-02", "source": "var:file:v.yaml"}})
        assert store.get_run("r-1").vars == {"day": {"value": "2024-05-02", "source": "var:file:v.yaml"}}

        watermark = PersistedRow.of("f", "last_ts", 0, updated_at=1700000010.5, run_id="r-1")
        store.finish_run("r-1", Status.SUCCESS, 1700000010.5, 10500, persist=[watermark, PersistedRow.of("f", "seen", [1, None], updated_at=1.0)])
        assert store.persisted("f") == [watermark, PersistedRow("f", "seen", "[1,null]", 1.0, None)]
        assert store.persisted("f")[0].value == 0, "falsy values survive"
        assert store.delete_persisted("f", "seen") and not store.delete_persisted("f", "seen")
        assert store.latest_successful_jobs("f", ["j", "other"]) == {"j": job}

        owner = LockOwner("r-1", "h", 4242)
        assert store.acquire_lock("k", owner, 60)
        (lock,) = store.list_locks()
        assert isinstance(lock, LockInfo) and (lock.key, lock.owner) == ("k", owner.encode())
        assert lock.expires_at - lock.acquired_at == pytest.approx(60, abs=1)
    finally:
        store.close()


def test_rows_are_listed_in_plan_and_step_order(backend):
    store = backend.open()
    try:
        store.create_run(RunRow(run_id="r", flow_id="f", status=Status.RUNNING, started_at=1.0))
        for position, job_id in enumerate(["z", "a", "m"]):
            store.record_job(JobRunRow(run_id="r", job_id=job_id, status=Status.SUCCESS, position=position))
            for step_position, step_id in enumerate(["s2", "s1"]):
                store.record_step(StepRunRow(run_id="r", job_id=job_id, step_id=step_id, status=Status.SUCCESS, position=step_position))
        assert [row.job_id for row in store.job_runs("r")] == ["z", "a", "m"]
        assert [(row.job_id, row.step_id) for row in store.step_runs("r")] == [
            ("a", "s2"), ("a", "s1"), ("m", "s2"), ("m", "s1"), ("z", "s2"), ("z", "s1")
        ]
    finally:
        store.close()


# -- a later version adding a column -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class JobRunRowWithWorker(JobRunRow):
    worker: str | None = None


def with_migration(backend, *statements: str) -> type:
    """The store class of ``backend`` as a later version would be: one more migration."""
    base = store_class(backend)
    version = base.schema_version() + 1
    return type(f"Future{base.__name__}", (base,), {"MIGRATIONS": {**base.MIGRATIONS, version: statements}})


def add_worker_column(backend) -> str:
    return f"ALTER TABLE {table(backend, 'job_runs')} ADD COLUMN worker {'TEXT' if backend.name == 'sqlite' else 'text'}"


def schema_version_on_disk(store, backend) -> int:
    if backend.name == "sqlite":
        return int(store._query("SELECT value FROM meta WHERE key = 'schema_version'")[0]["value"])
    return store._query("SELECT version FROM aetherflow_schema WHERE id = 1")[0]["version"]


def test_a_migration_adding_a_column_keeps_the_data_and_the_new_field_is_written_and_read(backend):
    store = backend.open()
    try:
        store.create_run(RunRow(run_id="old", flow_id="f", status=Status.SUCCESS, started_at=1.0))
        store.record_job(JobRunRow(run_id="old", job_id="j", status=Status.SUCCESS, outputs={"kept": True}, position=0))
    finally:
        store.close()

    future = with_migration(backend, add_worker_column(backend))
    for _ in range(2):  # migrated once; opening again finds the version current
        store = open_as(future, backend)
        try:
            assert schema_version_on_disk(store, backend) == future.schema_version() == store_class(backend).schema_version() + 1
            assert "worker" in columns(store, backend, "job_runs")
            assert store.job_runs("old")[0].outputs == {"kept": True}, "rows written before the migration are kept"
            (old,) = store._rows(JobRunRowWithWorker, "SELECT * FROM {job_runs}")
            assert old.worker is None
        finally:
            store.close()

    store = open_as(future, backend)
    try:
        row = JobRunRowWithWorker(run_id="new", job_id="j", status=Status.RUNNING, position=0, worker="w-1")
        store._write(row, upsert=True)  # the statement is built from the row's fields: nothing else names the column
        store._write(dataclasses.replace(row, status=Status.SUCCESS), upsert=True)
        assert store._rows(JobRunRowWithWorker, "SELECT * FROM {job_runs} WHERE run_id = ?", ("new",)) == [
            dataclasses.replace(row, status=Status.SUCCESS)
        ]
    finally:
        store.close()

    with pytest.raises(StateError, match="newer than this aetherflow"):
        backend.open()


def test_a_failing_migration_leaves_the_schema_as_it_was(backend):
    backend.open().close()
    broken = with_migration(backend, add_worker_column(backend), "THIS IS NOT SQL")
    with pytest.raises(StateError):
        open_as(broken, backend)
    store = backend.open()
    try:
        assert schema_version_on_disk(store, backend) == store_class(backend).schema_version()
        assert "worker" not in columns(store, backend, "job_runs")
    finally:
        store.close()


def test_a_column_that_arrived_before_its_version_number_is_not_added_twice(tmp_path):
    """A SQLite state whose version says 2 while it already has version 3's ``vars``
    column (a copy restored over a newer schema, a build between releases) opens and
    migrates; PostgreSQL's migrations say ``ADD COLUMN IF NOT EXISTS`` for the same reason."""
    import sqlite3

    path = tmp_path / "state.db"
    SQLiteStateStore(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TABLE persisted")
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.close()

    store = SQLiteStateStore(path)
    try:
        assert store._query("SELECT value FROM meta WHERE key = 'schema_version'")[0]["value"] == str(SQLiteStateStore.schema_version())
        assert [row["name"] for row in store._query("PRAGMA table_info(runs)")].count("vars") == 1
        assert store._query("SELECT name FROM sqlite_master WHERE name = 'persisted'"), "the rest of the migration ran"
    finally:
        store.close()
