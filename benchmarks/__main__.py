"""Benchmark: mnistctl against the original recipe and a plain PyTorch loop, side by side, on this machine.

    python -m benchmarks --quick --json bench.json    # about a minute; `make bench-quick`
    python -m benchmarks                              # one epoch each, plus time to 99% (~5 min)

Runs, each in its own process, the same CNN on the same number of training images:
  A  the original recipe: torchvision MNIST + ToTensor, DataLoader(batch 32, 4 workers), Lightning;
  B  a plain PyTorch loop over in-memory tensors (the floor), at C's batch size and learning rate;
  C  `mnistctl fit` with its default config (configs/base.yaml), limited to the same images.
Training time is timed inside each process with one clock (`probe.py`), wall time and peak memory
(the peak resident set of the process and of its tree) from outside (`proc.py`). Then: wall time of
`mnistctl fit --config configs/fast.yaml` to 99% test accuracy, start-up of `--help` and `sweep --dry-run`, `predict`
throughput and the per-job overhead of a two-job sweep (`extras.py`). It asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks import extras
from benchmarks.proc import measure
from mnistctl.config_files import packaged_config

EPOCH = 55_000
QUICK_SAMPLES = 4_096
EXTRAS = ("abc", "fast", "startup", "predict", "sweep")


def default_settings() -> tuple[int, float]:
    """Batch size and peak learning rate of the default config, which B copies."""
    base = yaml.safe_load(packaged_config("base.yaml").read_text())
    return int(base["data"]["batch_size"]), float(base["optimizer"]["init_args"]["lr"])


def _finish(row: dict, probe: dict) -> dict:
    row.update(probe)
    if row.get("train_s"):
        row["samples_per_s"] = row["train_samples"] / row["train_s"]
    return row


def run_abc(work: Path, samples: int, threads: int | None) -> tuple[dict, Path | None]:
    batch, lr = default_settings()
    base = [sys.executable, "-m", "benchmarks.baselines"]
    thread_flag = ["--threads", str(threads)] if threads else []
    rows = {}
    for key, what, cmd, bs in [
        ("A", "recipe", [*base, "recipe"], 32),
        ("B", "plain loop", [*base, "plain", "--batch-size", str(batch), "--lr", str(lr)], batch),
    ]:
        folder = work / key
        folder.mkdir(parents=True)
        probe = folder / "probe.json"
        cmd = [*cmd, "--samples", str(samples), "--json", str(probe), *thread_flag]
        load = os.getloadavg()[0]
        row = measure(cmd, folder / "log.txt", cwd=folder, tty=True)
        probe_result = extras.read_probe(probe, row["started_at"])
        rows[key] = _finish({"what": what, "batch_size": bs, "load_1m": load, **row}, probe_result)

    folder = work / "C"
    folder.mkdir(parents=True)
    probe = folder / "probe.json"
    cmd = [*extras.mnistctl_cmd(), "fit", "--trainer.max_epochs", "1"]
    if samples < EPOCH:
        cmd += ["--trainer.limit_train_batches", str(math.ceil(samples / batch))]
    cmd += [*extras.probe_args(probe), *extras.threads_args(threads)]
    load = os.getloadavg()[0]
    row = measure(cmd, folder / "log.txt", cwd=folder, tty=True)
    what = "mnistctl fit"
    probe_result = extras.read_probe(probe, row["started_at"])
    rows["C"] = _finish({"what": what, "batch_size": batch, "load_1m": load, **row}, probe_result)
    ckpts = sorted(folder.glob("runs/*/version_*/checkpoints/last.ckpt"))
    return rows, (ckpts[-1] if ckpts else None)


def ratios(rows: dict) -> dict:
    def ratio(a: str, b: str) -> float | None:
        x, y = rows.get(a, {}).get("samples_per_s"), rows.get(b, {}).get("samples_per_s")
        return x / y if x and y else None

    return {"C/A": ratio("C", "A"), "C/B": ratio("C", "B")}


def machine() -> dict:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line), "")
    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "python": platform.python_version(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SAMPLES} images, no time-to-99%% run")
    parser.add_argument("--samples", type=int, default=None, help=f"training images for A, B, C (max {EPOCH})")
    parser.add_argument("--seeds", type=int, default=1, help="seeds of the time-to-99%% run (median reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in every run (default: torch's)")
    parser.add_argument("--skip", default="", help=f"comma-separated parts to leave out: {','.join(EXTRAS)}")
    parser.add_argument("--json", default=None, help="write the report here (default: print it after the table)")
    parser.add_argument("--workdir", default=None, help="keep every run's folder and log here")
    args = parser.parse_args(argv)
    args.samples = args.samples or (QUICK_SAMPLES if args.quick else EPOCH)
    args.skip = {s for s in args.skip.split(",") if s}
    if not 0 < args.samples <= EPOCH or args.skip - set(EXTRAS):
        parser.error(f"--samples must be 1..{EPOCH}, --skip a subset of {','.join(EXTRAS)}")
    return args


def run(args: argparse.Namespace, work: Path) -> dict:
    mode = "quick" if args.quick else ("full" if args.samples == EPOCH else "custom")
    report: dict = {"mode": mode, "samples": args.samples, "machine": machine()}
    report["load_1m_start"] = os.getloadavg()[0]
    start = time.perf_counter()
    ckpt = None
    if "abc" not in args.skip:
        report["runs"], ckpt = run_abc(work, args.samples, args.threads)
        report["ratios"] = ratios(report["runs"])
    if "fast" in args.skip or args.quick:
        report["time_to_99"] = {"note": "skipped (--quick or --skip fast)"}
    else:
        report["time_to_99"] = extras.time_to_accuracy(work, list(range(args.seeds)), args.threads)
    if "startup" not in args.skip:
        report["startup"] = extras.startup(work)
    if "predict" not in args.skip:
        report["predict"] = extras.predict(work, ckpt, args.threads)
    if "sweep" not in args.skip:
        report["sweep"] = extras.sweep_overhead(work, train_batches=10)
    report["load_1m_end"] = os.getloadavg()[0]
    report["bench_wall_s"] = time.perf_counter() - start
    return report


def main(argv: list[str] | None = None) -> int:
    from benchmarks.table import print_report

    args = parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="mnistctl-bench-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    report = run(args, work)
    print_report(report)
    text = json.dumps(report, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    else:
        print(text)
    failed = [k for k, row in report.get("runs", {}).items() if row["rc"]]
    if failed:
        sys.stderr.write(f"bench: run(s) {', '.join(failed)} failed; their logs are in {work}\n")
    elif not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
