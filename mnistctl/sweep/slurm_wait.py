"""Wait for a sweep job on SLURM until it returns a result or SLURM says it ended without one.

    mnistctl sweep criterion=ce,mse hydra/launcher=submitit_slurm   # each job's result is awaited this way

Hydra's submitit launcher waits on `job.results()`, and submitit learns that a job ended without a result
(cancelled with `scancel`, killed at a time limit it could not requeue, a lost node) only from `sacct`.
On a cluster without accounting (the local one of scripts/local-slurm.sh, many small ones) it never does:
the sweep waits forever, warning again and again that sacct failed. On one with accounting, results() raises
for such a job and the whole sweep stops. This waits for the result file alone, and asks squeue, scontrol
and sacct (scheduler.py) every few seconds: a job that SLURM no longer runs nor queues gets its job.json as
its result (interrupted: `--resume` continues it), so the sweep goes on and summarises. A requeued job is
queued again, so it is awaited on: its next attempt returns the result. A job counts as ended only when
SLURM says so at every poll for GRACE_S seconds.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

from mnistctl.sweep import scheduler
from mnistctl.sweep.job_folder import find_job_dir, read_record

log = logging.getLogger(__name__)
POLL_S = 2.0
GRACE_S = 15.0  # after SLURM says the job ended: time for submitit to write the result of a job that returned


class AwaitedJob:
    """A submitted SLURM job whose `results()` returns when it has a result or has ended without one."""

    def __init__(self, job, sweep_dir: Path, key: str) -> None:
        self.job, self.sweep_dir, self.key = job, Path(sweep_dir), key

    def results(self) -> list:
        ended_at = None
        while not self._has_result():
            time.sleep(POLL_S)
            ended = self._ended()
            # Ended at every poll for GRACE_S, not once: a requeued job may look ended for a moment between its
            # attempts (forgotten by squeue, a state between flags), and its next attempt is still to be awaited.
            # An unanswered poll (None) changes nothing.
            if ended is False:
                ended_at = None
            elif ended and ended_at is None:
                ended_at = time.monotonic()
            elif ended and time.monotonic() - ended_at > GRACE_S and not self._has_result():
                return [self._without_result()]
        return self.job.results()

    def _has_result(self) -> bool:
        """The job's result file exists. Not submitit's done(), which also asks sacct: where the cluster keeps no
        accounting, sacct fails and submitit warns of it every few polls; where it does, a cancelled job is
        "done", and its results() raises and stops the whole sweep. Whether it ended is `_ended`'s to say.
        A sweep job is one task (plan.py refuses more): its result file is the job's only one."""
        folder = self.job.paths.folder
        with contextlib.suppress(OSError):
            folder.chmod(folder.stat().st_mode)  # refreshes a network file system's view, as submitit does
        return self.job.paths.result_pickle.exists()

    def _ended(self) -> bool | None:
        """Whether SLURM says the job ended (or has forgotten it); None when SLURM does not answer."""
        try:
            state = scheduler.slurm_states([self.job.job_id]).get(self.job.job_id)
        except scheduler.Unreachable as err:
            log.debug("cannot ask SLURM about job %s: %s", self.job.job_id, err)
            return None
        return not scheduler.is_live(state)  # ended, or forgotten by SLURM (None)

    def _without_result(self):
        from hydra.core.utils import JobReturn, JobStatus

        from mnistctl.sweep.job import JobResult

        job_dir = find_job_dir(self.sweep_dir, self.key)
        record = (read_record(job_dir) if job_dir is not None else None) or {"status": "cancelled", "val_acc": None}
        if record.get("status") == "running":
            record["status"] = "interrupted"  # it never recorded its end: stopped from outside
        log.warning("SLURM job %s ended without a result: job %s", self.job.job_id, record.get("status"))
        return JobReturn(status=JobStatus.COMPLETED, _return_value=JobResult(record))
