"""Whether a sweep folder is being run right now by a process on this machine: `--resume` is refused then.

    mnistctl sweep --resume sweeps/<time>    # refused while that sweep, or a job of it, still runs here

A second process running the same sweep would train every unfinished job twice, at the same time, into
the same run folders. So the process that runs a sweep (`mnistctl sweep`, then each `--resume`) records
its host, pid and start in sweep.json (`process`), as every job's process does in its job.json, and a
resume goes ahead only when none of them is alive. Jobs on SLURM are SLURM's to tell
(detach.wait_for_live_jobs); a process on another machine cannot be seen from here.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import NamedTuple

from mnistctl.atomic import atomic_write
from mnistctl.errors import UsageError
from mnistctl.layout import SWEEP_RECORD, job_dirs, read_record
from mnistctl.process_alive import process_record, record_alive
from mnistctl.sweep.job_folder import read_record as read_job_record

PROCESS_KEY = "process"  # in sweep.json: the process running the sweep now, or that ran it last
ORPHAN_GRACE_S = 60  # job._stop gives a fit 30 s after SIGTERM before SIGKILL; a loaded machine, more
log = logging.getLogger(__name__)


class Live(NamedTuple):
    pid: int
    what: str
    orphan: bool = False  # a fit whose job process is gone: it got SIGTERM with it and is on its way out


def live_process(sweep_dir: Path) -> Live | None:
    """What still runs the sweep on this machine (its own process, a job's, a job's fit), if anything."""
    sweep = (read_record(sweep_dir, SWEEP_RECORD) or {}).get(PROCESS_KEY)
    if isinstance(sweep, dict) and sweep.get("pid") != os.getpid() and record_alive(sweep):
        return Live(sweep["pid"], "its sweep process")
    for job_dir in job_dirs(sweep_dir):
        record = read_job_record(job_dir) or {}
        if record.get("status") != "running" or record.get("slurm_job_id"):  # SLURM's jobs: SLURM's to tell
            continue
        if record.get("pid") != os.getpid() and record_alive(record):
            return Live(record["pid"], f"the process of its job {job_dir.name}")
        # A fit whose job process is gone (a killed sweep) may still be saving interrupted.ckpt for seconds.
        fit = record.get("fit_process")
        if isinstance(fit, dict) and record_alive(fit):
            return Live(fit["pid"], f"the fit of its job {job_dir.name}", orphan=True)
    return None


def refuse_if_running(sweep_dir: Path) -> None:
    """One line, exit 2, nothing changed, while the sweep still runs on this machine. A fit whose job process
    is gone (the sweep was killed) got SIGTERM with it and is saving interrupted.ckpt: waited for a while."""
    found = live_process(sweep_dir)
    deadline = time.monotonic() + ORPHAN_GRACE_S
    if found and found.orphan:
        log.info("waiting for %s (pid %d) to save its checkpoint and end", found.what, found.pid)
    while found and found.orphan and time.monotonic() < deadline:
        time.sleep(0.2)
        found = live_process(sweep_dir)
    if found:
        pid, what, _ = found
        raise UsageError(
            f"sweep {sweep_dir} is still running ({what}, pid {pid}, is alive); resuming it now would train its "
            f"jobs twice at once: wait for it to end ('mnistctl sweep --status {sweep_dir}' follows it), or stop "
            f"it ('kill {pid}') and then --resume"
        )


def take_over(sweep_dir: Path) -> None:
    """Record this process as the one running the sweep (--resume), after `refuse_if_running`."""
    refuse_if_running(sweep_dir)
    record = read_record(sweep_dir, SWEEP_RECORD) or {}
    record[PROCESS_KEY] = process_record()
    with atomic_write(Path(sweep_dir) / SWEEP_RECORD) as f:
        json.dump(record, f, indent=2)
