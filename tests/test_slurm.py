"""A real single-node SLURM cluster on this machine (scripts/local-slurm.sh), driven as a user would.

    .venv/bin/python -m pytest -m slurm tests/test_slurm.py

The module fixture starts the cluster (installing Debian's slurm-wlm and munge the first time) and
stops it at the end, also when a test fails. The tests are skipped only where the script says SLURM
cannot run here (exit status 3: not root, no apt-get, the install failed); any other failure fails.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from collections.abc import Iterator

import pytest

from conftest import REPO

pytestmark = pytest.mark.slurm

SCRIPT = REPO / "scripts" / "local-slurm.sh"
CANNOT_RUN_HERE = 3  # the script's exit status when this machine cannot run SLURM


def _script(command: str, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPT), command], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


@pytest.fixture(scope="module")
def slurm_env() -> Iterator[dict[str, str]]:
    """The environment of a process that submits to the local cluster (SLURM_CONF set)."""
    # A cluster someone started by hand is used and left running; one started here is always stopped.
    was_running = _script("status", timeout=60).returncode == 0
    started = None
    try:
        started = _script("start", timeout=600)  # a first start installs packages: up to a minute
        if started.returncode == CANNOT_RUN_HERE:
            reason = started.stderr.strip().splitlines()[-1] if started.stderr.strip() else "no reason given"
            pytest.skip(f"SLURM cannot be started on this machine: {reason}")
        assert started.returncode == 0, f"local-slurm.sh start failed:\n{started.stderr}"
        match = re.fullmatch(r"export SLURM_CONF=(\S+)\n", started.stdout)
        assert match, f"start printed {started.stdout!r}, not one export line"
        yield {**os.environ, "SLURM_CONF": match.group(1)}
    finally:
        # Exit status 3 comes before any daemon starts: nothing to stop (and maybe no right to).
        if not was_running and (started is None or started.returncode != CANNOT_RUN_HERE):
            stopped = _script("stop", timeout=120)
            assert stopped.returncode == 0, f"local-slurm.sh stop failed:\n{stopped.stderr}"


def slurm(env: dict[str, str], *args: str, timeout: int = 60) -> str:
    done = subprocess.run(list(args), env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}: {done.stderr}"
    return done.stdout


def job_info(env: dict[str, str], job_id: str) -> dict[str, str]:
    """`scontrol show job` as a dict; the controller keeps finished jobs for MinJobAge (300 s)."""
    out = slurm(env, "scontrol", "--oneliner", "show", "job", job_id)
    return dict(field.split("=", 1) for field in out.split() if "=" in field)


def test_start_is_idempotent_and_status_reports_an_idle_node(slurm_env):
    again = _script("start", timeout=60)
    assert again.returncode == 0, again.stderr
    assert again.stdout == f"export SLURM_CONF={slurm_env['SLURM_CONF']}\n"
    assert "already running" in again.stderr
    status = _script("status", timeout=60)
    assert status.returncode == 0, status.stderr
    nodes = slurm(slurm_env, "sinfo", "--noheader", "--format=%P %t %N %c")
    partition, state, node, cpus = nodes.split()
    assert (partition, node, int(cpus)) == ("local*", socket.gethostname(), os.cpu_count())
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
    assert out.read_text().split() == [f"host={socket.gethostname()}", f"job={job_id}", "partition=local"]
    info = job_info(slurm_env, job_id)
    assert (info["JobState"], info["ExitCode"], info["NodeList"]) == ("COMPLETED", "0:0", socket.gethostname())
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
    info = job_info(slurm_env, done.stdout.strip().split(";")[0])
    assert (info["JobState"], info["ExitCode"]) == ("FAILED", "7:0")
