"""The benchmark's GPU mode (issue 18.6): the plain loop with the data on the GPU and mnistctl side by side,
with the GPU's name; without CUDA it measures nothing and says so."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from benchmarks.gpu import lines, recipe
from conftest import REPO


def bench_gpu(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU-only answer")
def test_without_cuda_it_says_so_and_measures_nothing():
    done = bench_gpu()
    assert done.returncode == 0 and done.stdout == "GPU: no CUDA device: GPU rows skipped\n", done.stderr


def test_the_plain_loop_copies_gpu_yaml():
    # fused: gpu.yaml keeps base.yaml's fused Adam (same class), so G-B must step the same kernel as G-C.
    expected = {"batch_size": 512, "epochs": 4, "lr": 0.006, "fused": True, "dropout": 0.0, "pct_start": 0.25}
    assert recipe() == expected


def test_the_rows_name_the_gpu_and_the_ratio():
    row = {"rc": 0, "train_s": 1.0, "wall_s": 9.0, "test_acc": 0.9912, "timeline_s": {"train_start": 7.5}}
    report = {
        "device": "NVIDIA H200",
        "recipe": {"batch_size": 512},
        "runs": {"G-B": {"what": "plain loop", **row}, "G-C": {"what": "mnistctl fit", **row, "train_s": 1.2}},
        "C/B_train": 1.2,
    }
    assert lines(report) == [
        "GPU: NVIDIA H200, recipe {'batch_size': 512}",
        "  G-B plain loop: exit 0, train 1.00 s, start-up 7.5 s, wall 9.0 s, test acc 99.12%",
        "  G-C mnistctl fit: exit 0, train 1.20 s, start-up 7.5 s, wall 9.0 s, test acc 99.12%",
        "  C/B training time: 1.20x",
    ]


@pytest.mark.slow
def test_the_plain_loop_learns_on_the_cpu(tmp_path):
    # The loop itself, three steps of 512 per epoch on the CPU (0.37 test accuracy here after one such epoch);
    # a loop that does not learn (labels not matching images, no optimizer step) stays near 0.10.
    done = bench_gpu("plain", "--device", "cpu", "--steps", "3", "--json", str(tmp_path / "p.json"))
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "p.json").read_text())
    assert result["device"] == "cpu" and result["train_samples"] == recipe()["epochs"] * 3 * 512
    assert result["test_acc"] > 0.25


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_a_gpu_both_rows_run_and_reach_99_percent(tmp_path):
    done = bench_gpu("--json", str(tmp_path / "gpu.json"), "--workdir", str(tmp_path / "work"))
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu.json").read_text())
    assert report["device"] == torch.cuda.get_device_name(0) and done.stdout.startswith(f"GPU: {report['device']}")
    for key in ("G-B", "G-C"):
        assert report["runs"][key]["rc"] == 0 and report["runs"][key]["test_acc"] >= 0.985, key
    assert report["C/B_train"] > 0
