"""The GPU path on a machine with CUDA: fit, test, predict, export, resume and a sweep (`gpu` marker).

    .venv/bin/python -m pytest -m gpu tests/test_gpu.py

Everything else runs on the CPU on every machine (tests/conftest.py); these ask for the GPU with a flag and
compare like with like: a GPU run with itself, or a GPU-trained checkpoint on the GPU and on the CPU within
float tolerance (issue 18: the rounding of the two differs, 2.1e-5 in probability on an H200). They are
skipped without CUDA, also under CI (MNISTCTL_CI=1). Bit-identical resume on a GPU, which needs
deterministic algorithms, is issue 18 item 2's test.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import PROBES_ON_PATH, SWEEP_TINY, TINY, TINY_RUN, TINY_RUN_MIN_ACC, last_metric, read_csv, run_cli

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

GPU = ["--trainer.accelerator", "gpu", "--trainer.devices", "1"]


def run_ok(cwd: Path, *args: str, env: dict | None = None) -> str:
    done = run_cli(*args, cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def probabilities(csv: Path) -> tuple[list[str], np.ndarray]:
    rows = read_csv(csv)
    return [r["id"] for r in rows], np.array([[float(r[f"p{k}"]) for k in range(10)] for r in rows])


@pytest.fixture(scope="module")
def gpu_run(tmp_path_factory) -> Path:
    """Two epochs of tiny_run's budget trained on the GPU; returns the run folder."""
    root = tmp_path_factory.mktemp("gpu")
    run_ok(root, "fit", *TINY_RUN, *GPU, "--trainer.max_epochs", "2")
    (run,) = (root / "runs" / "mnist").iterdir()
    return run


def test_fit_on_the_gpu_says_so_and_learns(gpu_run):
    record = json.loads((gpu_run / "run.json").read_text())
    assert record["status"] == "completed" and record["device"]["accelerator"] == "cuda"
    assert last_metric(gpu_run / "metrics.csv", "test/acc") >= TINY_RUN_MIN_ACC


def test_predict_on_the_gpu_matches_the_cpu_and_limits_the_same(gpu_run):
    root = gpu_run.parents[2]
    best = ["--ckpt_path", "best", "--trainer.enable_progress_bar", "false"]
    run_ok(root, "predict", *best, *GPU, "--predictions.path", "gpu.csv")
    run_ok(root, "predict", *best, "--trainer.accelerator", "cpu", "--predictions.path", "cpu.csv")
    gpu_ids, on_gpu = probabilities(root / "gpu.csv")
    cpu_ids, on_cpu = probabilities(root / "cpu.csv")
    assert gpu_ids == cpu_ids == [str(i) for i in range(10_000)]
    assert np.abs(on_gpu - on_cpu).max() < 1e-2  # float rounding, not another model
    # --trainer.limit_predict_batches 1 is one batch on the GPU too (issue 18: it was all 10,000 rows).
    run_ok(root, "predict", *best, *GPU, "--trainer.limit_predict_batches", "1", "--predictions.path", "one.csv")
    assert len(read_csv(root / "one.csv")) == 256


def test_export_of_a_gpu_checkpoint_serves_on_the_cpu(gpu_run, tmp_path):
    root = gpu_run.parents[2]
    run_ok(root, "export", "--ckpt_path", "best", "--format", "pt2", "--output", str(tmp_path / "model.pt2"))
    run_ok(root, "predict", "--ckpt_path", "best", "--trainer.accelerator", "cpu", "--predictions.path", "cpu.csv")
    from torchvision.datasets import MNIST

    from mnistctl.data.mnist_files import prepare_root

    images = MNIST(str(prepare_root(None, False)), train=False).data.unsqueeze(1).float() / 255.0
    with torch.no_grad():
        served = torch.export.load(str(tmp_path / "model.pt2")).module()(images).numpy()
    _, on_cpu = probabilities(root / "cpu.csv")
    assert np.abs(served - on_cpu).max() < 1e-5  # both on the CPU: like with like


def test_resume_on_the_gpu_continues_the_same_run(tmp_path):
    two_epochs = [*TINY, *GPU, "--trainer.max_epochs", "2", "--test_after_fit", "false"]
    stop = ["--trainer.callbacks+=probes.InterruptAt", "--trainer.callbacks.epoch=1"]
    interrupted = run_cli("fit", *two_epochs, *stop, cwd=tmp_path, env=PROBES_ON_PATH)
    assert interrupted.returncode == 130, interrupted.stderr[-3000:]
    run_ok(tmp_path, "fit", *two_epochs, "--ckpt_path", "last")
    (run,) = (tmp_path / "runs" / "mnist").iterdir()  # the same run folder
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "completed" and record["epochs_completed"] == 2
    assert record["device"]["accelerator"] == "cuda"
    assert torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["epoch"] == 1


def test_a_sweep_trains_its_jobs_on_the_gpu(tmp_path):
    on_gpu = [o for o in SWEEP_TINY if not o.startswith("trainer.accelerator=")] + ["trainer.accelerator=gpu"]
    run_ok(tmp_path, "sweep", "criterion=ce,mse", *on_gpu, "hydra.sweep.dir=s")
    for job in ("0", "1"):
        (record,) = [json.loads(p.read_text()) for p in (tmp_path / "s" / job).glob("runs/*/version_*/run.json")]
        assert record["status"] == "completed" and record["device"]["accelerator"] == "cuda", job
    assert [r["status"] for r in read_csv(tmp_path / "s" / "summary.csv")] == ["completed", "completed"]
