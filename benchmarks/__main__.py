"""Benchmark: mnistctl against the original recipe and a plain PyTorch loop, side by side, on this machine.

    python -m benchmarks --quick --json bench.json    # a fraction of an epoch; `make bench-quick`
    python -m benchmarks --seeds 3                    # one epoch each, plus time to 99%; `make bench`

Runs, each in its own process, the same CNN on the same number of training images:
  A  the original recipe: torchvision MNIST + ToTensor, DataLoader(batch 32, 4 workers), Lightning;
  B  a plain PyTorch loop over in-memory tensors (the floor), at C's batch size, learning rate and precision;
  C  `mnistctl fit` with its default config (configs/base.yaml), limited to the same images.
B, C and the time-to-99% runs go once per instruction set (`isa.py`): this CPU's own and, on an AVX512
CPU, AVX2 (oneDNN held to it), side by side; B and C in mirrored pairs (B C C B for a full epoch, `pairs.py`),
each row pooled over its repeats. Training time is timed inside each process with one clock
(`probe.py`), wall time and peak memory (the peak resident set of the process and of its tree) from
outside (`proc.py`). Then: wall time of `mnistctl fit --config configs/fast.yaml` to 99% test accuracy,
start-up of `--help` and `sweep --dry-run`, `predict` throughput and the per-job overhead of a four-job
sweep, warm and cold start (`extras.py`). On a machine with CUDA it then runs the GPU rows (`gpu.py`): a
plain loop with MNIST held on the GPU and `mnistctl fit --config configs/gpu.yaml`, side by side, with the
GPU's name; on a machine without CUDA the report is as before. It asserts nothing about speed.
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

from benchmarks import extras, gpu, isa, pairs
from benchmarks.proc import measure
from mnistctl.config_files import packaged_config
from mnistctl.layout import read_record

EPOCH = 55_000
QUICK_SAMPLES = 4_096
EXTRAS = ("abc", "fast", "startup", "predict", "sweep", "gpu")


def default_settings() -> tuple[int, float, bool]:
    """Batch size, peak learning rate and fused Adam of the default config, which B copies."""
    base = yaml.safe_load(packaged_config("base.yaml").read_text())
    adam = base["optimizer"]["init_args"]
    return int(base["data"]["batch_size"]), float(adam["lr"]), bool(adam.get("fused", False))


def _finish(row: dict, probe: dict) -> dict:
    row.update(probe)
    if row.get("train_s"):
        row["samples_per_s"] = row["train_samples"] / row["train_s"]
    return row


def _run_row(work: Path, key: str, what: str, cmd: list[str], batch: int, env: dict[str, str]) -> dict:
    folder = work / key.replace("@", "_")
    folder.mkdir(parents=True)
    probe = folder / "probe.json"
    cmd = [*cmd, *(["--json", str(probe)] if what != "mnistctl fit" else extras.probe_args(probe))]
    load = os.getloadavg()[0]
    row = measure(cmd, folder / "log.txt", cwd=folder, env=env, tty=True)
    probed = extras.read_probe(probe, row["started_at"])
    row = _finish({"what": what, "batch_size": batch, "load_1m": load, **row}, probed)
    if what == "mnistctl fit":  # the precision mnistctl chose, from the run's record
        runs = sorted(folder.glob("runs/*/version_*"))
        record = read_record(runs[-1]) if runs else None
        row["precision"] = (record or {}).get("precision", {}).get("value")
    return row


def run_a(work: Path, samples: int, threads: int | None) -> dict:
    """A, the original recipe, on this CPU as it is: it is the starting point, not an ISA comparison."""
    cmd = [sys.executable, "-m", "benchmarks.baselines", "recipe", "--samples", str(samples)]
    row = _run_row(work, "A", "recipe", [*cmd, *(["--threads", str(threads)] if threads else [])], 32, {})
    row["precision"] = "32-true"
    return row


def run_bc(
    work: Path, samples: int, threads: int | None, isa: str, env: dict[str, str], suffix: str, repeats: int = 1
) -> dict:
    """B and C side by side under one instruction set, `repeats` times in mirrored order (pairs.py), each
    row pooled over its repeats; C's first row also gives the checkpoint predict uses."""
    batch, lr, fused = default_settings()
    thread_flag = ["--threads", str(threads)] if threads else []
    plain = [sys.executable, "-m", "benchmarks.baselines", "plain", "--samples", str(samples)]
    plain += ["--batch-size", str(batch), "--lr", str(lr), *(["--fused"] if fused else []), *thread_flag]
    fit = [*extras.mnistctl_cmd(), "fit", "--trainer.max_epochs", "1", *extras.ON_CPU]  # as B
    if samples < EPOCH:
        fit += ["--trainer.limit_train_batches", str(math.ceil(samples / batch))]
    fit += extras.threads_args(threads)
    commands = {"B": ("plain loop", plain), "C": ("mnistctl fit", fit)}
    done: dict[str, list[dict]] = {"B": [], "C": []}
    for key in pairs.run_order(repeats):
        what, cmd = commands[key]
        folder = key + suffix + (f"_r{len(done[key]) + 1}" if done[key] else "")
        done[key].append(_run_row(work, folder, what, cmd, batch, env))
    return {key + suffix: {"isa": isa, **pairs.pool(rows)} for key, rows in done.items()}


def ratio(rows: dict, a: str, b: str) -> float | None:
    x, y = rows.get(a, {}).get("samples_per_s"), rows.get(b, {}).get("samples_per_s")
    return x / y if x and y else None


def startup_gap(rows: dict, a: str, b: str) -> float | None:
    """Seconds from command start to first batch: row a's minus row b's (means over repeats, if any)."""
    x, y = (pairs.startup_s(rows.get(k, {})) for k in (a, b))
    return x - y if x is not None and y is not None else None


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
        "isa": isa.native_isa(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SAMPLES} images, no time-to-99%% run")
    parser.add_argument("--samples", type=int, default=None, help=f"training images for A, B, C (max {EPOCH})")
    parser.add_argument("--seeds", type=int, default=1, help="seeds of the time-to-99%% run (median reported)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="B and C pairs per instruction set, in mirrored order (B C C B ...), pooled (default: 4 for a "
        "full epoch, else 1)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads in every run (default: torch's)")
    parser.add_argument("--skip", default="", help=f"comma-separated parts to leave out: {','.join(EXTRAS)}")
    parser.add_argument(
        "--isa",
        choices=("both", "native", "avx2"),
        default="both",
        help="B, C and the time-to-99%% run on this CPU's instruction set, on AVX2 (emulated on an AVX512 CPU "
        "with ONEDNN_MAX_CPU_ISA=AVX2), or both (default; AVX2-only CPUs run their own once)",
    )
    parser.add_argument("--json", default=None, help="write the report here (default: print it after the table)")
    parser.add_argument("--workdir", default=None, help="keep every run's folder and log here")
    args = parser.parse_args(argv)
    args.samples = args.samples or (QUICK_SAMPLES if args.quick else EPOCH)
    if args.repeats is None:
        # Four pairs: single pairs on a shared 2-core machine spread by +-0.03 in C/B, about the gap measured.
        args.repeats = 4 if args.samples == EPOCH else 1
    args.skip = {s for s in args.skip.split(",") if s}
    if not 0 < args.samples <= EPOCH or args.skip - set(EXTRAS) or args.repeats < 1:
        parser.error(f"--samples must be 1..{EPOCH}, --repeats at least 1, --skip a subset of {','.join(EXTRAS)}")
    return args


def run_isa(args: argparse.Namespace, work: Path, label: str, env: dict[str, str], suffix: str) -> tuple[dict, dict]:
    """B, C and fast.yaml under one instruction set: (rows, summary)."""
    summary: dict = {"isa": label, "env": env, **isa.onednn_isa(env)}
    rows = {}
    if "abc" not in args.skip:
        rows = run_bc(work, args.samples, args.threads, label, env, suffix, args.repeats)
        summary["C/B"] = ratio(rows, "C" + suffix, "B" + suffix)
        summary["C/B_each"] = pairs.pair_ratios(rows["B" + suffix], rows["C" + suffix])
        summary["startup_C_minus_B_s"] = startup_gap(rows, "C" + suffix, "B" + suffix)
    if "fast" in args.skip or args.quick:
        summary["time_to_99"] = {"note": "skipped (--quick or --skip fast)"}
    else:
        folder, seeds = work / f"fast{suffix}".replace("@", "_"), list(range(args.seeds))
        summary["time_to_99"] = extras.time_to_accuracy(folder, seeds, args.threads, env=env)
    return rows, summary


def run(args: argparse.Namespace, work: Path) -> dict:
    mode = "quick" if args.quick else ("full" if args.samples == EPOCH else "custom")
    report: dict = {"mode": mode, "samples": args.samples, "machine": machine(), "runs": {}, "isas": []}
    report["load_1m_start"] = os.getloadavg()[0]
    start = time.perf_counter()
    if "abc" not in args.skip:
        report["runs"]["A"] = run_a(work, args.samples, args.threads)
    native = report["machine"]["isa"]
    for label, env in isa.isas(args.isa, native):
        rows, summary = run_isa(args, work, label, env, "" if label == native else f"@{label}")
        report["runs"].update(rows)
        report["isas"].append(summary)
    if "abc" not in args.skip:
        report["ratios"] = {"C/A": ratio(report["runs"], "C", "A"), "C/B": ratio(report["runs"], "C", "B")}
    if "startup" not in args.skip:
        report["startup"] = extras.startup(work)
    if "predict" not in args.skip:
        ckpts = sorted((work / "C").glob("runs/*/version_*/checkpoints/last.ckpt"))
        report["predict"] = extras.predict(work, ckpts[-1] if ckpts else None, args.threads)
    if "sweep" not in args.skip:
        report["sweep"] = extras.sweep_overhead(work, train_batches=10)
    if "gpu" not in args.skip and report["machine"]["cuda"]:  # on a CPU-only machine: no GPU key at all
        report["gpu"] = gpu.run(work / "gpu")
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
    failed = [k for k, row in {**report.get("runs", {}), **report.get("gpu", {}).get("runs", {})}.items() if row["rc"]]
    if failed:
        sys.stderr.write(f"bench: run(s) {', '.join(failed)} failed; their logs are in {work}\n")
    elif not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
