"""The benchmark's GPU mode: a plain PyTorch loop with MNIST on the device and `mnistctl fit`, side by side.

    python -m benchmarks.gpu --json gpu.json            # on a CUDA machine (`make bench` runs it there too)
    python -m benchmarks.gpu plain --json plain.json    # the plain loop alone, in this process

Both train configs/gpu.yaml's recipe (batch, epochs, peak learning rate, dropout, one-cycle schedule) on
the same 55,000 images, each in its own process:
  G-B  the plain loop: the split moved to the GPU once, batches cut and normalised there, channels_last,
       Adam + OneCycleLR; training timed after CUDA initialisation, between torch.cuda.synchronize() calls;
  G-C  `mnistctl fit --config configs/gpu.yaml --trainer.accelerator gpu`, training timed by BenchProbe.
It prints the GPU's name, both rows and C/B (training seconds); then `mnistctl test` and `mnistctl predict`
on G-C's best checkpoint, each beside the plain script that does the same (benchmarks.plain_eval), with the
difference of their walls; then a two-job sweep on the GPU (`criterion=ce,mse trainer.max_epochs=1`), one job
after the other and two at a time through joblib, with each job's overhead beyond its fit. Without CUDA it says
so and measures nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks import extras
from benchmarks.baselines import normalise, plain_step
from benchmarks.proc import measure
from mnistctl.config_files import packaged_config
from mnistctl.layout import read_record

TRAIN, VAL, SPLIT_SEED = 55_000, 5_000, 42


def recipe() -> dict:
    """configs/gpu.yaml's training recipe, as the plain loop copies it."""
    gpu = yaml.safe_load(packaged_config("gpu.yaml").read_text())
    base = yaml.safe_load(packaged_config("base.yaml").read_text())
    return {
        "batch_size": int(gpu["data"]["batch_size"]),
        "epochs": int(gpu["trainer"]["max_epochs"]),
        "lr": float(gpu["optimizer"]["init_args"]["lr"]),
        # gpu.yaml lies over base.yaml: the same optimizer class keeps base's other init_args (fused Adam).
        "fused": bool({**base["optimizer"]["init_args"], **gpu["optimizer"]["init_args"]}.get("fused", False)),
        "dropout": float(gpu["model"]["dropout_ratio"]),
        "pct_start": float(base["lr_scheduler"]["init_args"]["pct_start"]),
    }


def run_plain(json_path: str, seed: int = 42, device: str = "cuda", steps: int | None = None) -> None:
    """G-B: the plain loop with the data held on `device`; writes train_s, test_acc, device to `json_path`.

    `device` cpu and `steps` (per epoch) only check the loop itself on a machine without a GPU.
    """
    import torch

    from mnistctl.data.mnist_files import load_split, prepare_root
    from mnistctl.network import CNN

    r, device, started = recipe(), torch.device(device), time.time()
    on_gpu = device.type == "cuda"
    sync = torch.cuda.synchronize if on_gpu else (lambda: None)
    torch.manual_seed(seed)
    root = prepare_root(None, False)
    (train_x, train_y), (test_x, test_y) = load_split(root, train=True), load_split(root, train=False)
    order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(SPLIT_SEED))
    images, labels = train_x[order[VAL:]].to(device), train_y[order[VAL:]].to(device)  # once: the same 55,000
    test_x, test_y = test_x.to(device), test_y.to(device)

    net = CNN(10, r["dropout"]).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=r["lr"], fused=r["fused"])
    per_epoch = min(math.ceil(len(images) / r["batch_size"]), steps or math.inf)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=r["lr"], total_steps=per_epoch * r["epochs"], pct_start=r["pct_start"]
    )
    sync()
    train_start = time.time()
    start = time.perf_counter()
    for _ in range(r["epochs"]):
        shuffled = torch.randperm(len(images), device=device)
        for step in range(per_epoch):
            idx = shuffled[step * r["batch_size"] : (step + 1) * r["batch_size"]]
            plain_step(net, optimizer, schedule, contextlib.nullcontext(), images, labels, idx)  # float32
    sync()
    train_s = time.perf_counter() - start
    net.eval()
    with torch.inference_mode():
        correct = sum(
            int((net(normalise(test_x[i : i + 2048])).argmax(-1) == test_y[i : i + 2048]).sum())
            for i in range(0, len(test_x), 2048)
        )
    samples = min(len(images), per_epoch * r["batch_size"]) * r["epochs"]
    result = {"train_s": train_s, "train_samples": samples, "test_acc": correct / len(test_x)}
    result["device"] = torch.cuda.get_device_name(device) if on_gpu else str(device)
    result["fused_adam"] = r["fused"]
    result["stamps"] = {"setup": started, "train_start": train_start}
    Path(json_path).write_text(json.dumps(result))


def run(work: Path) -> dict:
    """G-B and G-C side by side; {"note": ...} without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return {"note": "no CUDA device: GPU rows skipped"}
    report: dict = {"device": torch.cuda.get_device_name(0), "recipe": recipe(), "runs": {}}
    fit = [*extras.mnistctl_cmd(), "fit", "--config", str(packaged_config("gpu.yaml"))]
    fit += ["--trainer.accelerator", "gpu", "--trainer.devices", "1", "--trainer.enable_progress_bar", "false"]
    plain = [sys.executable, "-m", "benchmarks.gpu", "plain"]
    for key, what, cmd, probe_flags in (
        ("G-B", "plain loop, data on the GPU", plain, lambda p: ["--json", str(p)]),
        ("G-C", "mnistctl fit configs/gpu.yaml", fit, extras.probe_args),
    ):
        folder = work / key
        folder.mkdir(parents=True)
        probe = folder / "probe.json"
        row = measure([*cmd, *probe_flags(probe)], folder / "log.txt", cwd=folder)
        report["runs"][key] = {"what": what, **row, **extras.read_probe(probe, row["started_at"])}
    b, c = (report["runs"][k].get("train_s") for k in ("G-B", "G-C"))
    report["C/B_train"] = c / b if b and c else None
    best = best_checkpoint(work / "G-C")
    report["evaluation"] = evaluation(work, best, "gpu") if best else {"note": "no best checkpoint from G-C"}
    # Issue 18's sweep row, on the GPU: two one-epoch jobs one after the other, then two at a time (joblib).
    report["sweep"] = extras.sweep_overhead(work, train_batches=None, jobs=2, accelerator="gpu", cold=False)
    return report


def best_checkpoint(folder: Path) -> Path | None:
    """The best checkpoint of the one fit run in `folder`, as its run.json names it."""
    for run in sorted(folder.glob("runs/*/version_*")):
        best = (read_record(run) or {}).get("checkpoints", {}).get("best")
        if best and (run / best).is_file():
            return run / best
    return None


def evaluation(work: Path, ckpt: Path, accelerator: str) -> dict:
    """`mnistctl test` and `mnistctl predict` on `ckpt` with gpu.yaml (as G-C trained it: batches of 2,048, CSV
    logging, no pictures), each beside the plain script that does the same (benchmarks.plain_eval), one process
    each, on the same device, in float32. Item 18.4 compares their walls: mnistctl's within 2 s of the plain one's."""
    device = {"gpu": "cuda", "cpu": "cpu"}[accelerator]
    config = packaged_config("gpu.yaml")
    batch = str(yaml.safe_load(config.read_text())["data"]["eval_batch_size"])
    flags = ["--config", str(config), "--trainer.accelerator", accelerator, "--trainer.devices", "1"]
    flags += ["--trainer.precision", "32-true", "--trainer.enable_progress_bar", "false"]
    out: dict = {"batch_size": int(batch)}
    for what in ("test", "predict"):
        folder = work / what
        folder.mkdir(parents=True)
        csv = ["--csv", str(folder / "plain.csv")] if what == "predict" else []
        plain = [sys.executable, "-m", "benchmarks.plain_eval", what, str(ckpt), "--device", device]
        plain += ["--batch_size", batch, *csv, "--json", str(folder / "plain.json")]
        ours = [
            *extras.mnistctl_cmd(),
            what,
            "--ckpt_path",
            str(ckpt),
            *flags,
            *extras.probe_args(folder / "probe.json"),
        ]
        if what == "predict":
            ours += ["--predictions.path", str(folder / "mnistctl.csv")]
        rows = {}
        for side, cmd, result in (("plain", plain, "plain.json"), ("mnistctl", ours, "probe.json")):
            row = measure(cmd, folder / f"{side}.log", cwd=folder)
            rows[side] = {**row, **extras.read_probe(folder / result, row["started_at"])}
        rows["wall_gap_s"] = rows["mnistctl"]["wall_s"] - rows["plain"]["wall_s"]
        out[what] = rows
    return out


def lines(report: dict) -> list[str]:
    """The GPU rows as text: `G-B plain loop ...  train 0.94 s  start 7.5 s  wall 8.6 s  99.16%`."""
    if "runs" not in report:
        return [f"GPU: {report.get('note', 'not run')}"]
    out = [f"GPU: {report['device']}, recipe {report['recipe']}"]
    for key, row in report["runs"].items():
        acc = row.get("test_acc")
        start = row.get("timeline_s", {}).get("train_start")
        out.append(
            f"  {key} {row['what']}: exit {row['rc']}, train {row.get('train_s') or float('nan'):.2f} s, "
            f"start-up {start if start is not None else float('nan'):.1f} s, wall {row['wall_s']:.1f} s, "
            f"test acc {'-' if acc is None else f'{100 * acc:.2f}%'}"
        )
    ratio = report.get("C/B_train")
    out.append(f"  C/B training time: {'-' if ratio is None else f'{ratio:.2f}x'}")
    return out + evaluation_lines(report.get("evaluation", {})) + sweep_lines(report.get("sweep", {}))


def sweep_lines(sweep: dict) -> list[str]:
    """`  sweep criterion=ce,mse trainer.max_epochs=1: exit 0, wall 30.0 s, fits 6.0 + 6.2 s, 8.9 s a job beyond its
    fit; joblib n_jobs=2 20.0 s (1.50x)`, or the sweep's note when it has no per-job figures."""
    if not sweep:
        return []
    line = f"  sweep criterion=ce,mse trainer.max_epochs=1: exit {sweep['rc']}, wall {sweep['wall_s']:.1f} s"
    if "per_job_overhead_s" not in sweep:
        return [f"{line}: {sweep.get('note', 'no per-job figures')}"]
    fits = " + ".join(f"{f:.1f}" for f in sweep["job_fit_s"])
    line += f", fits {fits} s, {sweep['per_job_overhead_s']:.1f} s a job beyond its fit"
    if "joblib_speedup" in sweep:
        line += f"; joblib n_jobs=2 {sweep['joblib_wall_s']:.1f} s ({sweep['joblib_speedup']:.2f}x)"
    return [line]


def evaluation_lines(evaluation: dict) -> list[str]:
    """`  test, batch 2048: plain script 9.1 s (exit 0), mnistctl test 10.4 s (exit 0): +1.3 s wall, test acc ...`
    and the same for predict, or the note saying why there are none."""
    if "note" in evaluation:
        return [f"  test/predict: {evaluation['note']}"]
    out = []
    for what in ("test", "predict"):
        if what not in evaluation:
            continue
        plain, ours, gap = (evaluation[what][key] for key in ("plain", "mnistctl", "wall_gap_s"))
        line = (
            f"  {what}, batch {evaluation['batch_size']}: plain script {plain['wall_s']:.1f} s (exit {plain['rc']}), "
        )
        line += f"mnistctl {what} {ours['wall_s']:.1f} s (exit {ours['rc']}): {gap:+.1f} s wall"
        if what == "test":
            accs = [row.get("test_acc") for row in (plain, ours)]
            line += ", test acc " + " / ".join("-" if a is None else f"{100 * a:.2f}%" for a in accs)
        out.append(line)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.split("\n")[0])
    parser.add_argument("which", nargs="?", choices=["both", "plain"], default="both")
    parser.add_argument("--json", default=None, help="write the report (plain: the row) here")
    parser.add_argument("--workdir", default=None, help="keep every run's folder and log here")
    parser.add_argument("--device", default="cuda", help="plain: the device (cpu only checks the loop)")
    parser.add_argument("--steps", type=int, default=None, help="plain: at most this many steps per epoch")
    args = parser.parse_args(argv)
    if args.which == "plain":
        run_plain(args.json or "plain.json", device=args.device, steps=args.steps)
        return 0
    work = Path(args.workdir or tempfile.mkdtemp(prefix="mnistctl-bench-gpu-")).resolve()
    report = run(work)
    sys.stdout.write("\n".join(lines(report)) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    evaluation = report.get("evaluation", {})
    evaluated = [
        evaluation[what][side] for what in ("test", "predict") if what in evaluation for side in ("plain", "mnistctl")
    ]
    rows = [*report.get("runs", {}).values(), *evaluated, *([report["sweep"]] if "sweep" in report else [])]
    failed = any(row["rc"] for row in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
