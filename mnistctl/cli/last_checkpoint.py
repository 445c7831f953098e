"""`last.ckpt` holds the final epoch: since Lightning 2.6 `save_last` alone no longer guarantees that.

    mnistctl fit && mnistctl test --ckpt_path last      # the weights of the last epoch, not of the best

Lightning 2.6.0 writes `ModelCheckpoint(save_last=True)`'s last.ckpt only at a step where it also saved a
top-k checkpoint ("a last.ckpt copy whenever a checkpoint file gets saved"). After an epoch that did not
improve val/acc, last.ckpt therefore still held an older epoch: `--ckpt_path last` evaluated, and
`fit --ckpt_path last` resumed from, the wrong weights (seen with a run whose last epoch was its worst,
tests/test_best_and_last.py). For a configured ModelCheckpoint with `save_last`, the CLI adds a second
one that keeps only last.ckpt and saves it whenever Lightning's checkpoint timing fires, as before 2.6.
"""

from __future__ import annotations

from pathlib import Path

from pytorch_lightning.callbacks import ModelCheckpoint

LAST = ModelCheckpoint.CHECKPOINT_NAME_LAST  # "last": the file is last.ckpt


class LastCheckpoint(ModelCheckpoint):
    """A ModelCheckpoint under its own name: its state in a checkpoint is stored under `LastCheckpoint{...}`,
    so neither `best` resolution (which reads `ModelCheckpoint*` states) nor the default ModelCheckpoint of
    validate/test/predict takes it for theirs."""

    def _save_none_monitor_checkpoint(self, trainer, monitor_candidates) -> None:
        # Checkpoint callbacks run in order, the configured one first: when it has just written last.ckpt
        # (it saved a top-k checkpoint at this step), writing it again would only double the I/O.
        target = Path(self.format_checkpoint_name(monitor_candidates))
        configured = trainer.checkpoint_callback
        if (
            configured is not self
            and getattr(configured, "_last_global_step_saved", None) == trainer.global_step
            and configured.last_model_path
            and Path(configured.last_model_path) == target
        ):
            self.best_model_path = str(target)
            return
        super()._save_none_monitor_checkpoint(trainer, monitor_candidates)


def last_every_epoch(callbacks) -> list[ModelCheckpoint]:
    """[a ModelCheckpoint that rewrites `<dirpath>/last.ckpt` every epoch] for the first configured
    ModelCheckpoint with save_last (the same folder), or [] when none has it.

    `callbacks` is the parsed `trainer.callbacks`: Namespaces with class_path and init_args.
    """
    for callback in callbacks or []:
        args = getattr(callback, "init_args", None) or {}
        name = str(getattr(callback, "class_path", "")).rsplit(".", 1)[-1]
        if name != "ModelCheckpoint" or not args.get("save_last"):
            continue
        # monitor=None with save_top_k=1 saves at every checkpoint trigger, replacing its previous file; no
        # version counter, or it would write last-v1.ckpt beside the copy the configured callback just saved.
        return [
            LastCheckpoint(
                dirpath=args.get("dirpath"),
                filename=LAST,
                monitor=None,
                save_top_k=1,
                enable_version_counter=False,
                save_on_train_epoch_end=args.get("save_on_train_epoch_end"),
            )
        ]
    return []
