"""BenchProbe: a passive Lightning callback that times training and prediction and writes them as JSON.

    mnistctl fit --trainer.callbacks+=benchmarks.probe.BenchProbe --trainer.callbacks.path probe.json

`python -m benchmarks` adds it to the runs it measures, so every figure comes from the same clock.
Training time is the sum over epochs of [epoch start, end of its last training batch] minus any
validation inside that window: it includes fetching batches (and starting DataLoader workers), and
leaves out start-up, sanity checks, end-of-epoch validation, checkpointing and testing. Under DDP,
rank 0 writes the file and counts every rank's samples (ranks run the same number of batches).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from pytorch_lightning import Callback, LightningModule, Trainer


def _batch_len(batch) -> int:
    first = batch[0] if isinstance(batch, (tuple, list)) else batch
    return len(first)


class BenchProbe(Callback):
    """Records training and prediction seconds and samples, and the test accuracy; rewrites `path` as it goes.

    Args:
        path: JSON file to write.
        metric: name of the logged test-accuracy metric.
    """

    def __init__(self, path: str = "bench_probe.json", metric: str = "test/acc") -> None:
        self.path, self.metric = Path(path), metric
        self.result: dict[str, float | int | None] = {
            "train_s": 0.0,
            "train_cpu_s": 0.0,
            "train_samples": 0,
            "test_acc": None,
            "predict_s": None,
            "predict_samples": 0,
            "stamps": {},  # time.time() of setup, train_start, train_end, test_end: the parent makes offsets
        }
        self._epoch_start = self._last_end = 0.0
        self._epoch_cpu = self._last_cpu = 0.0
        self._val_s = self._val_s_at_last_end = 0.0
        self._val_start: float | None = None

    def _write(self, trainer: Trainer) -> None:
        if not trainer.is_global_zero:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.result))

    def _stamp(self, name: str) -> None:
        self.result["stamps"].setdefault(name, time.time())

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._stamp("setup")
        self.result["device"] = trainer.strategy.root_device.type  # "cpu" or "cuda": where the row ran

    # -- training ------------------------------------------------------------------------------
    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._stamp("train_start")
        self._epoch_start = self._last_end = time.perf_counter()
        self._epoch_cpu = self._last_cpu = time.process_time()
        self._val_s = self._val_s_at_last_end = 0.0

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx) -> None:
        self._last_end, self._last_cpu = time.perf_counter(), time.process_time()
        self._val_s_at_last_end = self._val_s
        self.result["train_samples"] += _batch_len(batch) * trainer.world_size  # every rank runs as many batches

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._val_start = time.perf_counter()

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._val_start is not None:
            self._val_s += time.perf_counter() - self._val_start
            self._val_start = None

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.result["stamps"]["train_end"] = time.time()
        self._write(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.result["train_s"] += self._last_end - self._epoch_start - self._val_s_at_last_end
        # CPU time of this process only (not of DataLoader workers); validation inside the window included.
        self.result["train_cpu_s"] += self._last_cpu - self._epoch_cpu
        self._write(trainer)

    # -- evaluation ----------------------------------------------------------------------------
    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        value = trainer.callback_metrics.get(self.metric)
        self.result["test_acc"] = None if value is None else float(value)
        self.result["stamps"]["test_end"] = time.time()
        self._write(trainer)

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._predict_start = time.perf_counter()

    def on_predict_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx, *_):
        self.result["predict_samples"] += _batch_len(batch) * trainer.world_size

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # After on_predict_epoch_end, so the prediction writers' CSV is included.
        self.result["predict_s"] = time.perf_counter() - self._predict_start
        self._write(trainer)
