"""StepPhases: where a Lightning training step's time goes, next to a plain PyTorch step in the same process.

    PYTHONPATH=. mnistctl fit --trainer.max_epochs 1 --trainer.limit_train_batches 300 --test_after_fit false \\
        --trainer.callbacks+=benchmarks.step_phases.StepPhases --trainer.callbacks.path phases.json

After every Lightning step it runs one plain step (the same CNN, fused Adam with a one-cycle schedule,
the same precision, a batch of the same size from the same in-memory images, normalised as the
DataModule does), so both see the same process, threads and machine state. C's step is split at
Lightning's hooks: `pre` (hooks and optimizer wrappers before `training_step`), `forward` (the
`training_step`), `zero_grad` (closure result and `zero_grad`), `backward`, `before_step` (hooks after
backward), `step` (the optimizer step and what Lightning does up to `on_train_batch_end`) and `post`
(everything until the next `on_train_batch_start`: schedules, loggers, fetching, moving and normalising
the next batch, minus the plain step run in between). The plain step's `forward` includes slicing and
normalising its batch. Medians in ms per phase, and each step's mean, after the first `skip` steps, printed
and written as JSON.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from pytorch_lightning import Callback, LightningModule, Trainer

from benchmarks.baselines import plain_batch
from mnistctl.network import CNN

C_PHASES = ("pre", "forward", "zero_grad", "backward", "before_step", "step", "post")
B_PHASES = ("forward", "zero_grad", "backward", "step", "schedule")


class StepPhases(Callback):
    def __init__(self, path: str = "step_phases.json", skip: int = 5) -> None:
        self.path, self.skip = Path(path), skip
        self.c: dict[str, list[float]] = {k: [] for k in C_PHASES}
        self.b: dict[str, list[float]] = {k: [] for k in B_PHASES}
        self._t: dict[str, float] = {}

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        images, labels = trainer.datamodule.splits["train"][:2]
        self._images, self._labels = images, labels
        self._net = CNN(10, float(pl_module.hparams.get("dropout_ratio", 0.25))).to(memory_format=torch.channels_last)
        self._opt = torch.optim.Adam(self._net.parameters(), lr=0.003, fused=True)
        self._sched = torch.optim.lr_scheduler.OneCycleLR(self._opt, max_lr=0.003, total_steps=10**6)
        self._order, self._taken = torch.randperm(len(images)), 0
        self._bf16 = "bf16" in str(trainer.precision)
        step = pl_module.training_step

        def timed_step(*args, **kwargs):
            self._t["forward0"] = time.perf_counter()
            out = step(*args, **kwargs)
            self._t["forward1"] = time.perf_counter()
            return out

        pl_module.training_step = timed_step  # an instance attribute: Lightning calls it as the hook

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        now = time.perf_counter()
        if "end" in self._t and batch_idx > self.skip:
            self.c["post"].append(now - self._t["end"])
        self._t = {"start": now}

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        self._t["backward0"] = time.perf_counter()

    def on_after_backward(self, trainer, pl_module) -> None:
        self._t["backward1"] = time.perf_counter()

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self._t["step0"] = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        t, now = self._t, time.perf_counter()
        if batch_idx > self.skip:
            spans = (
                ("pre", "start", "forward0"),
                ("forward", "forward0", "forward1"),
                ("zero_grad", "forward1", "backward0"),
                ("backward", "backward0", "backward1"),
                ("before_step", "backward1", "step0"),
            )
            for name, a, b in spans:
                self.c[name].append(t[b] - t[a])
            self.c["step"].append(now - t["step0"])
        self._plain_step(len(batch[1]), record=batch_idx > self.skip)
        self._t["end"] = time.perf_counter()

    def _plain_step(self, size: int, record: bool) -> None:
        start = (self._taken * size) % (len(self._images) - size)
        idx = self._order[start : start + size]
        self._taken += 1
        marks = [time.perf_counter()]
        with torch.enable_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self._bf16):
            x, y = plain_batch(self._images, self._labels, idx)
            loss = F.cross_entropy(self._net(x), y)
        marks.append(time.perf_counter())
        self._opt.zero_grad(set_to_none=True)
        marks.append(time.perf_counter())
        loss.backward()
        marks.append(time.perf_counter())
        self._opt.step()
        marks.append(time.perf_counter())
        self._sched.step()
        marks.append(time.perf_counter())
        if record:
            for name, a, b in zip(B_PHASES, marks[:-1], marks[1:], strict=True):
                self.b[name].append(b - a)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        report = {"steps": len(self.c["step"]), "precision": str(trainer.precision)}
        for key, phases in (("C", self.c), ("B", self.b)):
            medians = {name: 1000 * statistics.median(v) for name, v in phases.items() if v}
            # Medians are steady from run to run; means count the slow steps too (what an epoch's time adds up).
            mean_ms = sum(1000 * statistics.fmean(v) for v in phases.values() if v)
            report[key] = {"phases_ms": medians, "step_ms": sum(medians.values()), "step_mean_ms": mean_ms}
        if report["steps"]:
            report["C_minus_B_ms"] = report["C"]["step_ms"] - report["B"]["step_ms"]
            report["C_minus_B_mean_ms"] = report["C"]["step_mean_ms"] - report["B"]["step_mean_ms"]
            print(f"step phases: {json.dumps(report)}", flush=True)
            self.path.write_text(json.dumps(report, indent=2) + "\n")
