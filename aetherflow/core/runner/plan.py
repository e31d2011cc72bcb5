"""The plan of a run: which jobs, in which order."""

from __future__ import annotations

import heapq

from ..errors import UserError, suggest
from ..spec.models import JobSpec


def plan_jobs(jobs: list[JobSpec], selected: list[str] | None = None) -> list[JobSpec]:
    """Topological order, YAML order breaking ties; ``selected`` adds its upstream jobs."""
    by_id = {job.id: job for job in jobs}
    position = {job.id: i for i, job in enumerate(jobs)}
    wanted = set(by_id)
    if selected:
        wanted = set()
        pending = list(selected)
        while pending:
            job_id = pending.pop()
            if job_id not in by_id:
                raise UserError(f"unknown job {job_id!r}{suggest(job_id, by_id)}", hint=f"jobs of this flow: {', '.join(by_id)}")
            if job_id not in wanted:
                wanted.add(job_id)
                pending.extend(by_id[job_id].depends_on)
    indegree = {j: sum(1 for d in by_id[j].depends_on if d in wanted) for j in wanted}
    ready = [(position[j], j) for j, n in indegree.items() if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, job_id = heapq.heappop(ready)
        order.append(by_id[job_id])
        for other in wanted:
            if job_id in by_id[other].depends_on:
                indegree[other] -= 1
                if indegree[other] == 0:
                    heapq.heappush(ready, (position[other], other))
    return order
