"""Submit and go: `mnistctl sweep --detach` on the local SLURM cluster, followed with --status, --summary, --resume.

    .venv/bin/python -m pytest -m slurm tests/test_slurm_detach.py

The sweep command returns while its jobs are still queued or running on SLURM; --status shows each job's
state from job.json and squeue/scontrol; --summary works on the running sweep; --resume waits for the
jobs, trains nothing again and writes the summary.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from conftest import SLURM_LAUNCHER, SWEEP_ON_CPU, job_info, read_csv, run_cli, slurm

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("sweep_tree")]
BUDGET = ["trainer.max_epochs=2", "trainer.limit_train_batches=30", "trainer.limit_val_batches=2"]
BUDGET += ["trainer.limit_test_batches=2", SWEEP_ON_CPU]


def status_rows(stdout: str) -> dict[str, str]:
    """{job: state} from the --status table."""
    return dict(re.findall(r"│\s+(\d+) │ criterion=\w+\s+│ (\w+)", stdout))


def test_detach_returns_at_once_and_status_summary_resume_follow_the_jobs(slurm_env, tmp_path):
    sweep_dir = tmp_path / "d"
    args = ["--detach", "criterion=ce,mse", *SLURM_LAUNCHER, *BUDGET, f"hydra.sweep.dir={sweep_dir}"]
    done = run_cli("sweep", *args, env=slurm_env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    submissions = json.loads((sweep_dir / "slurm.json").read_text())["submissions"]
    ids = [job["slurm_job_id"] for job in submissions[0]["jobs"]]
    assert [job["job"] for job in submissions[0]["jobs"]] == [0, 1] and len(set(ids)) == 2
    assert f"submitted 2 job(s) to SLURM ({', '.join(ids)}); they run without this process" in done.stdout
    assert f"mnistctl sweep --status {sweep_dir}" in done.stdout
    # It returned before the jobs finished: SLURM still has them, and no job has a result yet.
    states = {info["JobState"] for job in ids for info in job_info(slurm_env, job)}
    assert states <= {"PENDING", "RUNNING", "CONFIGURING"}, states
    assert not list(sweep_dir.glob("*/runs/*/version_0/run.json")) or all(
        json.loads(p.read_text())["status"] == "running" for p in sweep_dir.glob("*/runs/*/version_0/run.json")
    )

    status = run_cli("sweep", "--status", str(sweep_dir), env=slurm_env)
    assert status.returncode == 0, status.stderr
    assert set(status_rows(status.stdout).values()) <= {"queued", "running"}, status.stdout
    assert set(status_rows(status.stdout)) == {"0", "1"}, status.stdout
    for job in ids:
        assert job in status.stdout

    # --summary of the sweep while it runs: the jobs so far, nothing fails.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(sweep_dir.glob("*/job.json"))) < 2:
        time.sleep(0.2)
    summary = run_cli("sweep", "--summary", str(sweep_dir), env=slurm_env)
    assert summary.returncode == 0, summary.stderr
    assert "running" in summary.stdout or "completed" in summary.stdout

    resumed = run_cli("sweep", "--resume", str(sweep_dir), env=slurm_env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = read_csv(sweep_dir / "summary.csv")
    assert sorted((r["job"], r["status"], r["attempts"]) for r in rows) == [("0", "completed", "1")] + [
        ("1", "completed", "1")
    ]
    assert all(0.0 < float(r["test_acc"]) <= 1.0 for r in rows)
    for job in ids:  # the jobs ran once, on SLURM, and completed there
        [info] = job_info(slurm_env, job)
        assert (info["JobState"], info["ExitCode"], info["Restarts"]) == ("COMPLETED", "0:0", "0"), info
    again = json.loads((sweep_dir / "slurm.json").read_text())["submissions"][1]
    assert (again["jobs"], len(again["skipped"])) == ([], 2)  # --resume submitted nothing again
    after = run_cli("sweep", "--status", str(sweep_dir), env=slurm_env)
    assert status_rows(after.stdout) == {"0": "completed", "1": "completed"}, after.stdout
    assert after.stdout.endswith("2 completed\n")
    assert not set(ids) & set(slurm(slurm_env, "squeue", "--noheader", "--array", "--format=%i").split())


def test_a_suspended_job_is_still_on_the_cluster_and_resume_does_not_run_it_twice(slurm_env, tmp_path):
    # Bug caught: SUSPENDED was not a live state, so --status called the job interrupted and --resume submitted
    # it again while it still held its run folder: two attempts wrote one run once it was resumed.
    sweep_dir = tmp_path / "d"
    args = ["--detach", "criterion=ce", *SLURM_LAUNCHER, *BUDGET, f"hydra.sweep.dir={sweep_dir}"]
    done = run_cli("sweep", *args, env=slurm_env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    [job] = [j["slurm_job_id"] for j in json.loads((sweep_dir / "slurm.json").read_text())["submissions"][0]["jobs"]]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and job_info(slurm_env, job)[0]["JobState"] != "RUNNING":
        time.sleep(0.2)
    slurm(slurm_env, "scontrol", "suspend", job)
    try:
        status = run_cli("sweep", "--status", str(sweep_dir), env=slurm_env)
        # One job: its overrides column holds every override.
        assert re.search(r"│\s+0 │ criterion=ce [^│]*│ running\s+│", status.stdout), status.stdout
        assert "SLURM SUSPENDED" in status.stdout and "--resume continues it" not in status.stdout
        refused = run_cli("sweep", "--resume", str(sweep_dir), "--detach", env=slurm_env)
        assert refused.returncode == 2, refused.stderr[-3000:]
        assert f"1 job(s) of {sweep_dir} are still queued or running on SLURM ({job})" in refused.stderr
        assert len(json.loads((sweep_dir / "slurm.json").read_text())["submissions"]) == 1  # nothing submitted
    finally:
        slurm(slurm_env, "scontrol", "resume", job)
    resumed = run_cli("sweep", "--resume", str(sweep_dir), env=slurm_env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    [row] = read_csv(sweep_dir / "summary.csv")
    assert (row["status"], row["attempts"]) == ("completed", "1")  # it ran once, suspended and resumed by SLURM
