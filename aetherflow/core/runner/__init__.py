"""The runner: jobs in topological order, steps in sequence, state recorded as it goes.

Statuses: a job is SUCCESS, FAILED, BLOCKED (a dependency failed or was blocked),
or SKIPPED (``when`` was false, a dependency was skipped, or a step with
``on_no_data: skip_job`` was skipped). A failed job does not stop independent jobs.
Steps after a failed step in the same job are BLOCKED. Retries happen only where a
step asks for them, and each attempt is logged.

The modules, in the order a run goes through them:

- :mod:`.plan`: which jobs run, in which order;
- :mod:`.run`: :class:`Runner` records the run (new or resumed), holds the flow lock
  and signals, runs the jobs and records the final status;
- :mod:`.session`: :class:`RunSession`, the state every job of the run shares (store,
  connectors, locks, logger, cancel event, finished jobs), safe across threads;
- :mod:`.job`: :class:`JobRun`, one job's gate and steps, with what belongs to that
  job alone (its template roots, outputs, logger and record);
- :mod:`.records`: the step, job and run records a run reports and stores.
"""

from .plan import plan_jobs
from .records import JobRecord, RunResult, StepRecord
from .run import Runner, new_run_id

__all__ = ["JobRecord", "RunResult", "Runner", "StepRecord", "new_run_id", "plan_jobs"]
