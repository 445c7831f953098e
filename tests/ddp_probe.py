"""A callback that records, per rank, the sample ids each training batch held (imported by DDP children).

PYTHONPATH=tests mnistctl fit --trainer.callbacks+ ddp_probe.RecordTrainIds ...
"""

from __future__ import annotations

from pathlib import Path

import torch
from pytorch_lightning import Callback


class RecordTrainIds(Callback):
    """Writes `train_ids_rank<R>.txt` (one id per line, in training order) and `threads_rank<R>.txt`.

    Args:
        folder: where the files go.
    """

    def __init__(self, folder: str = ".") -> None:
        self.folder = Path(folder)
        self.ids: list[int] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self.ids += batch[2].tolist()

    def on_train_end(self, trainer, pl_module) -> None:
        rank = trainer.global_rank
        (self.folder / f"train_ids_rank{rank}.txt").write_text("".join(f"{i}\n" for i in self.ids))
        (self.folder / f"threads_rank{rank}.txt").write_text(f"{torch.get_num_threads()} {trainer.world_size}\n")
