"""Progress: a bar with ETA on a terminal; plain log lines where output goes to a file or a CI log.

    mnistctl fit 2>&1 | tee fit.log      # not a terminal: one line per epoch, with metrics and ETA

The CLI adds `Progress` unless `--trainer.enable_progress_bar false` (or `--quiet`), or the config lists
a progress bar of its own.
"""

from __future__ import annotations

import importlib
import logging
import sys
import time
from typing import Literal

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.callbacks import ProgressBar, RichProgressBar

from mnistctl.console import format_duration

log = logging.getLogger(__name__)
REDRAW_EVERY_S = 0.5


def is_terminal() -> bool:
    """The bar is drawn on stdout; anything else there (a pipe, a file, CI) gets lines instead."""
    return sys.stdout.isatty() and sys.stderr.isatty()


class Progress(RichProgressBar):
    """A progress bar with elapsed time and ETA on a terminal, plain lines otherwise.

    Args:
        mode: `auto`: the bar when stdout and stderr are terminals, lines otherwise; `bar`; `lines`
            (one line per epoch with its metrics and the ETA of the fit, one per evaluation).
    """

    def __init__(self, mode: Literal["auto", "bar", "lines"] = "auto") -> None:
        # Lightning's rich bar redraws from a thread that wakes refresh_rate times a second (100 by default)
        # to look for news; the bar changes twice a second here, so the thread need not wake more often.
        super().__init__(refresh_rate=round(1 / REDRAW_EVERY_S))
        self.lines = mode == "lines" or (mode == "auto" and not is_terminal())
        if self.lines:
            self.disable()  # the rich bar stays silent; the hooks below log lines instead
        self._start: dict[str, float] = {}
        self._drawn = 0.0  # when the training bar was last updated
        self._loss: float | None = None  # the training loss of the batch the bar last showed

    def _log_line(self, trainer: Trainer) -> bool:
        return self.lines and trainer.is_global_zero

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        now = time.monotonic()
        self._start.setdefault("fit", now)
        self._start["epoch"] = now
        self._start.setdefault("first_epoch", trainer.current_epoch)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        # Update the bar twice a second, not every batch: each update reads the logged metrics (a GPU sync)
        # and asks for a redraw, which costs milliseconds of Python.
        now = time.monotonic()
        if now - self._drawn < REDRAW_EVERY_S and batch_idx + 1 < self.total_train_batches:
            return
        self._drawn = now
        if not self.lines:
            self._loss = running_loss(outputs, trainer.accumulate_grad_batches)
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def get_metrics(self, trainer: Trainer, pl_module: LightningModule) -> dict:
        # The bar's running loss comes from the step's output when the bar is redrawn, not from a self.log
        # in every training_step: a metric logged on_step costs Lightning tens of us in each step after.
        metrics = super().get_metrics(trainer, pl_module)
        return {"loss": self._loss, **metrics} if self._loss is not None and trainer.training else metrics

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if not self._log_line(trainer):
            return
        now = time.monotonic()
        epoch = trainer.current_epoch + 1
        line = f"epoch {epoch}" + (f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else "")
        line += f"  {format_metrics(trainer.callback_metrics)}  {now - self._start['epoch']:.1f}s"
        done = epoch - self._start["first_epoch"]
        if trainer.max_epochs and trainer.max_epochs > epoch and done > 0:
            line += f", ETA {format_duration((now - self._start['fit']) / done * (trainer.max_epochs - epoch))}"
        log.info(line)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_validation_start(trainer, pl_module)
        self._start["validate"] = time.monotonic()

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_test_start(trainer, pl_module)
        self._start["test"] = time.monotonic()

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_predict_start(trainer, pl_module)
        self._start["predict"] = time.monotonic()

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if trainer.state.fn == "validate":  # during fit, validation shows up in the epoch line
            self._evaluation_line(trainer, "validate", sum(trainer.num_val_batches))

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_test_end(trainer, pl_module)
        self._evaluation_line(trainer, "test", sum(trainer.num_test_batches))

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_predict_end(trainer, pl_module)
        self._evaluation_line(trainer, "predict", sum(trainer.num_predict_batches))

    def _evaluation_line(self, trainer: Trainer, stage: str, batches: float) -> None:
        if not self._log_line(trainer):
            return
        seconds = time.monotonic() - self._start.get(stage, time.monotonic())
        metrics = format_metrics(trainer.callback_metrics) if stage != "predict" else ""
        log.info(f"{stage}: {int(batches)} batches in {seconds:.1f}s  {metrics}".rstrip())


def running_loss(outputs, accumulate_grad_batches: int = 1) -> float | None:
    """A training step's loss from its output (a tensor or a dict with "loss"), as the step computed it:
    Lightning hands hooks the loss divided by the batches it accumulates gradients over."""
    loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
    return float(loss) * accumulate_grad_batches if isinstance(loss, torch.Tensor) else None


def format_metrics(metrics: dict) -> str:
    """`train/loss 0.2130  train/acc 0.9345 ...`: the stage-named metrics, train before val before test."""
    order = {"train": 0, "val": 1, "test": 2}
    names = sorted((k for k in metrics if "/" in k), key=lambda k: (order.get(k.split("/")[0], 3), k))
    return "  ".join(f"{name} {float(metrics[name]):.4f}" for name in names)


def default_progress(trainer_config) -> list[Callback]:
    """[Progress()] unless progress bars are turned off or the config already lists a progress bar."""
    if trainer_config.get("enable_progress_bar") is False:
        return []
    for callback in trainer_config.get("callbacks") or []:
        if isinstance(callback, ProgressBar) or _is_progress_bar(getattr(callback, "class_path", None)):
            return []
    return [Progress()]


def _is_progress_bar(class_path: str | None) -> bool:
    if not class_path or "." not in class_path:
        return False
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return False
    return isinstance(cls, type) and issubclass(cls, ProgressBar)
