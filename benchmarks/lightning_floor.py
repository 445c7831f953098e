"""Lightning's own cost per training step, at its least: a one-layer network on 1-image batches.

    python -m benchmarks.lightning_floor --steps 3000

mnistctl's LightningModule and DataModule, in the precision mnistctl picks on this CPU, with the CNN replaced
by one linear layer, run by a bare Trainer (no logger, callbacks, progress bar or checkpoints); then a plain
PyTorch loop with the same network, batches (cut and normalised as B's are), fused Adam and one-cycle
schedule; both in this process, timed per step after a warm-up. Their difference is what Lightning's
automatic-optimization loop (closure, optimizer wrappers, hook dispatch, progress counters, fetcher) costs a
step when its Python runs from warm CPU caches: the least any network pays. Behind the CNN the same loop costs
more, because the step's kernels evict that Python's working set; `step_phases.py` measures that.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn

from benchmarks.baselines import plain_step
from mnistctl.cli.precision import native_bf16
from mnistctl.cpu_tuning import tune_process

PIXELS, CLASSES, LR = 28 * 28, 10, 0.003
MIN_STEPS, MAX_STEPS = 20, 50_000


class OneLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(PIXELS, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.flatten(x, 1))


def _per_step_us(stamps: list[float], warmup: int) -> list[float]:
    return [1e6 * (b - a) for a, b in zip(stamps[warmup:-1], stamps[warmup + 1 :], strict=True)]


def lightning_steps(steps: int, precision: str, warmup: int) -> tuple[list[float], tuple[torch.Tensor, torch.Tensor]]:
    """Per-step microseconds of a bare Trainer fitting MNISTClassifier(OneLayer), and the training split used."""
    from pytorch_lightning import Callback, Trainer

    from mnistctl.data.datamodule import MNISTDataModule
    from mnistctl.model import MNISTClassifier

    class StepClock(Callback):
        def __init__(self) -> None:
            self.stamps: list[float] = []

        def on_train_batch_end(self, *args) -> None:
            self.stamps.append(time.perf_counter())

    model, data, clock = MNISTClassifier(), MNISTDataModule(batch_size=1), StepClock()
    model.net = OneLayer()
    trainer = Trainer(
        accelerator="cpu",
        precision=precision,
        max_epochs=1,
        limit_train_batches=steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[clock],
    )
    trainer.fit(model, datamodule=data)
    images, labels, _ = data.splits["train"]
    return _per_step_us(clock.stamps, warmup), (images, labels)


def plain_steps(images: torch.Tensor, labels: torch.Tensor, steps: int, bf16: bool, warmup: int) -> list[float]:
    """Per-step microseconds of a plain loop over the same images with the same network and optimizer."""
    net = OneLayer()
    optimizer = torch.optim.Adam(net.parameters(), lr=LR, fused=True)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=LR, total_steps=steps, pct_start=0.25)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    order, stamps = torch.randperm(len(images)), []
    for step in range(steps):
        plain_step(net, optimizer, schedule, autocast, images, labels, order[step : step + 1])
        stamps.append(time.perf_counter())
    return _per_step_us(stamps, warmup)


def measure(steps: int) -> dict:
    tune_process()
    torch.manual_seed(0)
    bf16 = native_bf16() is not None
    precision, warmup = "bf16-mixed" if bf16 else "32-true", steps // 10
    lightning, (images, labels) = lightning_steps(steps, precision, warmup)
    plain = plain_steps(images, labels, steps, bf16, warmup)
    c, b = statistics.fmean(lightning), statistics.fmean(plain)
    return {
        "steps_timed": {"lightning": len(lightning), "plain": len(plain)},
        "precision": precision,
        "lightning_us": c,
        "plain_us": b,
        "lightning_minus_plain_us": c - b,
        "medians_us": {"lightning": statistics.median(lightning), "plain": statistics.median(plain)},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lightning_floor", description=__doc__.split("\n")[0])
    help_steps = "training steps of each loop, 20 to 50,000 (within one epoch); the first 10%% untimed"
    parser.add_argument("--steps", type=int, default=3000, help=help_steps)
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if not MIN_STEPS <= args.steps <= MAX_STEPS:  # enough to time after a warm-up; within one epoch
        parser.error(f"--steps must be from {MIN_STEPS} to {MAX_STEPS}, got {args.steps}")
    report = measure(args.steps)
    print(
        f"per step ({report['precision']}, one linear layer, batch 1, means):"
        f" Lightning {report['lightning_us']:.0f} us, plain loop {report['plain_us']:.0f} us,"
        f" Lightning's loop {report['lightning_minus_plain_us']:.0f} us more"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
