"""Callbacks that let tests watch a real fit from outside: the data order, a slower step, an interruption.

mnistctl fit --trainer.callbacks+=probes.RecordEpochIds --trainer.callbacks.folder ids/    # PYTHONPATH=tests
"""

from __future__ import annotations

import gc
import json
import time
from pathlib import Path

from pytorch_lightning import Callback
from pytorch_lightning.callbacks import Checkpoint


class RecordEpochIds(Callback):
    """Writes `ids_epoch<E>.txt` in `folder`: the sample ids of epoch E's training batches, in order.

    Args:
        folder: where the files go.
    """

    def __init__(self, folder: str = ".") -> None:
        self.folder = Path(folder)
        self.ids: list[int] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.ids = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self.ids += batch[2].tolist()  # (images, labels, ids)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"ids_epoch{trainer.current_epoch}.txt").write_text("".join(f"{i}\n" for i in self.ids))


class Slow(Callback):
    """Sleeps after every training batch, so that epochs take measurable, even time (e.g. for an ETA).

    Args:
        seconds: the pause per batch.
    """

    def __init__(self, seconds: float = 0.25) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        time.sleep(self.seconds)


class InterruptAt(Callback):
    """Presses Ctrl-C (raises KeyboardInterrupt) at the first training batch of `epoch`.

    Args:
        epoch: the epoch that never runs.
    """

    def __init__(self, epoch: int = 1) -> None:
        self.epoch = epoch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.current_epoch == self.epoch:
            raise KeyboardInterrupt


def read_ids(folder: Path, epoch: int) -> list[int]:
    return [int(line) for line in (folder / f"ids_epoch{epoch}.txt").read_text().split()]


class HookCensus(Callback):
    """Writes `path` (JSON) at the end of fit: per callback class, its per-batch hooks Lightning would call
    (those not hidden as idle), and how many training batches this callback's own on_train_batch_end saw.

    Args:
        path: the JSON file to write.
    """

    def __init__(self, path: str = "hooks.json") -> None:
        self.path, self.batch_ends = Path(path), 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.batch_ends += 1

    def on_fit_end(self, trainer, pl_module) -> None:
        import json

        from mnistctl.cli.idle_hooks import PER_BATCH_HOOKS

        live = {type(c).__name__: [h for h in PER_BATCH_HOOKS if callable(getattr(c, h))] for c in trainer.callbacks}
        self.path.write_text(json.dumps({"live": live, "batch_ends": self.batch_ends}))


class StepLosses(Callback):
    """Writes `path` (JSON) at the end of fit: per epoch, each training step's loss and batch size, as the
    step's output handed them to callbacks (the loss divided by accumulate_grad_batches, 1 here).

    Args:
        path: the JSON file to write.
    """

    def __init__(self, path: str = "step_losses.json") -> None:
        self.path, self.epochs = Path(path), {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.epochs.setdefault(trainer.current_epoch, []).append((float(outputs["loss"]), len(batch[1])))

    def on_fit_end(self, trainer, pl_module) -> None:
        import json

        self.path.write_text(json.dumps(self.epochs))


class KillAfterEpochCheckpoint(Checkpoint):
    """SIGKILLs its own process in the first hook after the checkpoints that end the first epoch are written,
    before Lightning logs the epoch's train/* (as a kill -9 landing in that window would). A Checkpoint, so
    Lightning runs its hooks after the ModelCheckpoint of the config, which saves at the end of the training
    epoch or, when validation does not run exactly at epoch ends, at the end of validation.
    """

    def on_validation_end(self, trainer, pl_module) -> None:
        self._kill_once_saved(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._kill_once_saved(trainer)

    def _kill_once_saved(self, trainer) -> None:
        if trainer.checkpoint_callback.last_model_path and trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGKILL)


class GCState(Callback):
    """Writes the garbage collector's state when training starts to `path` (JSON: enabled, frozen objects).

    Args:
        path: the JSON file.
    """

    def __init__(self, path: str = "gc_state.json") -> None:
        self.path = Path(path)

    def on_train_start(self, trainer, pl_module) -> None:
        self.path.write_text(json.dumps({"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}))
