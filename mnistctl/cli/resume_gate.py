"""A resume appends to its run, and a refused resume changes nothing in it: writes wait for the restore.

    mnistctl fit --ckpt_path last      # continues runs/mnist/version_N; earlier epochs stay in its records

`fit --ckpt_path` into the checkpoint's own run folder holds back every write into that folder until
Lightning has restored the checkpoint (weights, optimizer, schedule, loops): a refusal found on the way
(a one-cycle schedule of another length, weights that do not fit, Ctrl-C) leaves the folder byte for
byte as it was. Then `ResumeGate` opens, at the first epoch or, for a run with nothing left to train,
at the end of fit: metrics.csv keeps the rows logged before the step the resume starts at (Lightning's
CSVLogger would delete the file) and gets back an epoch's train row that a kill kept from it
(`epoch_record.py`), the hyper-parameters are logged, config.yaml is rewritten to what now runs, and
run.json records the resume on top of its history.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from lightning_fabric.loggers.logger import _DummyExperiment
from lightning_fabric.utilities.cloud_io import get_filesystem
from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.cli import SaveConfigCallback
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.utilities import _log_hyperparams

from mnistctl.atomic import atomic_write
from mnistctl.cli.epoch_record import EpochRecord


class HeldSaveConfig(SaveConfigCallback):
    """LightningCLI's config.yaml writer; while `held`, the write waits for `release`."""

    held = False
    _pending: tuple | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.held:
            self._pending = (trainer, pl_module, stage)
            return
        super().setup(trainer, pl_module, stage)

    def release(self) -> None:
        self.held = False
        if self._pending is not None:
            super().setup(*self._pending)


class AppendingMetricsWriter(ExperimentWriter):
    """CSVLogger's writer for a resumed run: keeps metrics.csv (Lightning's deletes it) and appends to it.

    Nothing touches the file until `release`, which drops the rows of the steps the resume trains again (at or
    after the global step it starts at).
    """

    def __init__(self, log_dir: str) -> None:  # no super().__init__: it would delete metrics.csv
        self.hparams: dict = {}
        self.metrics: list[dict] = []
        self.metrics_keys: list[str] = []
        self._fs = get_filesystem(log_dir)
        self.log_dir = log_dir
        self.metrics_file_path = os.path.join(log_dir, self.NAME_METRICS_FILE)
        self.held = True

    def save(self) -> None:
        if not self.held:  # held: what was logged stays buffered in self.metrics
            super().save()

    def release(self, start_step: int, rewrite: bool = True, recovered: dict | None = None) -> None:
        """Drop the rows the resume logs again (on global rank zero: `rewrite`), add the train row of the
        `recovered` epoch record if a kill lost it, and start appending."""
        path = Path(self.metrics_file_path)
        if rewrite and (path.is_file() or recovered is not None):
            rows, keys = [], []
            if path.is_file():
                with open(path, newline="") as f:
                    reader = csv.DictReader(f)
                    rows, keys = list(reader), list(reader.fieldnames or [])
            kept = [row for row in rows if _before(row, start_step)]
            missing = _missing_train_row(kept, recovered)
            if missing:
                kept.append(missing)
                keys += [k for k in missing if k not in keys]
            if kept != rows or keys != sorted(keys):  # appended rows follow the sorted header Lightning writes
                with atomic_write(path, newline="") as f:
                    writer = csv.DictWriter(f, fieldnames=sorted(keys))
                    writer.writeheader()
                    writer.writerows(kept)
            self.metrics_keys = sorted(keys)
        self.held = False


def _missing_train_row(rows: list[dict[str, str]], recovered: dict | None) -> dict | None:
    """The train row of the epoch the checkpoint ended (`recovered`, epoch_record.py), as Lightning writes it,
    unless `rows` have it. A resume from it trains no batch of that epoch, so nothing else would write it."""
    if recovered is None:
        return None
    train = {k: v for k, v in recovered.items() if k.startswith("train/")}
    for row in rows:
        if row.get("epoch") and _number(row["epoch"]) == recovered["epoch"] and any(row.get(k) for k in train):
            return None
    row = {"epoch": recovered["epoch"], "step": recovered.get("step", ""), **train}
    return {k: str(v) for k, v in row.items()}


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _before(row: dict[str, str], start_step: int) -> bool:
    """Whether a row was logged before the step the resume starts at: the resume logs the rest again. By step,
    not epoch: a resume inside an epoch (or at its end, from a checkpoint saved at validation end) does not
    run that epoch's earlier steps, nor their validations, again."""
    step = _number(row.get("step") or "0")
    return True if step is None else step < start_step  # not a row Lightning wrote: leave it


def hold_loggers(trainer: Trainer, run_dir: Path) -> tuple[list[AppendingMetricsWriter], list]:
    """Before anything logs: each CSVLogger writing into run_dir gets a held, appending writer; every other
    logger a stand-in experiment (Lightning creates them before the restore: TensorBoard's makes a file)."""
    writers, others = [], []
    for logger in trainer.loggers:
        if isinstance(logger, CSVLogger) and Path(logger.log_dir).resolve() == run_dir.resolve():
            logger._experiment = AppendingMetricsWriter(logger.log_dir)  # CSVLogger builds it lazily otherwise
            writers.append(logger._experiment)
        elif hasattr(logger, "_experiment") and logger._experiment is None:
            logger._experiment = _DummyExperiment()  # accepts and drops every call; replaced when the gate opens
            others.append(logger)
    return writers, others


class ResumeGate(Callback):
    """Opens once the checkpoint is restored: then the held writers write (see the module docstring)."""

    def __init__(self, trainer: Trainer, run_dir: Path, config: HeldSaveConfig | None, manifest) -> None:
        self.writers, self.loggers = hold_loggers(trainer, run_dir)
        self.config, self.manifest = config, manifest
        self.opened = False

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.open(trainer)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.open(trainer)  # a run with no epoch left to train: the restore is done all the same

    def open(self, trainer: Trainer) -> None:
        if self.opened:
            return
        self.opened = True
        # The record of the epoch the checkpoint ended, for a metrics.csv or run.json a kill left without it.
        recovered = next((c.restored for c in trainer.callbacks if isinstance(c, EpochRecord)), None)
        for writer in self.writers:
            writer.release(trainer.global_step, rewrite=trainer.is_global_zero, recovered=recovered)
        for logger in self.loggers:
            logger._experiment = None  # the real one is created at its first use
        _log_hyperparams(trainer)  # held back too: Lightning logs them before it restores the checkpoint
        if self.config is not None:
            self.config.release()
        self.manifest.release(trainer, recovered)


def hold_run_writes(trainer: Trainer, run_dir: Path, manifest) -> ResumeGate:
    """Hold every write into an existing run folder; return the gate, first among the trainer's callbacks."""
    trainer.enable_autolog_hparams = False
    config = next((c for c in trainer.callbacks if isinstance(c, HeldSaveConfig)), None)
    if config is not None:
        config.held = True
    manifest.held = True
    gate = ResumeGate(trainer, run_dir, config, manifest)
    trainer.callbacks.insert(0, gate)
    return gate
