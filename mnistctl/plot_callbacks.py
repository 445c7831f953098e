"""Callbacks that draw a run's pictures: learning curves after fit, confusion matrix and mistakes after test.

    mnistctl fit --config configs/base.yaml   # -> <run>/learning_curves.png, <run>/test/*.png

Both are listed under `trainer.callbacks` in configs/base.yaml; drop them there to turn them off.
Only global rank zero draws; under DDP the test results of all ranks are gathered first.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.loggers import CSVLogger

from mnistctl.console import shown
from mnistctl.layout import evaluation_dir, run_dir_of

log = logging.getLogger(__name__)


def _csv_logger(trainer: Trainer) -> CSVLogger | None:
    return next((lg for lg in trainer.loggers if isinstance(lg, CSVLogger)), None)


class LearningCurves(Callback):
    """After fit (and after an interrupted fit): train/val loss and accuracy per epoch as a PNG in the run folder.

    Args:
        filename: name of the PNG, written beside the run's metrics.csv (needs the CSVLogger).
    """

    def __init__(self, filename: str = "learning_curves.png") -> None:
        self.filename = filename
        self.written: list[Path] = []
        self._trained = False

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._trained = True

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._draw(trainer)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        # Only a fit that trained: one refused before (e.g. a resume that does not fit) changes no file.
        if trainer.state.fn == "fit" and self._trained:
            try:  # best effort: the curves so far; never hide the exception being handled
                self._draw(trainer)
            except Exception as err:
                log.warning("could not draw the learning curves: %s", err)

    def _draw(self, trainer: Trainer) -> None:
        logger = _csv_logger(trainer)
        if not trainer.is_global_zero or logger is None:
            return
        logger.save()  # flush the epoch metrics still buffered
        metrics = Path(logger.experiment.metrics_file_path)
        if not metrics.is_file():
            return
        from mnistctl.plots import learning_curves_png

        path = learning_curves_png(metrics, Path(logger.log_dir) / self.filename, title=_run_title(logger.log_dir))
        self.written = [path]
        log.info("wrote %s", shown(path))


class TestPlots(Callback):
    """After test: the confusion matrix and a grid of the most confidently misclassified digits, as PNGs.

    Args:
        num_misclassified: how many misclassified digits to show, most confident first (0: no grid).
        dirpath: folder for `confusion_matrix.png` and `misclassified.png`; None: `test/` inside the
            folder of the run that made the tested checkpoint (beside `mnistctl test`'s metrics.csv).
    """

    def __init__(self, num_misclassified: int = 25, dirpath: str | None = None) -> None:
        self.num_misclassified = num_misclassified
        self.dirpath = dirpath
        self.written: list[Path] = []
        self._reset()

    def _reset(self) -> None:
        self.results: list[tuple[torch.Tensor, ...]] = []  # per batch: (ids, labels, preds, confidence)
        self.num_classes = 10
        # The running top-k mistakes, with pixels: (images (k, 28, 28), labels, preds, confidence, ids).
        self.worst: tuple[torch.Tensor, ...] | None = None

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._reset()

    def on_test_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not isinstance(outputs, Mapping) or "logits" not in outputs:
            return
        x, y, ids = batch  # x: (B, 1, 28, 28) normalised
        logits = outputs["logits"].detach().float()
        self.num_classes = logits.shape[-1]
        confidence, preds = logits.softmax(-1).max(-1)  # (B, 10) -> (B,), (B,)
        self.results.append((ids.cpu(), y.cpu(), preds.cpu(), confidence.cpu()))
        wrong = preds != y
        if self.num_misclassified and wrong.any():
            batch_worst = (x[wrong, 0].detach().float().cpu(), y[wrong].cpu(), preds[wrong].cpu())
            batch_worst += (confidence[wrong].cpu(), ids[wrong].cpu())
            self.worst = _top_k(self.worst, batch_worst, self.num_misclassified)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.results:
            return
        ids, labels, preds, confidence = (torch.cat(column) for column in zip(*self.results, strict=True))
        worst = self.worst if self.worst is not None else _empty_worst()
        if trainer.world_size > 1:
            # Every rank holds a shard (padded by wrap-around): gather all, then keep one row per test id.
            ids, labels, preds, confidence = (_gather(pl_module, t) for t in (ids, labels, preds, confidence))
            if self.num_misclassified:
                worst = tuple(_gather(pl_module, t) for t in _pad_worst(worst, self.num_misclassified))
                worst = _top_k(None, tuple(t[worst[4] >= 0] for t in worst), self.num_misclassified)
        if not trainer.is_global_zero:
            return
        keep = _first_of_each(ids)
        labels, preds = labels[keep], preds[keep]
        folder = Path(self.dirpath) if self.dirpath else _test_folder(trainer)
        from mnistctl.plots import confusion_matrix, confusion_matrix_png, misclassified_png

        matrix = confusion_matrix(labels, preds, self.num_classes)
        self.written = [confusion_matrix_png(matrix, folder / "confusion_matrix.png")]
        if self.num_misclassified:
            images, y, p, c, i = worst
            self.written.append(misclassified_png(images, y, p, c, i, folder / "misclassified.png"))
        log.info("wrote %s", ", ".join(shown(p) for p in self.written))


def _top_k(current: tuple | None, new: tuple, k: int) -> tuple:
    """Merge two (images, labels, preds, confidence, ids) sets, keep the k most confident, distinct ids."""
    merged = new if current is None else tuple(torch.cat(pair) for pair in zip(current, new, strict=True))
    order = torch.argsort(merged[3], descending=True, stable=True)
    merged = tuple(t[order] for t in merged)
    keep = _first_of_each(merged[4])
    keep = keep[torch.argsort(keep)][:k]  # first occurrence of each id, still in confidence order
    return tuple(t[keep] for t in merged)


def _first_of_each(ids: torch.Tensor) -> torch.Tensor:
    """Indices of the first occurrence of each distinct id, in any order."""
    order = torch.argsort(ids, stable=True)
    sorted_ids = ids[order]
    first = torch.ones_like(sorted_ids, dtype=torch.bool)
    first[1:] = sorted_ids[1:] != sorted_ids[:-1]
    return order[first]


def _empty_worst() -> tuple[torch.Tensor, ...]:
    empty = torch.zeros(0, dtype=torch.long)
    return torch.zeros(0, 28, 28), empty, empty, torch.zeros(0), empty


def _pad_worst(worst: tuple[torch.Tensor, ...], k: int) -> tuple[torch.Tensor, ...]:
    """Pad to exactly k rows (id -1) so every rank contributes tensors of one shape to all_gather."""
    missing = k - len(worst[4])
    images, labels, preds, confidence, ids = worst
    return (
        torch.cat([images, images.new_zeros(missing, *images.shape[1:])]),
        torch.cat([labels, labels.new_zeros(missing)]),
        torch.cat([preds, preds.new_zeros(missing)]),
        torch.cat([confidence, confidence.new_full((missing,), -1.0)]),
        torch.cat([ids, ids.new_full((missing,), -1)]),
    )


def _gather(pl_module: LightningModule, t: torch.Tensor) -> torch.Tensor:
    gathered = pl_module.all_gather(t.to(pl_module.device))  # (world_size, n, ...)
    return gathered.reshape(-1, *t.shape[1:]).cpu()


def _test_folder(trainer: Trainer) -> Path:
    if trainer.ckpt_path:
        return evaluation_dir(run_dir_of(Path(trainer.ckpt_path)), "test")
    logger = _csv_logger(trainer)
    return evaluation_dir(Path(logger.log_dir if logger else trainer.default_root_dir), "test")


def _run_title(log_dir: str) -> str:
    """`mnist/version_3` for runs/mnist/version_3."""
    path = Path(log_dir)
    return f"{path.parent.name}/{path.name}"
