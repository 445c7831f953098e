"""The benchmark's GPU mode (issue 18.6): the plain loop with the data on the GPU and mnistctl side by side,
with the GPU's name; without CUDA it measures nothing and says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from benchmarks import extras
from benchmarks.gpu import best_checkpoint, evaluation, evaluation_lines, lines, recipe, sweep_lines
from conftest import REPO
from mnistctl.layout import read_record


def bench_gpu(*args: str, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_without_cuda_it_says_so_and_measures_nothing():
    done = bench_gpu(env={"CUDA_VISIBLE_DEVICES": ""})  # no GPU visible, also on a machine with one
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


def test_the_evaluation_rows_give_each_walls_difference_or_say_why_there_are_none():
    plain, ours = {"rc": 0, "wall_s": 9.1, "test_acc": 0.9911}, {"rc": 0, "wall_s": 10.4, "test_acc": 0.991}
    evaluated = {"batch_size": 2048, "test": {"plain": plain, "mnistctl": ours, "wall_gap_s": 1.3}}
    evaluated["predict"] = {"plain": {"rc": 0, "wall_s": 9.0}, "mnistctl": {"rc": 1, "wall_s": 4.0}, "wall_gap_s": -5.0}
    assert evaluation_lines(evaluated) == [
        "  test, batch 2048: plain script 9.1 s (exit 0), mnistctl test 10.4 s (exit 0): +1.3 s wall, "
        "test acc 99.11% / 99.10%",
        "  predict, batch 2048: plain script 9.0 s (exit 0), mnistctl predict 4.0 s (exit 1): -5.0 s wall",
    ]
    assert evaluation_lines({"note": "no best checkpoint from G-C"}) == ["  test/predict: no best checkpoint from G-C"]


def test_the_gpu_sweep_runs_whole_epochs_on_the_gpu_one_job_after_the_other_then_two_at_a_time(tmp_path, monkeypatch):
    # Issue 18's row: `sweep criterion=ce,mse trainer.max_epochs=1`, on the GPU, warm (the server must not
    # start CUDA before it forks); no cold sweep there (device time is short).
    commands = []

    def recorded(cmd, log, **kwargs) -> dict:
        commands.append([str(part) for part in cmd])
        return {"rc": 0, "wall_s": 1.0, "started_at": 0.0}

    monkeypatch.setattr(extras, "measure", recorded)
    extras.sweep_overhead(tmp_path, train_batches=None, jobs=2, accelerator="gpu", cold=False)
    sweeps = [cmd[cmd.index("sweep") + 1 :] for cmd in commands]
    assert [args[0] == "--dry-run" for args in sweeps] == [True, False, False]  # tree, one at a time, joblib
    for args in sweeps:
        assert {"criterion=ce,mse", "trainer.accelerator=gpu", "trainer.max_epochs=1"} <= set(args), args
        assert not [a for a in args if "limit_train_batches" in a or "accelerator=cpu" in a], args
    assert "hydra.launcher.n_jobs=2" in sweeps[2] and "hydra.launcher.n_jobs=2" not in sweeps[1]


def test_the_sweep_line_gives_each_jobs_overhead_and_the_joblib_speed_up():
    sweep = {"rc": 0, "wall_s": 30.0, "job_fit_s": [6.0, 6.25], "per_job_overhead_s": 8.875}
    sweep.update(joblib_wall_s=20.0, joblib_speedup=1.5)
    assert sweep_lines(sweep) == [
        "  sweep criterion=ce,mse trainer.max_epochs=1: exit 0, wall 30.0 s, fits 6.0 + 6.2 s, 8.9 s a job beyond "
        "its fit; joblib n_jobs=2 20.0 s (1.50x)"
    ]
    failed = {"rc": 1, "wall_s": 3.0, "note": "0 job runs found"}
    assert sweep_lines(failed) == [
        "  sweep criterion=ce,mse trainer.max_epochs=1: exit 1, wall 3.0 s: 0 job runs found"
    ]
    assert sweep_lines({}) == []


@pytest.mark.slow
def test_mnistctl_test_and_predict_are_timed_beside_plain_scripts_that_do_the_same(tiny_run, tmp_path):
    # G-C's evaluation rows, run on the CPU: the plain scripts must do what mnistctl does (the same weights,
    # images, normalisation and batches) or the walls compare different work. Same checkpoint, float32 on
    # both sides: the same test accuracy and loss, and the same predictions CSV, byte for byte.
    best = best_checkpoint(tiny_run.parents[2])
    assert best == tiny_run / read_record(tiny_run)["checkpoints"]["best"] and best.name != "last.ckpt"
    evaluated = evaluation(tmp_path, best, "cpu")
    for what in ("test", "predict"):
        plain, ours = evaluated[what]["plain"], evaluated[what]["mnistctl"]
        assert plain["rc"] == ours["rc"] == 0, (tmp_path / what / "mnistctl.log").read_text()[-3000:]
        assert evaluated[what]["wall_gap_s"] == ours["wall_s"] - plain["wall_s"]
    assert evaluated["test"]["plain"]["test_acc"] == evaluated["test"]["mnistctl"]["test_acc"] > 0.42
    plain_csv, our_csv = (tmp_path / "predict" / name for name in ("plain.csv", "mnistctl.csv"))
    assert plain_csv.read_bytes() == our_csv.read_bytes() and len(plain_csv.read_text().splitlines()) == 10_001
    assert [line.split(",")[0] for line in evaluation_lines(evaluated)] == ["  test", "  predict"]


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
    for what in ("test", "predict"):  # G-C's best checkpoint, mnistctl beside the plain script, on the GPU
        assert [report["evaluation"][what][side]["rc"] for side in ("plain", "mnistctl")] == [0, 0], what
    assert report["evaluation"]["test"]["mnistctl"]["test_acc"] >= 0.985
    assert report["evaluation"]["test"]["plain"]["test_acc"] == pytest.approx(
        report["evaluation"]["test"]["mnistctl"]["test_acc"], abs=0.0005
    )  # the same weights and images; TF32 matmuls may move a few images either way
    assert report["sweep"]["rc"] == 0 and report["sweep"]["jobs"] == 2 and report["sweep"]["joblib_wall_s"] > 0
