"""The benchmark tool: process measurements against known answers, its smallest run's report (slow), and
the fast config's accuracy (slow). Nothing here asserts a speed: the machines are shared and noisy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import extras as bench_extras
from benchmarks import isa as bench_isa
from benchmarks import pairs as bench_pairs
from benchmarks import step_phases
from benchmarks.proc import measure
from benchmarks.table import print_report
from conftest import REPO, TINY, last_metric, run_cli, run_python
from mnistctl.optimization import RECIPE_OPTIMIZER as OPTIMIZER

# What --samples 1024 reaches (test accuracy on the 10,000 test images), every row seeded, on an AMX Xeon:
# A (batch 32, 32 steps) 0.79 natively and held to AVX2, B (plain loop, batch 128, 8 steps) 0.44 (bf16) and
# 0.44 (fp32), C (mnistctl, batch 128, 8 one-cycle steps) 0.36 and 0.35. Other CPUs give other figures (CI saw
# A at 0.68 when A was unseeded), so the bars sit halfway between chance (0.10) and those: a row that did not
# learn, or tested on the wrong labels, stays near 0.10 and fails.
MIN_ACC = {"A": 0.45, "B": 0.25, "C": 0.22}


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


@pytest.mark.slow  # over 9 s: the fast tier stays under 5 minutes
def test_smallest_benchmark_reports_every_field(tmp_path):
    """A, B and C on 1,024 images (B and C in two mirrored pairs), start-up and predict; not the time-to-99%
    run nor the sweep (slow)."""
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "benchmarks", "--samples", "1024", "--skip", "fast,sweep", "--threads", "2"]
    cmd += ["--isa", "native", "--repeats", "2"]
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
    assert ("gpu" in report) == report["machine"]["cuda"] == ("GPU:" in done.stdout)  # GPU rows only with CUDA
    assert report["machine"]["cores"] >= 1 and report["machine"]["torch"]
    for key in "ABC":
        row = report["runs"][key]
        assert row["rc"] == 0, key
        assert row["train_samples"] == 1024, key  # the same images through each pipeline
        assert 0 < row["train_s"] < row["wall_s"] and row["samples_per_s"] > 0, key
        assert row["peak_rss_mb"] > 100 and row["tree_rss_mb"] >= row["peak_rss_mb"], key  # torch alone is >100
        assert MIN_ACC[key] <= row["test_acc"] <= 1.0, (key, row["test_acc"])
    assert report["runs"]["C"]["batch_size"] == report["runs"]["B"]["batch_size"]
    # CPU rows, also on a machine with a GPU (where `accelerator: auto` would take it): B has no device choice.
    assert report["runs"]["A"]["device"] == report["runs"]["C"]["device"] == report["predict"]["device"] == "cpu"
    # B runs in the precision mnistctl chose for C, so C/B compares like with like.
    assert report["runs"]["B"]["precision"] == report["runs"]["C"]["precision"] in ("32-true", "bf16-mixed")
    # ... and steps Adam as the default config does (fused: one kernel per parameter, not a Python loop).
    assert report["runs"]["B"]["fused_adam"] is OPTIMIZER["init_args"]["fused"] is True
    assert report["ratios"]["C/A"] > 0 and report["ratios"]["C/B"] > 0
    (native,) = report["isas"]  # --isa native: this CPU's own instruction set only
    assert native["isa"] == report["machine"]["isa"] == bench_isa.native_isa() and native["env"] == {}
    assert native["C/B"] == report["ratios"]["C/B"] and native["conv_kernel"]
    for key in "BC":  # B and C ran twice each (B C C B), pooled: all samples over all training seconds
        repeats = report["runs"][key]["repeats"]
        assert [r["rc"] for r in repeats] == [0, 0] and [r["train_samples"] for r in repeats] == [1024, 1024]
        pooled = 2048 / sum(r["train_s"] for r in repeats)
        assert report["runs"][key]["samples_per_s"] == pytest.approx(pooled), key
    assert len(native["C/B_each"]) == 2 and min(native["C/B_each"]) <= native["C/B"] <= max(native["C/B_each"])
    startup = {k: report["runs"][k]["startup_s"] for k in "BC"}
    assert native["startup_C_minus_B_s"] == pytest.approx(startup["C"] - startup["B"])
    assert report["startup"]["help_s"] > 0
    predict = report["predict"]
    assert predict["rc"] == 0 and predict["predict_samples"] == 10_000 and predict["csv_rows"] == 10_000
    assert predict["images_per_s"] > 0 and predict["predict_s"] < predict["wall_s"]
    assert native["time_to_99"]["note"].startswith("skipped")


def test_every_cpu_measurement_pins_the_cpu(tmp_path, monkeypatch):
    """Without the pin, a machine with a GPU ran fast.yaml, predict and the sweep jobs on it under a CPU label."""
    commands: list[list[str]] = []

    def recorded(cmd, log, **kwargs) -> dict:
        commands.append([str(part) for part in cmd])
        return {"rc": 1, "wall_s": 1.0, "started_at": 0.0}

    monkeypatch.setattr(bench_extras, "measure", recorded)
    bench_extras.time_to_accuracy(tmp_path / "fast", [0], None)
    ckpt = tmp_path / "best.ckpt"
    ckpt.write_bytes(b"")
    bench_extras.predict(tmp_path, ckpt, None)
    bench_extras.sweep_overhead(tmp_path / "sweep", train_batches=1, jobs=1)
    subcommands = [next(part for part in cmd if part in ("fit", "predict", "sweep")) for cmd in commands]
    assert subcommands == ["fit", "predict", "sweep", "sweep", "sweep", "sweep"]  # the first sweep: --dry-run
    for cmd in commands:
        pinned = "trainer.accelerator=cpu" in cmd if "sweep" in cmd else "--trainer.accelerator cpu" in " ".join(cmd)
        assert pinned, cmd


def test_the_plain_loops_start_without_lightning():
    """B's and G-B's start-up once included importing Lightning and jsonargparse (mnistctl.data's __init__ pulled
    in the DataModule; the precision check jsonargparse): the plain script's start-up C is compared with. The
    plain test/predict scripts (plain_eval) import the same mnistctl modules: their walls are compared too."""
    code = """import sys
from benchmarks import baselines, gpu, plain_eval
from mnistctl.cli.precision import native_bf16
from mnistctl.cpu_tuning import tune_process
from mnistctl.data.mnist_files import load_split, prepare_root
from mnistctl.network import CNN
native_bf16()
heavy = ("pytorch_lightning", "lightning_fabric", "torchmetrics", "jsonargparse", "hydra")
print(sorted(m for m in heavy if m in sys.modules))
"""
    assert run_python(code).strip() == "[]"


def test_pairs_run_in_mirrored_order():
    """A drift in the machine's speed must fall on B and C alike: B C, then C B (not B C B C)."""
    assert bench_pairs.run_order(1) == ["B", "C"]
    assert bench_pairs.run_order(2) == ["B", "C", "C", "B"]
    assert bench_pairs.run_order(3) == ["B", "C", "C", "B", "B", "C"]


def test_a_full_epoch_runs_an_even_number_of_pairs_by_default():
    """An odd number of mirrored pairs leaves a linear drift on one of B and C; one pair is too few to pool."""
    from benchmarks.__main__ import parse_args

    assert parse_args([]).repeats == 4
    assert parse_args(["--quick"]).repeats == parse_args(["--samples", "1000"]).repeats == 1
    assert parse_args(["--repeats", "3"]).repeats == 3


def test_a_row_pools_its_repeats_by_samples_over_seconds():
    """Pooled speed is all samples over all seconds (not the first repeat's, not a mean of speeds)."""

    def run(train_s: float, start: float, rc: int = 0) -> dict:
        return {
            "rc": rc,
            "train_s": train_s,
            "train_samples": 1000,
            "samples_per_s": 1000 / train_s,
            "wall_s": 9.0,
            "timeline_s": {"train_start": start},
        }

    b = bench_pairs.pool([run(1.0, 2.0), run(3.0, 4.0)])
    assert b["samples_per_s"] == 500.0  # 2,000 samples in 4 s; the mean of 1,000 and 333 would be 667
    assert b["train_s"] == 2.0 and b["startup_s"] == 3.0 and b["wall_s"] == 9.0 and b["rc"] == 0
    assert [r["train_s"] for r in b["repeats"]] == [1.0, 3.0]
    c = bench_pairs.pool([run(2.0, 2.5), run(2.0, 2.5)])
    assert bench_pairs.pair_ratios(b, c) == [0.5, 1.5]
    assert bench_pairs.pool([run(1.0, 2.0), run(1.0, 2.0, rc=1)])["rc"] == 1  # a failed repeat fails the row
    crashed = bench_pairs.pool([run(1.0, 2.0), {"rc": -9, "timeline_s": {}}])  # killed before it trained
    assert crashed["rc"] == -9 and crashed["samples_per_s"] is None and crashed["startup_s"] is None
    assert bench_pairs.pool([run(1.0, 2.0)]) == run(1.0, 2.0)  # one repeat: the row as it ran


@pytest.mark.slow  # a real fit of 15 steps with a plain step beside each: about 10 s
def test_step_phases_split_a_real_step_and_time_a_plain_one_beside_it(tmp_path):
    """The profile the README's phase table comes from: every phase of C's step and of B's is timed."""
    out = tmp_path / "phases.json"
    probe = ["--trainer.callbacks+=benchmarks.step_phases.StepPhases", "--trainer.callbacks.path", str(out)]
    done = run_cli(
        "fit",
        *TINY,
        "--trainer.limit_train_batches",
        "15",
        "--test_after_fit",
        "false",
        *probe,
        "--trainer.callbacks.skip",
        "2",
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["steps"] == 12  # batches 3..14: the first three (skip=2, and batch 0's) left out
    assert set(report["C"]["phases_ms"]) == set(step_phases.C_PHASES)
    assert set(report["B"]["phases_ms"]) == set(step_phases.B_PHASES)
    assert all(v > 0 for side in "BC" for v in report[side]["phases_ms"].values()), report
    # The network's work is in forward and backward on both sides, and comparable (same CNN, same batch).
    for side in "BC":
        phases = report[side]["phases_ms"]
        assert phases["forward"] + phases["backward"] > 0.5 * report[side]["step_ms"], (side, phases)
    assert report["C_minus_B_ms"] == pytest.approx(report["C"]["step_ms"] - report["B"]["step_ms"])
    for side in "BC":  # in ms like the medians (slow steps raise a mean, nothing lowers it far below the median)
        assert report[side]["step_mean_ms"] >= 0.5 * report[side]["step_ms"], (side, report[side])
    assert report["C_minus_B_mean_ms"] == pytest.approx(report["C"]["step_mean_ms"] - report["B"]["step_mean_ms"])


def test_lightning_floor_times_both_loops_step_by_step(tmp_path):
    """The fixed per-step cost the README quotes: both loops run every step, each timed after its warm-up."""
    out = tmp_path / "floor.json"
    printed = run_python("from benchmarks.lightning_floor import main; main()", "--steps", "200", "--json", str(out))
    report = json.loads(out.read_text())
    assert report["steps_timed"] == {"lightning": 179, "plain": 179}  # 200 steps, timed from the 21st to the 200th
    # At batch 1 Lightning's loop costs about as much again as the whole plain step: never less.
    assert 0 < report["plain_us"] < report["lightning_us"], report
    assert report["lightning_minus_plain_us"] == pytest.approx(report["lightning_us"] - report["plain_us"])
    assert f"Lightning's loop {report['lightning_minus_plain_us']:.0f} us more" in printed


@pytest.mark.parametrize("steps", ["5", "60000"])
def test_lightning_floor_refuses_a_step_count_it_cannot_time(steps):
    command = [sys.executable, "-m", "benchmarks.lightning_floor", "--steps", steps]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2 and f"--steps must be from 20 to 50000, got {steps}" in done.stderr


@pytest.mark.parametrize(
    ("flags", "label"),
    [({"avx2", "avx512f", "amx_bf16"}, "AVX512-BF16"), ({"avx2", "avx512f"}, "AVX512"), ({"avx2"}, "AVX2")],
)
def test_the_cpu_label_names_its_best_instruction_set(flags, label):
    assert bench_isa.native_isa(flags) == label


def test_an_avx512_cpu_also_runs_avx2_rows_and_an_avx2_cpu_runs_its_own_once():
    assert bench_isa.isas("both", "AVX512-BF16") == [("AVX512-BF16", {}), ("AVX2", bench_isa.AVX2_ENV)]
    assert bench_isa.isas("both", "AVX512") == [("AVX512", {}), ("AVX2", bench_isa.AVX2_ENV)]
    assert bench_isa.isas("both", "AVX2") == [("AVX2", {})]
    assert bench_isa.isas("native", "AVX512-BF16") == [("AVX512-BF16", {})]
    assert bench_isa.isas("avx2", "AVX512-BF16") == [("AVX2", bench_isa.AVX2_ENV)]


@pytest.mark.skipif(not bench_isa.native_isa().startswith("AVX512"), reason="needs an AVX512 CPU to hold back")
def test_onednn_honours_the_avx2_cap():
    """The AVX2 rows are real AVX2: oneDNN says so, and its convolution kernel is the AVX2 one."""
    assert bench_isa.onednn_isa({})["conv_kernel"] and "avx2" not in bench_isa.onednn_isa({})["conv_kernel"]
    held = bench_isa.onednn_isa(bench_isa.AVX2_ENV)
    assert held["onednn_isa"] == "Intel AVX2" and held["conv_kernel"].endswith(":avx2")


def test_the_table_shows_each_instruction_set_side_by_side(capsys):
    def row(what: str, isa: str, speed: float, start: float) -> dict:
        timeline = {"train_start": start}
        return {
            "what": what,
            "isa": isa,
            "precision": "32-true",
            "batch_size": 128,
            "rc": 0,
            "wall_s": 40.0,
            "samples_per_s": speed,
            "train_s": 55_000 / speed,
            "timeline_s": timeline,
        }

    fast = {
        "config": "configs/fast.yaml",
        "median_wall_s": 41.5,
        "all_reached": True,
        "runs": [{"seed": 0, "wall_s": 41.5, "test_acc": 0.9912, "precision": "32-true"}],
    }
    report = {
        "samples": 55_000,
        "mode": "full",
        "load_1m_start": 1.0,
        "load_1m_end": 1.2,
        "bench_wall_s": 500,
        "machine": {
            "cpu": "test CPU",
            "isa": "AVX512-BF16",
            "cores": 2,
            "torch": "2",
            "torch_threads": 2,
            "cuda": False,
        },
        "runs": {
            "B": row("plain loop", "AVX512-BF16", 4000, 3.0),
            "C": row("mnistctl fit", "AVX512-BF16", 3900, 3.8),
            "B@AVX2": row("plain loop", "AVX2", 2000, 3.1),
            "C@AVX2": row("mnistctl fit", "AVX2", 1960, 4.0),
        },
        "isas": [
            {
                "isa": "AVX512-BF16",
                "env": {},
                "onednn_isa": "AMX",
                "conv_kernel": "brg_conv_fwd:avx512_core",
                "C/B": 0.9455,
                "C/B_each": [0.941, 0.95],
                "startup_C_minus_B_s": 0.8,
                "time_to_99": fast,
            },
            {
                "isa": "AVX2",
                "env": bench_isa.AVX2_ENV,
                "onednn_isa": "Intel AVX2",
                "conv_kernel": "brg_conv_fwd:avx2",
                "C/B": 0.98,
                "startup_C_minus_B_s": 0.9,
                "time_to_99": {"note": "skipped (--quick or --skip fast)"},
            },
        ],
    }
    print_report(report)
    out = " ".join(capsys.readouterr().out.replace("│", " ").split())  # cells of one row, in order
    assert "test CPU (AVX512-BF16)" in out
    # Three decimals: a ratio of 0.9455 against a 0.95 target must not print as 0.95x.
    assert "throughput C/B, AVX512-BF16 0.946x pooled over 2 mirrored pairs (0.941, 0.950)" in out
    assert "throughput C/B, AVX2 0.980x" in out
    assert "start-up C - B, AVX512-BF16 +0.8 s" in out and "start-up C - B, AVX2 +0.9 s" in out
    assert "configs/fast.yaml to 99%, AVX512-BF16 41.5 s reached (32-true)" in out
    assert "time to 99% test acc, AVX2 - skipped" in out
    assert "convolution brg_conv_fwd:avx2" in out


@pytest.mark.slow
def test_sweep_overhead_is_measured_warm_and_cold(tmp_path):
    result = bench_extras.sweep_overhead(tmp_path, train_batches=10)
    cold = result["cold"]
    for run in (result, cold):
        assert run["rc"] == 0 and run["jobs"] == 4, run
        assert all(0 < s < run["wall_s"] for s in run["job_fit_s"])
        assert 0 < run["per_job_overhead_s"] < run["wall_s"]
    starts = {json.loads(p.read_text())["start"] for p in (tmp_path / "sweep").glob("*/job.json")}
    assert starts == {"warm"} and {
        json.loads(p.read_text())["start"] for p in (tmp_path / "sweep_cold").glob("*/job.json")
    } == {"cold"}
    assert result["warm_saves_s"] == pytest.approx(cold["per_job_overhead_s"] - result["per_job_overhead_s"])
    assert result["joblib_speedup"] == pytest.approx(result["wall_s"] / result["joblib_wall_s"])
    assert len(list((tmp_path / "sweep_joblib").glob("*/runs/*/version_0/checkpoints/last.ckpt"))) == 4


@pytest.mark.slow
def test_fast_config_reaches_99_percent_test_accuracy():
    done = run_cli("fit", "--config", str(REPO / "configs" / "fast.yaml"), "--trainer.enable_progress_bar", "false")
    assert done.returncode == 0, done.stderr[-3000:]
    (metrics,) = Path("runs").glob("*/version_*/metrics.csv")
    # 99% is fast.yaml's median over seeds (99.08-99.16% here, 99.16% on an H200): one seed on another CPU
    # or torch build rounds differently (the default config: 99.48% here, 99.38% on another AVX machine),
    # so the bar leaves that margin and still fails a recipe that stops reaching 99%.
    assert last_metric(metrics, "test/acc") >= 0.989
