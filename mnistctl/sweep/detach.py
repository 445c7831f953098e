"""Submit a sweep's jobs to SLURM, remember which SLURM job runs which sweep job, and wait or return at once.

    mnistctl sweep criterion=ce,mse hydra/launcher=submitit_slurm --detach   # submit and go
    mnistctl sweep --status sweeps/<time>                                   # follow it from anywhere

Hydra's submitit launcher submits a batch of jobs as one SLURM job array through `submitit.AutoExecutor`,
then waits for every result. While `mnistctl sweep` runs the multirun, `submissions()` lends the launcher
an executor that does the same submission with three differences: a job that already completed in the
sweep folder is not submitted again (its record is its result: a resumed sweep asks SLURM only for what
is left), each submission is recorded in <sweep>/slurm.json (job number, overrides, SLURM job id), and
with `detach` the launcher gets a stand-in result per job instead of waiting. The jobs run exactly as
without it: same sbatch script, same pickled Hydra job, same requeue on time limit and preemption.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mnistctl.atomic import atomic_write
from mnistctl.layout import SLURM_JOBS
from mnistctl.sweep.job_folder import find_job_dir, job_key, read_record
from mnistctl.sweep.slurm_wait import AwaitedJob

log = logging.getLogger(__name__)


def read_submissions(sweep_dir: Path) -> list[dict]:
    """Every submission of the sweep, oldest first: {"submitted", "jobs": [{job, key, overrides, slurm_job_id}]}."""
    try:
        record = json.loads((Path(sweep_dir) / SLURM_JOBS).read_text())
    except (OSError, ValueError):
        return []
    return [s for s in record.get("submissions", []) if isinstance(s, dict)] if isinstance(record, dict) else []


def submitted_jobs(sweep_dir: Path) -> dict[str, dict]:
    """The latest submission of each job, by its key (its overrides)."""
    return {job["key"]: job for submission in read_submissions(sweep_dir) for job in submission.get("jobs", [])}


def _record(sweep_dir: Path, jobs: list[dict], skipped: list[str]) -> None:
    submissions = [*read_submissions(sweep_dir)]
    submissions.append({"submitted": time.strftime("%Y-%m-%dT%H:%M:%S"), "jobs": jobs, "skipped": skipped})
    with atomic_write(Path(sweep_dir) / SLURM_JOBS) as f:
        json.dump({"submissions": submissions}, f, indent=2)


class _Finished:
    """A job that completed earlier in this sweep folder: its job.json is its result, nothing is submitted."""

    def __init__(self, record: dict) -> None:
        self.record = record

    def results(self) -> list:
        from hydra.core.utils import JobReturn, JobStatus

        from mnistctl.sweep.job import JobResult

        return [JobReturn(status=JobStatus.COMPLETED, _return_value=JobResult(self.record))]


class _Submitted:
    """A job left running on SLURM: Hydra's sweeper reads a (None) result of each job, so it gets one now."""

    def __init__(self, job) -> None:
        self.job = job

    def results(self) -> list:
        from hydra.core.utils import JobReturn, JobStatus

        return [JobReturn(status=JobStatus.COMPLETED, _return_value=None)]


@contextmanager
def submissions(sweep_dir: Path, detach: bool) -> Iterator[list[dict]]:
    """Within it, Hydra's submitit launcher submits through the recording executor; yields the jobs submitted."""
    import submitit

    submitted: list[dict] = []
    original = submitit.AutoExecutor

    class RecordingExecutor(original):
        def map_array(self, fn, *iterables):
            # The launcher's arguments per job: (overrides, "hydra.sweep.dir", job number, job id, Hydra state).
            calls = list(zip(*iterables, strict=True))
            results: list = [None] * len(calls)
            to_submit, skipped = [], []
            for i, call in enumerate(calls):
                key = job_key(list(call[0]))
                done = find_job_dir(sweep_dir, key)
                record = read_record(done) if done is not None else None
                if record and record.get("status") == "completed":
                    results[i] = _Finished(record)
                    skipped.append(key)
                else:
                    to_submit.append(i)
            jobs = super().map_array(fn, *zip(*[calls[i] for i in to_submit], strict=True)) if to_submit else []
            entries = []
            for i, job in zip(to_submit, jobs, strict=True):
                overrides = list(calls[i][0])
                results[i] = _Submitted(job) if detach else AwaitedJob(job, sweep_dir, job_key(overrides))
                entry = {"job": calls[i][2], "key": job_key(overrides), "overrides": overrides}
                entries.append({**entry, "slurm_job_id": job.job_id})
            if skipped:
                log.info("%d job(s) already completed in %s: not submitted again", len(skipped), sweep_dir)
            _record(sweep_dir, entries, skipped)
            submitted.extend(entries)
            return results

    submitit.AutoExecutor = RecordingExecutor
    try:
        yield submitted
    finally:
        submitit.AutoExecutor = original


# -- the command's side: --detach, and --resume of a sweep whose jobs may still be on the cluster ---------------


def detach_problem(launcher: str, sweeper: str) -> str | None:
    """Why `--detach` cannot be used with this launcher and sweeper, or None."""
    if launcher != "submitit_slurm":
        return (
            f"--detach needs hydra/launcher=submitit_slurm, whose jobs run on the cluster without this process; "
            f"with hydra/launcher={launcher} they run inside it: keep it running (tmux, screen, nohup)"
        )
    if sweeper != "basic":
        return (
            f"--detach cannot run hydra/sweeper={sweeper}: it picks each trial from the results before it, so it "
            "must wait for them; run the sweep in tmux or screen, or without --detach"
        )
    return None


def live_jobs(sweep_dir: Path) -> dict[str, str]:
    """The SLURM jobs of this sweep that are queued or running, with their state (raises Unreachable)."""
    from mnistctl.sweep.scheduler import is_live, slurm_states

    ids = [job["slurm_job_id"] for job in submitted_jobs(sweep_dir).values()]
    return {job: state for job, state in slurm_states(ids).items() if is_live(state)}


def wait_for_live_jobs(sweep_dir: Path, detach: bool, poll_s: float = 5.0) -> None:
    """Before --resume submits anything: a job still queued or running on SLURM must not run twice."""
    import sys

    from mnistctl.errors import UsageError
    from mnistctl.sweep.scheduler import Unreachable

    if not submitted_jobs(sweep_dir):
        return
    try:
        live = live_jobs(sweep_dir)
        if live and detach:
            raise UsageError(
                f"{len(live)} job(s) of {sweep_dir} are still queued or running on SLURM ({', '.join(sorted(live))}): "
                "--resume without --detach waits for them; or scancel them first"
            )
        if live:
            sys.stderr.write(
                f"mnistctl sweep: waiting for {len(live)} job(s) still queued or running on SLURM "
                f"({', '.join(sorted(live))}); Ctrl-C stops waiting, not the jobs\n"
            )
        while live:
            time.sleep(poll_s)
            live = live_jobs(sweep_dir)
    except Unreachable as err:
        raise UsageError(
            f"cannot ask SLURM whether the jobs of {sweep_dir} still run ({err}); run --resume where squeue works, "
            "so that no job runs twice"
        ) from None


def print_detached(sweep_dir: Path, jobs: list[dict]) -> None:
    import sys

    ids = [job["slurm_job_id"] for job in jobs]
    arrays = sorted({i.split("_")[0] for i in ids})
    sys.stdout.write(
        f"mnistctl sweep: submitted {len(ids)} job(s) to SLURM ({', '.join(ids)}); they run without this process\n"
        f"  sweep folder  {sweep_dir}\n"
        f"  follow it     mnistctl sweep --status {sweep_dir}\n"
        f"  results       mnistctl sweep --summary {sweep_dir}\n"
        f"  finish        mnistctl sweep --resume {sweep_dir}   (waits for them, resumes interrupted jobs, summary)\n"
        f"  cancel        scancel {' '.join(arrays)}\n"
    )
