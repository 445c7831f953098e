"""How a job's attempt ends when something stops it: interrupted (resumable), never failed; and on SLURM, requeued.

    scancel --signal=USR2 <job>     # what SLURM sends before a time limit: the job is requeued and resumes
    scontrol requeue <job>          # as a preemption does: SIGTERM, then the job starts again and resumes

A fit stopped by a signal (SIGTERM from SLURM's time limit, a preemption or `scancel`, Ctrl-C, a kill)
is `interrupted`: its run folder keeps `last.ckpt`, and the next attempt (a requeue, or `mnistctl sweep
--resume`) continues from it in the same run folder. A crash (a segfault, an abort) stays `failed`.

On SLURM, submitit runs the job: its USR2 handler (sent `signal_delay_s` before the time limit, and on
preemption where the cluster sets preempt_send_user_signal) checkpoints the launcher and requeues the
job, up to `max_num_timeout` time limits (mnistctl sets 3: a job that resumes may be requeued). The fit
ignores USR2 and is stopped by the SIGTERM that comes with the requeue. An attempt whose fit was
interrupted ends without a result, so a waiting sweep keeps waiting for the requeued attempt.
"""

from __future__ import annotations

import os
import signal
import socket

# Signals that stop a fit from outside (a scheduler, a user, a lost terminal): the job is resumable.
STOP_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
MAX_NUM_TIMEOUT = 3  # requeues after a time limit (submitit's own default; Hydra's launcher config has 0)
PREEMPT_SIGNAL_ENV = "SUBMITIT_PREEMPT_SIGNAL"  # submitit's variable; USR2 when unset


def outcome(returncode: int) -> str:
    """completed, interrupted (stopped by a signal: exit 128+N as Python and shells report it, or killed by
    it) or failed."""
    if returncode == 0:
        return "completed"
    stopped = {int(s) for s in STOP_SIGNALS}
    if -returncode in stopped or (returncode > 128 and returncode - 128 in stopped):
        return "interrupted"
    return "failed"


def stop_reason(returncode: int) -> str:
    """What stopped an interrupted fit, for job.json's `error`."""
    number = -returncode if returncode < 0 else returncode - 128
    return f"stopped by {signal.Signals(number).name} (exit code {returncode}); resumable from last.ckpt"


def job_process_stop_reason(stop: BaseException) -> str:
    """Why the job process stopped its fit, for job.json: Ctrl-C, or submitit's requeue on SLURM (its USR2
    handler requeues the job, then exits with SystemExit)."""
    if isinstance(stop, SystemExit) and on_slurm():
        return "SLURM signalled the job (time limit or preemption): requeued; resumes from last.ckpt"
    return f"stopped by {type(stop).__name__} in the job process; resumable from last.ckpt"


def on_slurm() -> bool:
    """This attempt runs as a submitit job on SLURM (submitit's sbatch script sets SUBMITIT_EXECUTOR)."""
    return os.environ.get("SUBMITIT_EXECUTOR") == "slurm" and "SLURM_JOB_ID" in os.environ


def where() -> dict:
    """Where this attempt runs, for job.json: `mnistctl sweep --status` checks the process or asks SLURM."""
    place: dict = {"host": socket.gethostname(), "pid": os.getpid()}
    if on_slurm():
        array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
        place["slurm_job_id"] = f"{array}_{task}" if array and task else os.environ["SLURM_JOB_ID"]
        place["slurm_restarts"] = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    return place


def preempt_signal() -> signal.Signals:
    return signal.Signals[f"SIG{os.environ.get(PREEMPT_SIGNAL_ENV, 'USR2').upper().removeprefix('SIG')}"]


def leave_preemption_to_the_job() -> None:
    """In the fit process, before exec: ignore submitit's preemption signal, which SLURM sends to every process
    of the job. The job process handles it (checkpoint, requeue) and stops the fit with SIGTERM; the default
    action would kill the fit without a word. An ignored signal stays ignored across exec, and Lightning
    then leaves it alone (it installs its own SLURM requeue handler only on a signal that has none)."""
    if on_slurm():
        signal.signal(preempt_signal(), signal.SIG_IGN)


def end_interrupted_attempt(returncode: int) -> None:
    """After the fit of a SLURM attempt was interrupted and job.json says so: end the attempt without a result.

    SLURM requeues a preempted job, and submitit's handler requeued a timed-out one: the next attempt resumes
    and returns the result a waiting sweep reads. A job that is not requeued (scancel, time limits beyond
    max_num_timeout) ends without one; `mnistctl sweep --resume` continues it. With any other launcher the
    attempt returns its interrupted record: the sweep goes on with the other jobs.
    """
    if on_slurm():
        raise SystemExit(returncode if returncode > 0 else 128 - returncode)


def launcher_defaults(launcher: str, overrides: list[str]) -> list[str]:
    """Overrides mnistctl adds for a launcher: submitit_slurm requeues a job at its time limit (jobs resume)."""
    if launcher == "submitit_slurm" and not any(
        o.lstrip("+~").startswith("hydra.launcher.max_num_timeout") for o in overrides
    ):
        return [f"hydra.launcher.max_num_timeout={MAX_NUM_TIMEOUT}"]
    return []
