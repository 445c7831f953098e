"""The benchmark tool: process measurements against known answers, its smallest run's report, and the
fast config's accuracy (slow). Nothing here asserts a speed: the machines are shared and noisy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import extras as bench_extras
from benchmarks.proc import measure
from conftest import REPO, last_metric, run_cli

# What --samples 1024 reaches on this CPU (test accuracy on the 10,000 test images): A (batch 32, 32 steps)
# 0.79, B (plain loop, batch 128, 8 steps) 0.44, C (mnistctl, batch 128, 8 one-cycle steps) 0.35.
MIN_ACC = {"A": 0.70, "B": 0.38, "C": 0.30}


def test_measure_reports_wall_time_and_peak_memory_of_a_child(tmp_path):
    # 200 MiB written (so resident), held for 1.2 s: the kernel and the sampler (every 0.5 s) both see it.
    code = "import time; block = b'x' * (200 << 20); time.sleep(1.2)"
    result = measure([sys.executable, "-c", code], log=tmp_path / "log")
    assert result["rc"] == 0
    assert 1.2 <= result["wall_s"] < 60
    assert result["peak_rss_mb"] >= 200 and result["tree_rss_mb"] >= result["peak_rss_mb"]
    assert result["cpu_s"] > 0


def test_measure_sums_the_memory_of_child_processes(tmp_path):
    # A parent holding 200 MiB starts a child holding 150 MiB; both live for 1.5 s.
    child = "import time; block = b'y' * (150 << 20); time.sleep(1.5)"
    code = (
        "import subprocess, sys, time; block = b'x' * (200 << 20); "
        f"p = subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(1.5); p.wait()"
    )
    result = measure([sys.executable, "-c", code], log=tmp_path / "log")
    assert result["rc"] == 0
    assert 200 <= result["peak_rss_mb"] < 340  # the parent's own peak, not the sum
    assert result["tree_rss_mb"] >= 350


def test_measure_gives_a_terminal_only_when_asked(tmp_path):
    code = "import sys; print('tty', sys.stdout.isatty(), sys.stderr.isatty())"
    for tty in (True, False):
        log = tmp_path / f"log{tty}"
        assert measure([sys.executable, "-c", code], log=log, tty=tty)["rc"] == 0
        assert f"tty {tty} {tty}" in log.read_text()


def test_measure_reports_a_failing_command(tmp_path):
    assert measure([sys.executable, "-c", "raise SystemExit(3)"], log=tmp_path / "log")["rc"] == 3


def test_smallest_benchmark_reports_every_field(tmp_path):
    """A, B and C on 1,024 images, start-up and predict; not the time-to-99% run nor the sweep (slow)."""
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "benchmarks", "--samples", "1024", "--skip", "fast,sweep", "--threads", "2"]
    done = subprocess.run(
        [*cmd, "--json", str(out), "--workdir", str(tmp_path / "work")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Training 1,024 MNIST images" in done.stdout and "Also measured" in done.stdout
    report = json.loads(out.read_text())
    assert report["samples"] == 1024 and report["mode"] == "custom"
    assert report["machine"]["cores"] >= 1 and report["machine"]["torch"]
    for key in "ABC":
        row = report["runs"][key]
        assert row["rc"] == 0, key
        assert row["train_samples"] == 1024, key  # the same images through each pipeline
        assert 0 < row["train_s"] < row["wall_s"] and row["samples_per_s"] > 0, key
        assert row["peak_rss_mb"] > 100 and row["tree_rss_mb"] >= row["peak_rss_mb"], key  # torch alone is >100
        assert MIN_ACC[key] <= row["test_acc"] <= 1.0, (key, row["test_acc"])
    assert report["runs"]["C"]["batch_size"] == report["runs"]["B"]["batch_size"]
    assert report["ratios"]["C/A"] > 0 and report["ratios"]["C/B"] > 0
    assert report["startup"]["help_s"] > 0
    predict = report["predict"]
    assert predict["rc"] == 0 and predict["predict_samples"] == 10_000 and predict["csv_rows"] == 10_000
    assert predict["images_per_s"] > 0 and predict["predict_s"] < predict["wall_s"]
    assert report["time_to_99"]["note"].startswith("skipped")


@pytest.mark.slow
def test_two_job_sweep_overhead_is_measured(tmp_path):
    result = bench_extras.sweep_overhead(tmp_path, train_batches=10)
    assert result["rc"] == 0 and result["jobs"] == 2, result
    assert all(0 < s < result["wall_s"] for s in result["job_fit_s"])
    assert 0 < result["per_job_overhead_s"] < result["wall_s"]
    assert result["joblib_speedup"] == pytest.approx(result["wall_s"] / result["joblib_wall_s"])
    assert len(list((tmp_path / "sweep_joblib").glob("*/runs/*/version_0/checkpoints/last.ckpt"))) == 2


@pytest.mark.slow
def test_fast_config_reaches_99_percent_test_accuracy():
    done = run_cli("fit", "--config", str(REPO / "configs" / "fast.yaml"), "--trainer.enable_progress_bar", "false")
    assert done.returncode == 0, done.stderr[-3000:]
    (metrics,) = Path("runs").glob("*/version_*/metrics.csv")
    # 99% is fast.yaml's median over seeds (99.08-99.16% here, 99.16% on an H200): one seed on another CPU
    # or torch build rounds differently (the default config: 99.48% here, 99.38% on another AVX machine),
    # so the bar leaves that margin and still fails a recipe that stops reaching 99%.
    assert last_metric(metrics, "test/acc") >= 0.989
