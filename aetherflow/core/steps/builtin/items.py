"""``check_items``: gate a job on whether a list has enough items."""

from __future__ import annotations

from ..base import STEP_SKIPPED, STEP_SUCCESS, Input, Step, StepResult


class CheckItems(Step):
    type = "check_items"
    summary = "Count items (a list or comma-separated string); SKIPPED below min_count"
    inputs = {
        "items": Input((list, str), required=True, help="a list, or a comma-separated string"),
        "min_count": Input(int, default=1, help="fewer items than this makes the step SKIPPED"),
    }
    outputs = ("has_data", "count")

    def run(self, ctx, inputs):
        items = inputs["items"]
        if isinstance(items, str):
            items = [part.strip() for part in items.split(",") if part.strip()]
        count = len(items)
        has_data = count >= inputs["min_count"]
        status = STEP_SUCCESS if has_data else STEP_SKIPPED
        return StepResult(status, {"has_data": has_data, "count": count})
