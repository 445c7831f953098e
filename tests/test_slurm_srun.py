"""DDP the cluster way: `srun --ntasks 2 mnistctl fit --trainer.strategy ddp` trains as one run.

    .venv/bin/python -m pytest -m slurm tests/test_slurm_srun.py

Under srun each task is a whole `mnistctl fit` process that Lightning's SLURM environment gives a rank;
no launcher passes rank 0's run folder down. Run inside an allocation (`salloc ... srun`) and through an
sbatch script, the fit must write one run folder, one set of checkpoints, one run.json with world size 2,
each epoch's metrics once, and the test after fit; the file rank 0 published its folder in is gone.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import read_csv

pytestmark = pytest.mark.slurm
FIT = [sys.executable, "-m", "mnistctl", "fit", "--trainer.accelerator", "cpu", "--trainer.devices", "2"]
FIT += ["--trainer.strategy", "ddp", "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "8"]
FIT += ["--trainer.limit_val_batches", "2", "--trainer.limit_test_batches", "2", "--num_threads", "1"]
FIT += ["--trainer.enable_progress_bar", "false"]


@pytest.mark.parametrize("how", ["salloc", "sbatch"])
def test_srun_with_two_tasks_trains_one_ddp_run(slurm_env, tmp_path, how):
    srun = ["srun", *FIT]
    if how == "salloc":  # an interactive allocation, then srun inside it
        command = ["salloc", "--ntasks=2", "--cpus-per-task=1", *srun]
    else:
        script = tmp_path / "fit.sbatch"
        script.write_text("#!/bin/bash\n#SBATCH --ntasks=2\n#SBATCH --cpus-per-task=1\n" + " ".join(srun) + "\n")
        command = ["sbatch", "--wait", f"--output={tmp_path / 'slurm.out'}", str(script)]
    done = subprocess.run(command, cwd=tmp_path, env=slurm_env, capture_output=True, text=True, timeout=300)
    log = done.stdout + done.stderr + ((tmp_path / "slurm.out").read_text() if how == "sbatch" else "")
    assert done.returncode == 0, log[-4000:]

    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["mnist"]  # no rendezvous file left behind
    [run] = (tmp_path / "runs" / "mnist").iterdir()  # one run folder for both ranks
    assert run.name == "version_0"
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "completed", record
    assert (record["device"]["world_size"], record["device"]["devices"]) == (2, 2)
    assert [h["epoch"] for h in record["history"]] == [0, 1]
    assert 0.0 < record["metrics"]["test/acc"] <= 1.0
    assert sorted(p.name for p in (run / "checkpoints").iterdir() if p.name.startswith("epoch")) == sorted(
        p.name for p in (run / "checkpoints").glob("epoch0[01]-*.ckpt")
    )
    assert (run / "checkpoints" / "last.ckpt").is_file()
    val_epochs = [r["epoch"] for r in read_csv(run / "metrics.csv") if r.get("val/acc")]
    assert val_epochs == ["0", "1"], val_epochs  # metrics written once, by rank 0
    assert log.count("fit completed in") == 1, log[-4000:]  # rank 0 alone reports
