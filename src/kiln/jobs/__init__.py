"""Jobs: saved multi-task jobs, their runs (DAGs with run_if, condition, run_job and for_each
tasks, retries, timeouts, repair, cancel), Quartz cron schedules and webhook notifications.

Invariants: every bad job or run request is refused before anything is stored (400 naming
the field); a run and each attempt of each task are rows, and only the run's driver changes
their state, along Databricks' life cycle (`states`); an attempt is claimed by the control
plane that executes it in the transaction that starts it, and after a restart it is resumed
from what it recorded or ended INTERNAL_ERROR, never executed twice; a schedule's tick fires
in the transaction that records it, once; clusters a run creates end with it.
"""

from kiln.jobs.service import Jobs

__all__ = ["Jobs"]
