"""What SLURM says about a sweep's jobs: queued, running, or how they ended (squeue, scontrol, sacct).

    python -c "from mnistctl.sweep.scheduler import slurm_states; print(slurm_states(['12_0', '12_1']))"

squeue lists the jobs that are pending or running; scontrol still knows the ones that ended in the
last few minutes (MinJobAge, 300 s by default); sacct knows the rest where the cluster keeps accounting
(the local cluster of scripts/local-slurm.sh does not). Job ids are as submitit writes them: `<array>_<task>`
for a task of a job array, `<id>` otherwise. Every query is bounded in time; nothing here raises.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess

log = logging.getLogger(__name__)
# Waiting to start, held ones included (SPECIAL_EXIT: requeued and held; RESV_DEL_HOLD: its reservation deleted).
QUEUED = ("PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "SPECIAL_EXIT", "RESV_DEL_HOLD")
# A job that has not ended: queued, running, suspended or stopped, or in one of the states squeue names for the
# flags SLURM sets while it signals a job or finishes one (COMPLETING; STAGE_OUT: burst-buffer stage-out).
LIVE = (*QUEUED, "RUNNING", "COMPLETING", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "SUSPENDED")
TIMEOUT_S = 30


class Unreachable(Exception):
    """SLURM's commands are missing or do not answer (no SLURM_CONF, controller down)."""


def _run(*command: str) -> subprocess.CompletedProcess:
    if shutil.which(command[0]) is None:
        raise Unreachable(f"{command[0]} is not installed here")
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise Unreachable(f"{command[0]} did not answer: {err}") from None


def slurm_states(ids: list[str]) -> dict[str, str]:
    """The state of each job SLURM still knows (`RUNNING`, `PENDING (BeginTime)`, `CANCELLED`, ...).

    Raises Unreachable when squeue cannot be asked at all; ids SLURM has forgotten are left out.
    """
    wanted = set(ids)
    if not wanted:
        return {}
    listed = _run("squeue", "--noheader", "--array", "--me", "--format=%i|%T|%r")
    if listed.returncode != 0:
        raise Unreachable(f"squeue: {listed.stderr.strip().splitlines()[-1] if listed.stderr.strip() else 'failed'}")
    states: dict[str, str] = {}
    for line in listed.stdout.splitlines():
        job, state, reason = (line.split("|") + ["", ""])[:3]
        if job in wanted:
            states[job] = f"{state} ({reason})" if state == "PENDING" and reason not in ("", "None") else state
    missing = wanted - states.keys()
    for base in sorted({job.split("_")[0] for job in missing}):
        shown = _run("scontrol", "--oneliner", "show", "job", base)
        for line in shown.stdout.splitlines() if shown.returncode == 0 else []:
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            task = fields.get("ArrayTaskId", "")
            job = f"{fields.get('ArrayJobId')}_{task}" if task.isdigit() else fields.get("JobId", "")
            if job in missing and fields.get("JobState"):
                states[job] = fields["JobState"]
    missing = wanted - states.keys()
    if missing:
        states.update(_accounting(missing))
    return states


def _accounting(ids: set[str]) -> dict[str, str]:
    """sacct's states, where the cluster keeps accounting; {} where it does not."""
    try:
        done = _run("sacct", "--noheader", "--parsable2", "--format=JobID,State", *[f"--jobs={j}" for j in sorted(ids)])
    except Unreachable:
        return {}
    if done.returncode != 0:
        log.debug("sacct: %s", done.stderr.strip())
        return {}
    states = {}
    for line in done.stdout.splitlines():
        job, _, state = line.partition("|")
        if job in ids:  # not the job's steps (<id>.batch, <id>.0)
            states[job] = re.sub(r" by \d+$", "", state)  # "CANCELLED by 0"
    return states


def is_live(state: str | None) -> bool:
    return state is not None and state.split()[0] in LIVE


def is_queued(state: str | None) -> bool:
    return state is not None and state.split()[0] in QUEUED
