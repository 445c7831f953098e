"""What a finished sweep job achieved, read from its fit's run.json (the run's one record; no torch).

    mnistctl sweep --summary sweeps/<time>     # a table built from what run_metrics reads

The fit writes `<job>/runs/<name>/version_N/run.json`: `history` (the metrics of every epoch),
`metrics` (the test of the best checkpoint, among others) and `checkpoints` (the best one, as
ModelCheckpoint chose it). Nothing here parses log lines or checkpoint file names.
"""

from __future__ import annotations

import os
from pathlib import Path

from mnistctl.layout import job_run_dir, read_record

EMPTY = {"val_acc": None, "val_loss": None, "test_acc": None, "test_loss": None, "epochs": 0, "best_ckpt": None}


def run_metrics(job_dir: Path, relative_to: Path) -> dict:
    """Best val/acc (and val/loss at that epoch), test/acc and test/loss, epochs run, the val/acc curve,
    and the best checkpoint (a path relative to `relative_to`)."""
    metrics = {**EMPTY, "val_acc_curve": []}
    folder = job_run_dir(job_dir)
    record = read_record(folder) if folder is not None else None
    if record is None:
        return metrics
    metrics["run_dir"] = os.path.relpath(folder, job_dir)
    curve = {
        int(entry["epoch"]): (entry["val/acc"], entry.get("val/loss"))
        for entry in record.get("history") or []
        if entry.get("val/acc") is not None
    }
    if curve:
        best_epoch = max(curve, key=lambda e: (curve[e][0], -e))  # first epoch with the best accuracy
        metrics["val_acc"], metrics["val_loss"] = curve[best_epoch]
        metrics["val_acc_curve"] = [[epoch, curve[epoch][0]] for epoch in sorted(curve)]
    metrics["epochs"] = record.get("epochs_completed") or 0
    final = record.get("metrics") or {}
    metrics["test_acc"], metrics["test_loss"] = final.get("test/acc"), final.get("test/loss")
    best = (record.get("checkpoints") or {}).get("best")
    if best:
        path = Path(best) if Path(best).is_absolute() else folder / best
        metrics["best_ckpt"] = os.path.relpath(path, relative_to) if path.is_file() else None
    return metrics
