"""Sweep jobs on the local SLURM cluster that SLURM stops: requeued ones continue, cancelled ones resume.

    .venv/bin/python -m pytest -m slurm tests/test_slurm_requeue.py

Each test runs a real `mnistctl sweep hydra/launcher=submitit_slurm` and, once a job has trained an epoch,
forces what a cluster does to it: `scancel --signal=USR2` (what SLURM sends `--signal` seconds before a time
limit, and on preemption: submitit checkpoints and requeues the job), `scontrol requeue` (a preemption
that requeues: SIGTERM, then the job waits in the queue again) or a plain `scancel` (the job ends for
good: `--resume` continues it). SLURM makes a requeued job wait about two minutes before it may start
again; the tests move its start to now with `scontrol update StartTime=now`, as an admin can.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SLURM_LAUNCHER, SWEEP_ON_CPU, job_info, read_csv, run_cli, slurm

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("sweep_tree")]
EPOCHS = 4
# Enough batches that a job is still training when it is signalled after its first epoch.
BUDGET = [
    f"trainer.max_epochs={EPOCHS}",
    "trainer.limit_train_batches=40",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    SWEEP_ON_CPU,
]


def record(sweep_dir: Path, job: int) -> dict:
    try:
        return json.loads((sweep_dir / str(job) / "job.json").read_text())
    except (OSError, ValueError):
        return {}


def run_record(sweep_dir: Path, job: int) -> dict:
    return json.loads((sweep_dir / str(job) / "runs" / "mnist" / "version_0" / "run.json").read_text())


def wait_for_first_epoch(sweep_dir: Path, job: int, proc: subprocess.Popen, timeout: float = 300) -> dict:
    """The job's record once its first epoch's last.ckpt exists (the job still running)."""
    last = sweep_dir / str(job) / "runs" / "mnist" / "version_0" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if last.is_file() and record(sweep_dir, job).get("slurm_job_id"):
            found = record(sweep_dir, job)
            assert found["status"] == "running", f"job {job} ended before it could be signalled: {found}"
            return found
        time.sleep(0.1)
    raise AssertionError(f"job {job} never finished an epoch (sweep exit {proc.poll()})")


def start_when_requeued(env: dict, slurm_id: str, timeout: float = 120) -> dict:
    """Wait until SLURM has requeued the job (pending, one restart), then let it start now."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        [info] = job_info(env, slurm_id)
        if info["JobState"] == "PENDING" and info["Restarts"] == "1":
            slurm(env, "scontrol", "update", f"JobId={slurm_id}", "StartTime=now")
            return info
        time.sleep(0.2)
    raise AssertionError(f"SLURM job {slurm_id} was not requeued: {job_info(env, slurm_id)}")


def check_continued(sweep_dir: Path, job: int, trained: int) -> None:
    """The job completed in its second attempt, in its one run folder, without training an epoch twice."""
    done = record(sweep_dir, job)
    assert (done["status"], done["attempts"], done["epochs"]) == ("completed", 2, EPOCHS), done
    assert done["resumed_from"] == "runs/mnist/version_0/checkpoints/last.ckpt", done
    assert [p.name for p in (sweep_dir / str(job) / "runs" / "mnist").iterdir()] == ["version_0"]
    # The first attempt's fit was stopped by SIGTERM (not killed by submitit's USR2) and saved its progress.
    checkpoints = sweep_dir / str(job) / "runs" / "mnist" / "version_0" / "checkpoints"
    assert (checkpoints / "interrupted.ckpt").is_file()
    assert "mnistctl: warning: interrupted: saved" in (sweep_dir / str(job) / "stderr.log").read_text()
    run = run_record(sweep_dir, job)
    assert (run["status"], len(run["resumes"])) == ("completed", 1), run
    assert [h["epoch"] for h in run["history"]] == list(range(EPOCHS)), run["history"]
    assert 1 <= run["resumes"][0]["from_epoch"] <= trained + 1  # it went on from the epoch it had reached
    rows = read_csv(sweep_dir / str(job) / "runs" / "mnist" / "version_0" / "metrics.csv")
    val_rows = [r["epoch"] for r in rows if r.get("val/acc")]
    assert val_rows == [str(e) for e in range(EPOCHS)], val_rows  # each epoch validated and logged once


def sweep_process(sweep_dir: Path, env: dict, *jobs: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "mnistctl", "sweep", *jobs, *SLURM_LAUNCHER, *BUDGET]
    return subprocess.Popen(
        [*command, f"hydra.sweep.dir={sweep_dir}"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_signalled_and_requeued_jobs_continue_from_their_checkpoint(slurm_env, tmp_path):
    sweep_dir = tmp_path / "s"
    proc = sweep_process(sweep_dir, slurm_env, "criterion=ce,mse")
    try:
        first = wait_for_first_epoch(sweep_dir, 0, proc)
        slurm(slurm_env, "scancel", "--signal=USR2", first["slurm_job_id"])  # a time limit's warning, a preemption
        second = wait_for_first_epoch(sweep_dir, 1, proc)
        slurm(slurm_env, "scontrol", "requeue", second["slurm_job_id"])  # a preemption that requeues
        trained = {0: run_record(sweep_dir, 0)["epochs_completed"], 1: run_record(sweep_dir, 1)["epochs_completed"]}
        for job in first, second:
            start_when_requeued(slurm_env, job["slurm_job_id"])
        out, err = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-3000:] + out[-3000:]  # the sweep's own log lines are Hydra's, on stdout
    assert "sacct" not in err + out  # the cluster keeps no accounting: nothing asks sacct at every poll
    for job in (0, 1):
        check_continued(sweep_dir, job, trained[job])
        assert record(sweep_dir, job)["slurm_restarts"] == 1
    logs = {job: (sweep_dir / ".submitit" / record(sweep_dir, job)["slurm_job_id"]).glob("*_log.*") for job in (0, 1)}
    logs = {job: "".join(p.read_text() for p in paths) for job, paths in logs.items()}
    assert "Caught signal SIGUSR2" in logs[0] and "Exiting gracefully after preemption/timeout" in logs[0]
    assert "Bypassing signal SIGTERM" in logs[1] and "Caught signal SIGUSR2" not in logs[1]
    rows = json.loads((sweep_dir / "summary.json").read_text())["jobs"]
    assert sorted((r["job"], r["status"], r["attempts"]) for r in rows) == [(0, "completed", 2), (1, "completed", 2)]
    assert all(0.0 < r["test_acc"] <= 1.0 for r in rows)


def test_a_cancelled_job_is_interrupted_and_resume_continues_it(slurm_env, tmp_path):
    sweep_dir = tmp_path / "s"
    proc = sweep_process(sweep_dir, slurm_env)
    try:
        first = wait_for_first_epoch(sweep_dir, 0, proc)
        slurm(slurm_env, "scancel", first["slurm_job_id"])  # SIGTERM, then the job ends for good
        out, err = proc.communicate(timeout=180)
    finally:
        proc.kill()
    assert proc.returncode == 1, err[-3000:] + out[-3000:]
    assert "sacct" not in err + out
    stopped = record(sweep_dir, 0)
    assert (stopped["status"], stopped["returncode"]) == ("interrupted", 143), stopped
    assert stopped["error"] == "stopped by SIGTERM (exit code 143); resumable from last.ckpt"
    [info] = job_info(slurm_env, first["slurm_job_id"])
    assert info["JobState"] == "CANCELLED", info
    trained = run_record(sweep_dir, 0)["epochs_completed"]
    assert 1 <= trained < EPOCHS

    done = run_cli("sweep", "--resume", str(sweep_dir), env=slurm_env, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    check_continued(sweep_dir, 0, trained)
    again = record(sweep_dir, 0)["slurm_job_id"]
    assert again != first["slurm_job_id"]  # --resume submitted it again
    [info] = job_info(slurm_env, again)
    assert (info["JobState"], info["ExitCode"]) == ("COMPLETED", "0:0"), info
