"""PredictionsCSV: the callback that writes `mnistctl predict` results as one CSV.

    mnistctl predict --ckpt_path best --predictions.path preds.csv

Columns: id,pred,prob,p0,...,p9. `id` is the MNIST test-set index, or the file path for images given
with --data.predict_dir. The file is written under a temporary name and renamed when complete, never over
a user's file (predictions_path.py).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import torch
from pytorch_lightning import LightningModule, Trainer
from pytorch_lightning.callbacks import BasePredictionWriter

from mnistctl.atomic import atomic_write
from mnistctl.cli.predictions_path import appeared, may_replace
from mnistctl.layout import PREDICTION_COLUMNS, skipped_list

log = logging.getLogger(__name__)


class PredictionsCSV(BasePredictionWriter):
    """Collects predict_step outputs and writes them to one CSV at the end of `predict`.

    Args:
        path: CSV file to write; None writes `predictions.csv` in the folder of the run that made
            the checkpoint.
        overwrite: replace an existing file at `path` (and its skip list) that does not look like a
            predictions CSV an earlier predict wrote (such a one is replaced without it).
    """

    def __init__(self, path: str | None = None, overwrite: bool = False) -> None:
        super().__init__(write_interval="epoch")
        self.path, self.overwrite = path, overwrite
        self.written: Path | None = None
        self.skipped_file: Path | None = None  # <csv stem>.skipped.txt beside the CSV, when images were unreadable

    def write_on_epoch_end(self, trainer: Trainer, pl_module: LightningModule, predictions, batch_indices) -> None:
        ids = torch.cat([p["ids"] for p in predictions])
        probs = torch.cat([p["probs"] for p in predictions]).float()
        if trainer.world_size > 1:
            # Ranks hold interleaved shards (with wrap-around padding): gather, then keep one row per id.
            ids = pl_module.all_gather(ids).reshape(-1).cpu()
            probs = pl_module.all_gather(probs).reshape(-1, probs.shape[-1]).cpu()
        if not trainer.is_global_zero:
            return
        order = torch.argsort(ids, stable=True)
        ids, probs = ids[order], probs[order]
        keep = torch.ones_like(ids, dtype=torch.bool)
        keep[1:] = ids[1:] != ids[:-1]
        ids, probs = ids[keep], probs[keep]
        names = getattr(trainer.datamodule, "predict_names", None)
        # Checked again: predicting takes a while. A file that appears after this is not replaced either.
        replace = may_replace(self.path, self.overwrite, skip_list=names is not None)
        try:
            write_csv(Path(self.path), ids, probs, names, replace=replace)
        except FileExistsError:
            raise appeared(self.path) from None
        self.written = Path(self.path)
        log.info("wrote %d predictions to %s", len(ids), self.written)
        if names is not None:
            skipped = getattr(trainer.datamodule, "predict_skipped", None) or []
            self.skipped_file = write_skipped(skipped_list(self.written), skipped, self.written)


def write_csv(
    path: Path, ids: torch.Tensor, probs: torch.Tensor, names: list[str] | None = None, replace: bool = True
) -> None:
    confidence, pred = probs.max(dim=1)
    with atomic_write(path, newline="", replace=replace) as f:
        writer = csv.writer(f)
        writer.writerow([*PREDICTION_COLUMNS, *(f"p{k}" for k in range(probs.shape[1]))])
        for i, p, c, row in zip(ids.tolist(), pred.tolist(), confidence.tolist(), probs.tolist(), strict=True):
            writer.writerow([names[i] if names else i, p, f"{c:.6f}", *(f"{v:.6f}" for v in row)])


def write_skipped(path: Path, skipped: list[tuple[str, str]], csv_path: Path) -> Path | None:
    """`file<TAB>reason` per unreadable input image; the CSV's stale list is removed when nothing was skipped."""
    if not skipped:
        path.unlink(missing_ok=True)
        return None
    with atomic_write(path) as f:
        f.writelines(f"{name}\t{reason}\n" for name, reason in skipped)
    log.warning("%d unreadable file(s) left out of %s, listed in %s", len(skipped), csv_path, path)
    return path
