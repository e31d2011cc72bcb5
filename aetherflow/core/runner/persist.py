"""Persisted values (watermarks): what steps ask to keep for later runs of the flow.

A step's ``persist: {NAME: TEMPLATE}`` is rendered when the step succeeds (with
``result``, like its outputs) and collected here. The values are written to the state
store only when the whole run succeeds, in the same transaction as the run's final
status (:meth:`StateStore.finish_run`); a failed or interrupted run writes none. Later
runs read them under the ``store`` root.

A persisted value must never hold a secret: a value the scrubber would change (a known
secret, a URL with a password) is refused with an error naming the value, rather than
stored masked, which would silently corrupt the watermark.
"""

from __future__ import annotations

import datetime
import decimal
import threading
from collections.abc import Mapping
from typing import Any

from ..errors import PersistError
from ..redaction import Scrubber
from ..state.rows import PersistedRow


def json_value(value: Any) -> Any:
    """``value`` as JSON can hold it: dates and times as ISO text, whole decimals as
    integers, other decimals and unknown objects as text, tuples as lists."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return str(value)


def check_not_secret(name: str, value: Any, scrubber: Scrubber) -> None:
    """Refuse a value that holds a secret (stored masked it would be wrong, in clear a leak)."""
    if scrubber.scrub_data(value) != value:
        raise PersistError(
            f"persisted value {name!r} contains a secret; it is not stored",
            hint="persist only values that are not secret (an id, a timestamp, a count)",
        )


class PersistedValues:
    """The values a run's steps asked to persist, by name. Thread-safe."""

    def __init__(self, scrubber: Scrubber | None = None):
        self.scrubber = scrubber or Scrubber()
        self._values: dict[str, Any] = {}
        self._guard = threading.Lock()

    def collect(self, job_id: str, step_id: str, values: Mapping[str, Any]) -> None:
        """The rendered ``persist`` of one step; raises :class:`PersistError` for a secret."""
        ready = {name: json_value(value) for name, value in values.items()}
        for name, value in ready.items():
            check_not_secret(name, value, self.scrubber)
        with self._guard:
            self._values.update(ready)

    def values(self) -> dict[str, Any]:
        with self._guard:
            return dict(sorted(self._values.items()))

    def rows(self, flow_id: str, run_id: str, now: float) -> list[PersistedRow]:
        """The rows to write with the run's final status. Checked again: the scrubber may
        have learnt a secret after a value was collected."""
        values = self.values()
        for name, value in values.items():
            check_not_secret(name, value, self.scrubber)
        return [PersistedRow.of(flow_id, name, value, updated_at=now, run_id=run_id) for name, value in values.items()]
