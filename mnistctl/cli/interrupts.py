"""Ctrl-C and SIGTERM stop `fit` cleanly: the progress so far is saved as `checkpoints/interrupted.ckpt`.

    kill -TERM <pid of mnistctl fit>     # as SLURM does before preemption

Lightning turns SIGINT into KeyboardInterrupt and SIGTERM into SIGTERMException after the current
batch, then calls `on_exception`. `last.ckpt` keeps the last completed epoch, which is what
`mnistctl fit --ckpt_path last` resumes from exactly; interrupted.ckpt holds the mid-epoch weights,
and only once training has started (before that the weights may not even be restored yet).
Lightning's fit and test loops stop on SIGTERM but its predict loop does not: here it does too, so
`mnistctl predict` exits 143 like `test`, without writing a CSV.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.utilities.exceptions import SIGTERMException

from mnistctl.layout import INTERRUPTED, LAST

log = logging.getLogger(__name__)


class InterruptCheckpoint(Callback):
    def __init__(self) -> None:
        self.training = False

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.training = True

    def on_predict_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args, **kwargs) -> None:
        if trainer.received_sigterm:
            raise SIGTERMException

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, KeyboardInterrupt | SIGTERMException) or trainer.state.fn != "fit":
            return
        if not self.training:
            return
        callback = trainer.checkpoint_callback
        folder = Path(callback.dirpath) if callback is not None and callback.dirpath else Path(trainer.log_dir or ".")
        path = folder / INTERRUPTED
        trainer.save_checkpoint(path)
        if (folder / LAST).is_file():
            log.warning(
                "interrupted: saved %s; continue from the last completed epoch with 'mnistctl fit --ckpt_path last'",
                path,
            )
        else:  # `--ckpt_path last` would find no last.ckpt in this run, and must not take an older run's
            log.warning("interrupted before its first epoch ended: saved %s; no epoch to resume from", path)
