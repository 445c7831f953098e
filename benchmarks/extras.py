"""The benchmark's measurements beyond A/B/C: time to 99%, start-up, predict throughput, sweep overhead.

    python -m benchmarks --skip abc     # only these (they train their own checkpoint if needed)

Each runs the real `mnistctl` command as a child process (`proc.measure`), and returns a dict
for the JSON report; a measurement that cannot run says why in `note` instead of failing the benchmark.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from benchmarks.proc import measure
from mnistctl.config_files import packaged_config
from mnistctl.layout import read_record
from mnistctl.sweep.warm_start import SWITCH_ENV as SWEEP_WARM_ENV

PROBE = "benchmarks.probe.BenchProbe"
TARGET_ACC = 0.99
# Every CPU measurement stays on the CPU: on a machine with a GPU `accelerator: auto` would move it there
# under a CPU instruction set's label (the GPU's rows are gpu.py's, run with --trainer.accelerator gpu).
ON_CPU = ("--trainer.accelerator", "cpu")  # sweep jobs, which read their job.yaml: trainer.accelerator=cpu


def mnistctl_cmd() -> list[str]:
    """The console script next to this Python (what a user runs), else `python -m mnistctl`."""
    script = Path(sys.executable).with_name("mnistctl")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mnistctl"]


def probe_args(path: Path) -> list[str]:
    """Append BenchProbe to whatever callbacks the config has."""
    return [f"--trainer.callbacks+={PROBE}", "--trainer.callbacks.path", str(path)]


def read_probe(path: Path, started_at: float) -> dict:
    """The probe's JSON, its time stamps turned into seconds since the command started (`timeline_s`)."""
    probe = json.loads(path.read_text()) if path.is_file() else {}
    stamps = probe.pop("stamps", {})
    if stamps:
        probe["timeline_s"] = {name: stamp - started_at for name, stamp in stamps.items()}
    return probe


def threads_args(threads: int | None) -> list[str]:
    return ["--num_threads", str(threads)] if threads else []


def time_to_accuracy(
    work: Path, seeds: list[int], threads: int | None, config: str = "fast.yaml", env: dict[str, str] | None = None
) -> dict:
    """`mnistctl fit --config configs/<config>` per seed: wall time from the command's start, test accuracy."""
    runs = []
    for seed in seeds:
        folder = work / f"fast_seed{seed}"
        folder.mkdir(parents=True)
        probe = folder / "probe.json"
        cmd = [*mnistctl_cmd(), "fit", "--config", str(packaged_config(config)), "--seed_everything", str(seed)]
        cmd += [*ON_CPU, *probe_args(probe), *threads_args(threads)]
        result = measure(cmd, folder / "log.txt", cwd=folder, env=env, tty=True)
        result.update(seed=seed, **read_probe(probe, result["started_at"]))
        record = next((read_record(run) for run in sorted(folder.glob("runs/*/version_*"))), None) or {}
        result["precision"] = record.get("precision", {}).get("value")
        acc = result.get("test_acc")
        result["reached"] = acc is not None and acc >= TARGET_ACC
        runs.append(result)
    walls = [r["wall_s"] for r in runs]
    return {
        "config": f"configs/{config}",
        "target_acc": TARGET_ACC,
        "runs": runs,
        "median_wall_s": statistics.median(walls),
        "median_test_acc": statistics.median(r.get("test_acc") or 0.0 for r in runs),
        "all_reached": all(r["reached"] for r in runs),
    }


def _median_wall(cmd: list[str], log: Path, repeat: int) -> tuple[float, int]:
    results = [measure(cmd, log) for _ in range(repeat)]
    return statistics.median(r["wall_s"] for r in results), max(r["rc"] for r in results)


def startup(work: Path, repeat: int = 3) -> dict:
    """Median wall time of `mnistctl --help` and `mnistctl sweep --dry-run criterion=ce,mse`."""
    out: dict = {}
    out["help_s"], rc = _median_wall([*mnistctl_cmd(), "--help"], work / "help.log", repeat)
    if rc:
        out["help_s"], out["help_note"] = None, f"exit {rc}, see help.log"
    cmd = [*mnistctl_cmd(), "sweep", "--dry-run", "criterion=ce,mse"]
    measure(cmd, work / "sweep_dry_run.log")  # the first use builds the sweep's config tree (cached): not timed
    out["sweep_dry_run_s"], rc = _median_wall(cmd, work / "sweep_dry_run.log", repeat)
    if rc:
        out["sweep_dry_run_s"], out["sweep_note"] = None, f"exit {rc}, see sweep_dry_run.log"
    return out


def predict(work: Path, ckpt: Path | None, threads: int | None) -> dict:
    """`mnistctl predict` on the 10,000 test images to CSV; images/s timed inside (predict loop + CSV write)."""
    if ckpt is None or not ckpt.is_file():
        return {"note": "skipped: no checkpoint from run C"}
    folder = work / "predict"
    folder.mkdir(parents=True)
    probe, csv = folder / "probe.json", folder / "predictions.csv"
    cmd = [*mnistctl_cmd(), "predict", "--ckpt_path", str(ckpt), "--predictions.path", str(csv), *ON_CPU]
    result = measure([*cmd, *probe_args(probe), *threads_args(threads)], folder / "log.txt", cwd=folder, tty=True)
    result.update(read_probe(probe, result["started_at"]))
    result["csv_rows"] = sum(1 for _ in csv.open()) - 1 if csv.is_file() else 0
    if result.get("predict_s"):
        result["images_per_s"] = result["predict_samples"] / result["predict_s"]
    return result


def _fit_seconds(run: Path) -> float | None:
    """A job's fit time, set-up to end (training and the test after it), from its run.json."""
    record = read_record(run)
    return record.get("wall_time_s") if record else None


def sweep_overhead(
    work: Path, train_batches: int | None, jobs: int = 4, accelerator: str = "cpu", cold: bool = True
) -> dict:
    """`jobs` tiny fits (one epoch, `train_batches` batches; None: the whole epoch) on `accelerator`, swept
    warm (the default: forked from a server with torch imported) and, with `cold`, cold (MNISTCTL_SWEEP_WARM=0:
    a new interpreter each), one after the other in this run; per-job overhead = (sweep wall - sum of the
    jobs' fit times) / jobs. Then the warm jobs through joblib, two at a time."""
    criteria = ",".join(["ce", "mse", "nll", "ce_smooth"][:jobs])
    seeds = max(1, -(-jobs // 4))  # more than four jobs: seeds of each criterion
    overrides = [f"criterion={criteria}", f"seed={','.join(str(i) for i in range(1, seeds + 1))}"]
    overrides += ["trainer.max_epochs=1", f"trainer.accelerator={accelerator}"]
    overrides += [f"trainer.limit_train_batches={train_batches}"] if train_batches else []
    # The first use builds the sweep's cached config tree (seconds, it imports torch): not in either figure.
    measure([*mnistctl_cmd(), "sweep", "--dry-run", *overrides], work / "sweep_tree.log", cwd=work)
    result = _one_sweep(work, "sweep", overrides, {})
    if cold:
        result["cold"] = _one_sweep(work, "sweep_cold", overrides, {SWEEP_WARM_ENV: "0"})
    if "per_job_overhead_s" in result and "per_job_overhead_s" in result.get("cold", {}):
        result["warm_saves_s"] = result["cold"]["per_job_overhead_s"] - result["per_job_overhead_s"]
    parallel = [*overrides, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    joblib = _one_sweep(work, "sweep_joblib", parallel, {})
    if not joblib["rc"]:
        result["joblib_wall_s"] = joblib["wall_s"]
        result["joblib_speedup"] = result["wall_s"] / joblib["wall_s"]
    return result


def _one_sweep(work: Path, name: str, overrides: list[str], env: dict) -> dict:
    folder = work / name
    cmd = [*mnistctl_cmd(), "sweep", *overrides, f"hydra.sweep.dir={folder}"]
    result = measure(cmd, work / f"{name}.log", cwd=work, env=env)
    runs = sorted(folder.glob("*/runs/*/version_*"))
    fits = [_fit_seconds(run) for run in runs]
    result.update(jobs=len(runs), job_fit_s=fits)
    if result["rc"] or not runs or None in fits:
        result["note"] = f"sweep exit {result['rc']}, {len(runs)} job runs found; see {name}.log"
        return result
    result["per_job_overhead_s"] = (result["wall_s"] - sum(fits)) / len(runs)
    # Where the sweep records each job's wall time (<job>/job.json), split the overhead: job process vs sweep.
    walls = [_job_wall(run.parents[2] / "job.json") for run in runs]
    if None not in walls:
        result["job_wall_s"] = walls
        result["sweep_machinery_s"] = result["wall_s"] - sum(walls)
        result["job_start_s"] = [w - f for w, f in zip(walls, fits, strict=True)]  # each job's wall outside its fit
    return result


def _job_wall(path: Path) -> float | None:
    try:
        return float(json.loads(path.read_text())["wall_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
