"""The pictures of a run, drawn headless with matplotlib's object API (no pyplot, no display needed).

    python -c "from mnistctl.plots import *; learning_curves_png('runs/mnist/version_0/metrics.csv', 'lc.png')"

Each function writes one PNG atomically (temporary file, then rename). The callbacks that call them
after fit and test are in `plot_callbacks.py`.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import torch

from mnistctl.atomic import atomic_write

DPI = 100


def _save(fig, path: str | Path) -> Path:
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=DPI)
    return Path(path)


def epoch_metrics(metrics_csv: str | Path, names: list[str]) -> dict[str, dict[int, float]]:
    """{name: {epoch: value}} from a Lightning CSVLogger file; the last value logged in an epoch wins."""
    series: dict[str, dict[int, float]] = {name: {} for name in names}
    with open(metrics_csv, newline="") as f:
        for row in csv.DictReader(f):
            if not row.get("epoch"):
                continue
            for name in names:
                if row.get(name):
                    series[name][int(float(row["epoch"]))] = float(row[name])
    return series


def learning_curves_png(metrics_csv: str | Path, path: str | Path, title: str = "") -> Path:
    """Loss and accuracy per epoch, train and validation, side by side."""
    from matplotlib.figure import Figure

    series = epoch_metrics(metrics_csv, ["train/loss", "val/loss", "train/acc", "val/acc"])
    fig = Figure(figsize=(8, 3.2), layout="constrained")
    for ax, kind in zip(fig.subplots(1, 2), ("loss", "acc"), strict=True):
        for stage, style in (("train", "o-"), ("val", "s--")):
            points = sorted(series[f"{stage}/{kind}"].items())
            if points:
                epochs, values = zip(*points, strict=True)
                ax.plot([e + 1 for e in epochs], values, style, label=f"{stage}/{kind}", markersize=4)
        ax.set_xlabel("epoch")
        ax.set_ylabel(kind.replace("acc", "accuracy"))
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        if ax.lines:  # a fit stopped in its first epoch has none: no legend (matplotlib would warn)
            ax.legend()
    if not any(series.values()):
        fig.text(0.5, 0.5, "no completed epoch yet", ha="center", va="center")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def confusion_matrix(labels: torch.Tensor, preds: torch.Tensor, num_classes: int = 10) -> torch.Tensor:
    """(C, C) counts: row = true class, column = predicted class."""
    return torch.bincount(labels * num_classes + preds, minlength=num_classes**2).reshape(num_classes, num_classes)


def confusion_matrix_png(matrix: torch.Tensor, path: str | Path, title: str = "") -> Path:
    """The counts annotated; colour by the share of the true class, on a power scale so rare errors show."""
    from matplotlib.colors import PowerNorm
    from matplotlib.figure import Figure

    matrix = matrix.cpu()
    rates = matrix / matrix.sum(1, keepdim=True).clamp(min=1)
    n = matrix.shape[0]
    # Axes placed by hand: constrained layout took about 0.1 s of the 0.2 s this picture costs.
    fig = Figure(figsize=(5.6, 5))
    ax = fig.add_axes((0.1, 0.09, 0.72, 0.84))
    image = ax.imshow(rates.numpy(), cmap="Blues", norm=PowerNorm(0.3, vmin=0, vmax=1))
    fig.colorbar(image, cax=fig.add_axes((0.85, 0.17, 0.03, 0.68)), label="share of the true class")
    for i in range(n):
        for j in range(n):
            count = int(matrix[i, j])
            if count:
                colour = "white" if rates[i, j] > 0.5 else "black"
                ax.text(j, i, str(count), ha="center", va="center", fontsize=7, color=colour)
    ax.set(xticks=range(n), yticks=range(n), xlabel="predicted digit", ylabel="true digit")
    total = int(matrix.sum())
    accuracy = float(matrix.diag().sum()) / max(total, 1)
    ax.set_title(title or f"test accuracy {accuracy:.2%} ({total:,} digits)")
    return _save(fig, path)


def misclassified_png(
    images: torch.Tensor,
    labels: torch.Tensor,
    preds: torch.Tensor,
    confidence: torch.Tensor,
    ids: torch.Tensor,
    path: str | Path,
    title: str = "",
) -> Path:
    """A grid of digits (K, 28, 28), any scale, each titled `true -> predicted (probability)` and its id.

    One image of all the digits in one Axes, each scaled to its own range: a subplot per digit under
    constrained layout drew the same picture in 0.4-0.5 s instead of about 0.05 s, at the end of every test."""
    from matplotlib.figure import Figure

    k = len(images)
    cols = min(5, k) or 3  # no digits: room for the line that says so
    rows = max(1, math.ceil(k / cols))
    size, gap, head = images.shape[-1] if k else 28, 3, 10  # canvas pixels: a digit, between digits, its title
    canvas = torch.full((rows * (head + size + gap), cols * (size + gap)), float("nan"))  # NaN: left blank
    width, height = 1.3 * cols + 0.2, 1.45 * rows + 0.5
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0.01, 0.01, 0.98, 1 - 0.45 / height))  # the top 0.45 in for the figure's title
    ax.axis("off")
    rows_of_text = zip(labels.tolist(), preds.tolist(), confidence.tolist(), ids.tolist(), strict=True)
    for n, (img, (y, p, c, i)) in enumerate(zip(images.cpu().float(), rows_of_text, strict=True)):
        top, left = (n // cols) * (head + size + gap) + head, (n % cols) * (size + gap)
        low, high = float(img.min()), float(img.max())
        canvas[top : top + size, left : left + size] = (img - low) / max(high - low, 1e-8)
        title = f"{y} → {p} ({c:.2f})\n#{i}"
        ax.text(left + size / 2, top - 1, title, ha="center", va="bottom", fontsize=8, color="firebrick")
    ax.imshow(canvas.numpy(), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")  # dark ink on white
    if k == 0:
        ax.text(0.5, 0.5, "no misclassified digits", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title or "most confident mistakes: true → predicted (probability), test id", fontsize=9)
    return _save(fig, path)
