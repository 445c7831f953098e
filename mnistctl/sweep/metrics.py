"""What a finished sweep job achieved, read from its run folder without importing torch.

    python -c "from mnistctl.sweep.metrics import run_metrics; print(run_metrics('sweeps/<time>/0'))"

The fit writes `<job>/runs/<name>/version_N/metrics.csv` (CSVLogger): val/acc per epoch, then
test/acc of the best checkpoint. The best checkpoint is the one the fit tested, as Lightning logs it.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

TESTED = re.compile(r"Restoring states from the checkpoint path at (\S+\.ckpt)")
VAL_ACC_IN_NAME = re.compile(r"val_acc(\d+\.\d+)")


def run_dir(job_dir: Path) -> Path | None:
    """The job's newest run folder (a resumed job keeps training in the same one)."""
    runs = [p for p in job_dir.glob("runs/*/version_*") if p.name[8:].isdigit()]
    return max(runs, key=lambda p: (int(p.name[8:]), p.stat().st_mtime)) if runs else None


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def run_metrics(job_dir: Path) -> dict:
    """Best val/acc (and val/loss at that epoch), test/acc and test/loss, epochs run, the val/acc curve."""
    metrics = {"val_acc": None, "val_loss": None, "test_acc": None, "test_loss": None, "epochs": 0}
    metrics["val_acc_curve"] = []
    folder = run_dir(job_dir)
    if folder is None or not (folder / "metrics.csv").is_file():
        return metrics
    with open(folder / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    curve: dict[int, tuple[float, float | None]] = {}
    for row in rows:
        acc, epoch = _number(row.get("val/acc")), _number(row.get("epoch"))
        if acc is not None and epoch is not None:
            curve[int(epoch)] = (acc, _number(row.get("val/loss")))
        if _number(row.get("test/acc")) is not None:
            metrics["test_acc"], metrics["test_loss"] = _number(row["test/acc"]), _number(row.get("test/loss"))
    if curve:
        best_epoch = max(curve, key=lambda e: (curve[e][0], -e))  # first epoch with the best accuracy
        metrics["val_acc"], metrics["val_loss"] = curve[best_epoch]
        metrics["epochs"] = max(curve) + 1
        metrics["val_acc_curve"] = [[epoch, curve[epoch][0]] for epoch in sorted(curve)]
    metrics["run_dir"] = os.path.relpath(folder, job_dir)
    return metrics


def best_checkpoint(job_dir: Path, fit_stderr: str, relative_to: Path) -> str | None:
    """The checkpoint the fit tested (Lightning logs it); else the best by val_acc in its file name."""
    tested = [m for m in TESTED.findall(fit_stderr) if not m.endswith("last.ckpt")]
    if tested:
        path = Path(tested[-1]) if Path(tested[-1]).is_absolute() else job_dir / tested[-1]
    else:
        folder = run_dir(job_dir)
        scored = [
            (float(m.group(1)), p)
            for p in (folder.glob("checkpoints/*.ckpt") if folder else [])
            if (m := VAL_ACC_IN_NAME.search(p.name))
        ]
        if not scored:
            return None
        path = max(scored)[1]
    return os.path.relpath(path, relative_to) if path.is_file() else None
