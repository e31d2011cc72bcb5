"""Which jobs a run runs: ``--job``, ``--only``, ``--exclude``.

- ``--job ID``: the job and every job it depends on (directly or not);
- ``--only ID``: exactly these jobs;
- ``--exclude ID``: not these jobs (after ``--job`` / ``--only``, or from all jobs).

A selected job whose dependency is not selected reads that dependency's outputs (and
its gate sees its status) from the newest successful run of the flow in which that job
succeeded; :meth:`JobSelection.upstream` names those jobs, the runner fetches them, and
a job no successful run has is an error naming it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SelectionError, suggest
from ..spec.models import JobSpec
from .plan import plan_jobs


@dataclass(frozen=True)
class JobSelection:
    jobs: tuple[str, ...] = ()  # --job: with their upstream jobs
    only: tuple[str, ...] = ()  # --only: exactly these
    exclude: tuple[str, ...] = ()  # --exclude: never these

    def plan(self, jobs: list[JobSpec]) -> list[JobSpec]:
        """The selected jobs in run order (topological, file order breaking ties)."""
        by_id = {job.id: job for job in jobs}
        for option, ids in (("--job", self.jobs), ("--only", self.only), ("--exclude", self.exclude)):
            for job_id in ids:
                if job_id not in by_id:
                    raise SelectionError(f"{option}: unknown job {job_id!r}{suggest(job_id, by_id)}", hint=f"jobs of this flow: {', '.join(by_id)}")
        if self.jobs and self.only:
            raise SelectionError(
                "--job and --only cannot be used together", hint="--job runs jobs with their upstream jobs; --only runs exactly the jobs named"
            )
        if self.jobs:
            wanted = {job.id for job in plan_jobs(jobs, list(self.jobs))}
        elif self.only:
            wanted = set(self.only)
        else:
            wanted = set(by_id)
        wanted -= set(self.exclude)
        if not wanted:
            raise SelectionError("the job selection leaves no job to run", hint="check --exclude")
        return plan_jobs([job for job in jobs if job.id in wanted])

    def upstream(self, jobs: list[JobSpec], plan: list[JobSpec]) -> list[str]:
        """Jobs not in ``plan`` that planned jobs depend on, directly or through each other,
        in file order: their outputs come from an earlier run."""
        by_id = {job.id: job for job in jobs}
        planned = {job.id for job in plan}
        needed: set[str] = set()
        pending = [dep for job in plan for dep in job.depends_on if dep not in planned]
        while pending:
            job_id = pending.pop()
            if job_id not in needed:
                needed.add(job_id)
                pending.extend(dep for dep in by_id[job_id].depends_on if dep not in planned)
        return [job.id for job in jobs if job.id in needed]

    def missing_upstream_error(self, missing: list[str], flow_id: str) -> SelectionError:
        names = ", ".join(repr(job_id) for job_id in missing)
        return SelectionError(
            f"the selected jobs need the outputs of job{'s' if len(missing) > 1 else ''} {names}, "
            f"which no successful run of flow {flow_id!r} has",
            hint="select them too (--only ... or --job, which runs upstream jobs), or run the whole flow once",
        )
