"""Sweeps on one GPU (issue 18.5): the sweep process never imports torch, so nothing initialises CUDA before
jobs are forked; joblib's jobs are each their own `mnistctl fit` process and share the GPU."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime

import pytest
import torch

from conftest import SWEEP_TINY, read_csv, run_cli

# The sweep's entry, in a fresh process that then says whether torch was ever imported into it.
PARENT = """
import json, sys
from mnistctl.__main__ import main
rc = main(sys.argv[1:])
sys.stdout.write(json.dumps({"rc": rc, "torch": "torch" in sys.modules}) + "\\n")
"""
JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]


def sweep_parent(tmp_path, *overrides: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PARENT, "sweep", *overrides],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_planning_a_joblib_sweep_never_imports_torch(tmp_path, sweep_tree):
    assert sweep_parent(tmp_path, "--dry-run", "criterion=ce,mse", *SWEEP_TINY, *JOBLIB) == {"rc": 0, "torch": False}


@pytest.mark.slow
def test_a_joblib_sweep_runs_its_jobs_without_torch_in_the_sweep_process(tmp_path, sweep_tree):
    result = sweep_parent(tmp_path, "criterion=ce,mse", *SWEEP_TINY, *JOBLIB, "hydra.sweep.dir=s")
    assert result == {"rc": 0, "torch": False}
    assert [r["status"] for r in read_csv(tmp_path / "s" / "summary.csv")] == ["completed", "completed"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_two_joblib_jobs_share_one_gpu_at_the_same_time(tmp_path):
    on_gpu = [o for o in SWEEP_TINY if not o.startswith("trainer.accelerator=")] + ["trainer.accelerator=gpu"]
    done = run_cli("sweep", "criterion=ce,mse", *on_gpu, *JOBLIB, "hydra.sweep.dir=s", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = [json.loads((tmp_path / "s" / job / "job.json").read_text()) for job in ("0", "1")]
    for job in ("0", "1"):
        (record,) = [json.loads(p.read_text()) for p in (tmp_path / "s" / job).glob("runs/*/version_*/run.json")]
        assert record["status"] == "completed" and record["device"]["accelerator"] == "cuda", job
    # Not one after the other: each started before the other ended (job.json: start to the second, wall time).
    starts = [datetime.fromisoformat(job["started"]).timestamp() for job in jobs]
    assert abs(starts[0] - starts[1]) < min(job["wall_s"] for job in jobs), jobs
