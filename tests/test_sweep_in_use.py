"""Whether a sweep folder still has a live process on this machine (`--resume` is refused then), from records
written by hand: no sweep runs here.

    .venv/bin/python -m pytest tests/test_sweep_in_use.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mnistctl.errors import UsageError
from mnistctl.process_alive import process_record
from mnistctl.sweep import in_use


def gone_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def sweep_whose_processes_are_gone(folder: Path, **job: object) -> Path:
    dead = {**process_record(), "pid": gone_pid()}
    (folder / "sweep.json").write_text(json.dumps({"overrides": [], "process": dead}))
    (folder / "0").mkdir()
    record = {"job": 0, "key": "k", "overrides": [], "status": "running", **dead, **job}
    (folder / "0" / "job.json").write_text(json.dumps(record))
    return folder


def test_a_fit_still_saving_after_its_job_process_died_keeps_the_sweep_in_use(tmp_path):
    """The bug: only the sweep's and the job's pids were checked, so right after a kill -9 of the sweep (the
    basic launcher: the job runs in the sweep's process) --resume started while the orphaned fit was still
    saving interrupted.ckpt and writing run.json into the same run folder."""
    still_saving = sweep_whose_processes_are_gone(tmp_path, fit_process=process_record(os.getpid()))
    assert in_use.live_process(still_saving) == (os.getpid(), "the fit of its job 0", True)


def test_nothing_alive_leaves_the_sweep_free(tmp_path):
    finished_fit = {**process_record(), "pid": gone_pid()}
    assert in_use.live_process(sweep_whose_processes_are_gone(tmp_path, fit_process=finished_fit)) is None


def test_a_slurm_jobs_live_process_is_left_to_slurm(tmp_path):
    """The bug: on a cluster whose node is this machine (the local SLURM tier), a SLURM job's live process made
    --resume refuse, where it must wait for the job as SLURM reports it (detach.wait_for_live_jobs)."""
    on_slurm = sweep_whose_processes_are_gone(tmp_path, pid=os.getpid(), fit_process=process_record(os.getpid()))
    assert in_use.live_process(on_slurm) is not None  # as a local job: in use
    record = json.loads((tmp_path / "0" / "job.json").read_text())
    (tmp_path / "0" / "job.json").write_text(json.dumps({**record, "slurm_job_id": "12"}))
    assert in_use.live_process(on_slurm) is None


def test_resume_waits_for_a_fit_that_outlived_its_job_and_refuses_one_that_stays(tmp_path, monkeypatch):
    """After a kill -9 of the sweep, its fits get SIGTERM and take seconds to save interrupted.ckpt: an immediate
    --resume waits for them (refusing it sent every user who resumed at once away); one that stays is refused."""
    ending = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"])
    sweep = sweep_whose_processes_are_gone(tmp_path, fit_process=process_record(ending.pid))
    in_use.refuse_if_running(sweep)  # returns once the fit has ended
    assert ending.poll() is not None
    staying = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        record = json.loads((sweep / "0" / "job.json").read_text())
        (sweep / "0" / "job.json").write_text(json.dumps({**record, "fit_process": process_record(staying.pid)}))
        monkeypatch.setattr(in_use, "ORPHAN_GRACE_S", 0.5)
        with pytest.raises(UsageError, match=f"the fit of its job 0, pid {staying.pid}, is alive"):
            in_use.refuse_if_running(sweep)
    finally:
        staying.kill()
        staying.wait()
