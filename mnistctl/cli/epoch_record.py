"""A finished epoch's record travels in the checkpoint that ends it, so a kill before it is logged loses nothing.

    mnistctl fit ...            # killed (kill -9, power cut) just after an epoch's checkpoint
    mnistctl fit --ckpt_path last   # the resume adds that epoch's train row and history entry if missing

Lightning saves the checkpoints that end an epoch in `on_train_epoch_end`, or, when validation does not run
exactly at epoch ends, when the epoch's last validation ends (then before mnistctl's run.json records the
epoch too); it writes the epoch's train/* row to metrics.csv only after `on_train_epoch_end`. A kill in
between left a run whose resume starts at the next epoch (or at the end of this one, with no batch left to
run), so that epoch's row, or its history entry, was never written. `EpochRecord` puts the epoch's figures
into such a checkpoint: `{"epoch", "step", "train/loss", "train/acc", "val/loss", "val/acc"}`, plain numbers
(checkpoints load with `weights_only=True`); on a resume into the run's own folder the gate
(`resume_gate.py`) adds the row and entry if they are missing. The train figures are this process's (under
DDP, rank 0's share, where the logged ones average the ranks).
"""

from __future__ import annotations

from pytorch_lightning import Callback, LightningModule, Trainer

from mnistctl.cli.manifest import stage_metrics

KEY = "mnistctl_epoch_record"


class EpochRecord(Callback):
    """Writes the finished epoch's figures into the checkpoints that end it; keeps those of the one restored."""

    def __init__(self) -> None:
        self.restored: dict | None = None

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict) -> None:
        finished = getattr(pl_module, "finished_epoch", None)  # set by the model at the epoch's last batch
        if not finished or finished.get("epoch") != trainer.current_epoch:
            return  # a checkpoint inside an epoch (Ctrl-C, every N steps) ends none
        # Validation at the epoch's end has logged val/* before the checkpoint; train/* come from the model,
        # as Lightning reduces them for logging only after on_train_epoch_end.
        checkpoint[KEY] = {"step": trainer.global_step - 1, **stage_metrics(trainer, ("val",)), **finished}

    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict) -> None:
        record = checkpoint.get(KEY)
        self.restored = record if isinstance(record, dict) and isinstance(record.get("epoch"), int) else None
