"""A sweep job whose fit is stopped by a signal is `interrupted` (never `failed`), and `--resume` continues it.

    .venv/bin/python -m pytest tests/test_sweep_signals.py

The fit of a real sweep job is sent SIGTERM, as SLURM's time limit, a preemption or `scancel` does, after
its first epoch: job.json says interrupted, and `mnistctl sweep --resume` continues the job from last.ckpt in
the same run folder without training that epoch again. The same through the basic and joblib launchers
(the SLURM launcher is in test_slurm_requeue.py). Fast tier: which exit codes are a signal's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import SWEEP_ON_CPU, read_csv, run_cli
from mnistctl.sweep.requeue import outcome

pytestmark = pytest.mark.usefixtures("sweep_tree")
THREE_EPOCHS = [
    "trainer.max_epochs=3",
    "trainer.limit_train_batches=30",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    SWEEP_ON_CPU,
]


@pytest.mark.parametrize(
    ("code", "expected"),
    [(0, "completed"), (143, "interrupted"), (130, "interrupted"), (-15, "interrupted"), (-9, "interrupted")]
    + [(129, "interrupted"), (1, "failed"), (2, "failed"), (-11, "failed"), (134, "failed"), (139, "failed")],
)
def test_a_signal_that_stops_a_fit_makes_it_interrupted_and_a_crash_failed(code, expected):
    assert outcome(code) == expected


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_a_fit_stopped_by_sigterm_is_interrupted_and_resume_continues_it(tmp_path, launcher):
    sweep_dir = tmp_path / "s"
    command = [sys.executable, "-m", "mnistctl", "sweep", *THREE_EPOCHS, f"hydra/launcher={launcher}"]
    proc = subprocess.Popen(
        [*command, f"hydra.sweep.dir={sweep_dir}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    job_json, last = sweep_dir / "0" / "job.json", sweep_dir / "0" / "runs" / "mnist" / "version_0" / "checkpoints"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None and not (last / "last.ckpt").is_file():
            time.sleep(0.05)
        assert (last / "last.ckpt").is_file(), "the first epoch never ended"
        pid = json.loads(job_json.read_text()).get("fit_pid")  # a warm start forks it from the server, not the job
        assert pid is not None, "no fit process recorded for the job"
        os.kill(pid, signal.SIGTERM)  # what SLURM sends at a time limit or a preemption
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 1, err[-3000:]
    record = json.loads(job_json.read_text())
    assert (record["status"], record["returncode"], record["attempts"]) == ("interrupted", 143, 1), record
    assert record["error"] == "stopped by SIGTERM (exit code 143); resumable from last.ckpt"
    assert 1 <= record["epochs"] < 3
    assert f"'mnistctl sweep --resume {sweep_dir}' continues the 1 interrupted" in err
    assert read_csv(sweep_dir / "summary.csv")[0]["status"] == "interrupted"
    trained = record["epochs"]

    done = run_cli("sweep", "--resume", str(sweep_dir), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(job_json.read_text())
    assert (record["status"], record["attempts"], record["epochs"]) == ("completed", 2, 3), record
    csv_epochs = [r["epoch"] for r in read_csv(sweep_dir / "0" / "runs" / "mnist" / "version_0" / "metrics.csv")]
    assert [csv_epochs.count(str(e)) for e in range(3)] == [2, 2, 2], csv_epochs  # train and val rows, once each
    assert record["resumed_from"] == "runs/mnist/version_0/checkpoints/last.ckpt"
    assert [p.name for p in (sweep_dir / "0" / "runs" / "mnist").iterdir()] == ["version_0"]  # the same run folder
    run = json.loads((sweep_dir / "0" / "runs" / "mnist" / "version_0" / "run.json").read_text())
    # The resumed fit started after the epochs already trained: none of them was trained again.
    assert run["status"] == "completed" and len(run["resumes"]) == 1
    assert [h["epoch"] for h in run["history"]] == [0, 1, 2], run["history"]
    assert run["resumes"][0]["from_epoch"] == trained
    rows = read_csv(sweep_dir / "summary.csv")
    assert [(r["status"], r["attempts"]) for r in rows] == [("completed", "2")]
