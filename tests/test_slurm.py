"""A real single-node SLURM cluster on this machine (scripts/local-slurm.sh), driven as a user would.

    .venv/bin/python -m pytest -m slurm tests/test_slurm.py

The module fixture starts the cluster (installing Debian's slurm-wlm and munge the first time) and
stops it at the end, also when a test fails. The tests are skipped only where the script says SLURM
cannot run here (exit status 3: not root, no apt-get, the install failed); any other failure fails.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess

import pytest

from conftest import SLURM_LAUNCHER, SWEEP_TINY, job_info, read_csv, run_cli, slurm, slurm_script

pytestmark = pytest.mark.slurm

HOST = socket.gethostname()


def test_start_is_idempotent_and_status_reports_an_idle_node(slurm_env):
    again = slurm_script("start", timeout=60)
    assert again.returncode == 0, again.stderr
    assert again.stdout == f"export SLURM_CONF={slurm_env['SLURM_CONF']}\n"
    assert "already running" in again.stderr
    status = slurm_script("status", timeout=60)
    assert status.returncode == 0, status.stderr
    nodes = slurm(slurm_env, "sinfo", "--noheader", "--format=%P %t %N %c")
    partition, state, node, cpus = nodes.split()
    assert (partition, node, int(cpus)) == ("local*", HOST, os.cpu_count())
    assert state in ("idle", "mix", "alloc")


def test_sbatch_job_runs_on_the_local_node(slurm_env, tmp_path):
    out = tmp_path / "job.out"
    submitted = slurm(
        slurm_env,
        "sbatch",
        "--wait",
        "--parsable",
        f"--output={out}",
        "--wrap",
        'echo "host=$(hostname) job=$SLURM_JOB_ID partition=$SLURM_JOB_PARTITION"',
        timeout=120,
    )
    job_id = submitted.strip().split(";")[0]
    assert job_id.isdigit(), submitted
    assert out.read_text().split() == [f"host={HOST}", f"job={job_id}", "partition=local"]
    [info] = job_info(slurm_env, job_id)
    assert (info["JobState"], info["ExitCode"], info["NodeList"]) == ("COMPLETED", "0:0", HOST)
    assert job_id not in slurm(slurm_env, "squeue", "--noheader", "--format=%i").split()


def test_failing_job_is_reported_failed(slurm_env, tmp_path):
    done = subprocess.run(
        ["sbatch", "--wait", "--parsable", f"--output={tmp_path / 'job.out'}", "--wrap", "exit 7"],
        env=slurm_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 7, done.stderr
    [info] = job_info(slurm_env, done.stdout.strip().split(";")[0])
    assert (info["JobState"], info["ExitCode"]) == ("FAILED", "7:0")


def test_two_job_sweep_through_submitit_slurm(slurm_env, tmp_path):
    sweep_dir = tmp_path / "sweep"
    done = run_cli(
        "sweep", "criterion=ce,mse", *SLURM_LAUNCHER, *SWEEP_TINY, f"hydra.sweep.dir={sweep_dir}", env=slurm_env
    )
    assert done.returncode == 0, done.stderr[-4000:]

    # Both jobs' results, in summary.json and summary.csv.
    rows = json.loads((sweep_dir / "summary.json").read_text())["jobs"]
    by_criterion = {next(o for o in r["overrides"] if o.startswith("criterion=")): r for r in rows}
    assert sorted(by_criterion) == ["criterion=ce", "criterion=mse"]
    for row in rows:
        assert row["status"] == "completed", row
        assert 0.0 < row["test_acc"] <= 1.0 and 0.0 < row["val_acc"] <= 1.0, row
        assert row["epochs"] == 1
        assert row["threads"] == 1  # the job took its thread count from its SLURM allocation (cpus_per_task)
    csv_rows = read_csv(sweep_dir / "summary.csv")
    assert sorted((r["job"], r["status"]) for r in csv_rows) == [("0", "completed"), ("1", "completed")]
    assert all(0.0 < float(r["test_acc"]) <= 1.0 for r in csv_rows)

    # They ran as the two tasks of one SLURM job array: submitit's folders <array>_<task>, its logs
    # written inside the allocation on this node, and the controller's record of both tasks.
    tasks = sorted(p.name for p in (sweep_dir / ".submitit").iterdir() if re.fullmatch(r"\d+_\d+", p.name))
    assert len(tasks) == 2, tasks
    array_ids = {task.split("_")[0] for task in tasks}
    assert len(array_ids) == 1, tasks
    ran = set()
    for task in tasks:
        log = (sweep_dir / ".submitit" / task / f"{task}_0_log.out").read_text()
        assert f"JobEnvironment(job_id={task}, hostname={HOST}," in log
        assert "Job completed successfully" in log
        ran |= {(r["job"], c) for c, r in by_criterion.items() if f"job {r['job']}: {c} " in log}
    assert ran == {(r["job"], c) for c, r in by_criterion.items()}  # each task ran exactly its own job
    records = job_info(slurm_env, array_ids.pop())
    assert sorted(r["ArrayTaskId"] for r in records) == ["0", "1"]
    for record in records:
        assert (record["JobState"], record["ExitCode"]) == ("COMPLETED", "0:0"), record
        assert (record["Partition"], record["NodeList"], record["NumCPUs"]) == ("local", HOST, "1"), record
