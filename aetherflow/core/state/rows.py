"""The rows a state store writes and returns: runs, job runs, step runs, locks.

One dataclass per table; its fields are the table's columns and the backends build
their inserts and read their results from them (:mod:`.sql`, :meth:`Row.from_mapping`),
so a column added by a migration needs a field here and no other change to the SQL. Times are epoch seconds;
``status`` holds a :class:`~aetherflow.core.status.Status` name (read back as plain
text, which compares equal to the member); ``outputs`` is a JSON mapping.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from ..errors import StateError


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def loads(text: str | None) -> Any:
    return json.loads(text) if text else None


class Row:
    """What the row classes share: their table, key and JSON columns."""

    TABLE: ClassVar[str]
    KEY: ClassVar[tuple[str, ...]]
    JSON: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))  # type: ignore[arg-type]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]):
        """The row of a query result (extra columns ignored; JSON columns given decoded or as text)."""
        values = {name: data[name] for name in cls.columns()}
        for name in cls.JSON:
            value = values[name]
            try:
                values[name] = (loads(value) if isinstance(value, str) else value) or {}
            except ValueError as exc:
                raise cls._damaged(values, name, exc) from None
        return cls(**values)

    @classmethod
    def _damaged(cls, values: Mapping[str, Any], column: str, exc: ValueError) -> StateError:
        """The error for a JSON column that does not parse, naming the row by its key."""
        key = ", ".join(f"{name.removesuffix('_id')} {values[name]!r}" for name in cls.KEY)
        return StateError(
            f"the state holds damaged {column} for {key}: not JSON ({exc})",
            hint="the state database was changed outside aetherflow; start a new run (a new --run-id), "
            "or restore the database from a backup",
        )

    def values(self) -> tuple[Any, ...]:
        """The column values in :meth:`columns` order, JSON columns encoded as text."""
        return tuple(dumps(getattr(self, name) or {}) if name in self.JSON else getattr(self, name) for name in self.columns())


@dataclass(frozen=True)
class RunRow(Row):
    TABLE: ClassVar[str] = "runs"
    KEY: ClassVar[tuple[str, ...]] = ("run_id",)
    JSON: ClassVar[tuple[str, ...]] = ("vars",)

    run_id: str
    flow_id: str
    status: str
    started_at: float
    profile: str | None = None
    flow_path: str | None = None
    flow_sha256: str | None = None
    fingerprint: str | None = None
    host: str | None = None
    pid: int | None = None
    ended_at: float | None = None
    duration_ms: int | None = None
    invocations: int = 1  # 1 + the number of times the run was resumed
    #: the run's variables: name -> {value, source}, or {sha256, source} for a secret one
    vars: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobRunRow(Row):
    TABLE: ClassVar[str] = "job_runs"
    KEY: ClassVar[tuple[str, ...]] = ("run_id", "job_id")
    JSON: ClassVar[tuple[str, ...]] = ("outputs",)

    run_id: str
    job_id: str
    status: str
    started_at: float | None = None
    ended_at: float | None = None
    duration_ms: int | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    position: int | None = None  # in the run's plan: rows are listed in this order
    outputs_masked: bool = False  # the scrubber changed the outputs: they are not what the job produced


@dataclass(frozen=True)
class StepRunRow(Row):
    TABLE: ClassVar[str] = "step_runs"
    KEY: ClassVar[tuple[str, ...]] = ("run_id", "job_id", "step_id")
    JSON: ClassVar[tuple[str, ...]] = ("outputs",)

    run_id: str
    job_id: str
    step_id: str
    step_type: str | None = None
    status: str = ""
    attempts: int = 0
    started_at: float | None = None
    ended_at: float | None = None
    duration_ms: int | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    position: int | None = None  # in its job
    outputs_masked: bool = False  # the scrubber changed the outputs: a resume runs the step again
    #: ``host:pgid`` of the process group the step runs a command in, while it does: a
    #: resume or a lock takeover after a crash stops it if it still runs
    process_group: str | None = None


@dataclass(frozen=True)
class LockInfo(Row):
    TABLE: ClassVar[str] = "locks"
    KEY: ClassVar[tuple[str, ...]] = ("key",)

    key: str
    owner: str  # LockOwner.encode(), or a foreign value
    acquired_at: float
    expires_at: float


@dataclass(frozen=True)
class PersistedRow(Row):
    """A value a flow keeps between runs (a watermark), read by later runs as ``store.<name>``."""

    TABLE: ClassVar[str] = "persisted"
    KEY: ClassVar[tuple[str, ...]] = ("flow_id", "name")

    flow_id: str
    name: str
    json_value: str  # the value as JSON text: any JSON value, null and 0 included
    updated_at: float
    run_id: str | None = None  # the run that wrote it; None when set by `aetherflow store set`

    @property
    def value(self) -> Any:
        return json.loads(self.json_value)

    @classmethod
    def of(cls, flow_id: str, name: str, value: Any, *, updated_at: float, run_id: str | None = None) -> PersistedRow:
        return cls(flow_id, name, dumps(value), updated_at, run_id)
