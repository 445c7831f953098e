"""Run pictures: learning curves after fit, confusion matrix and misclassified digits after test."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from conftest import REPO
from mnistctl import plot_callbacks
from mnistctl.plots import confusion_matrix, epoch_metrics, learning_curves_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BLUE, ORANGE = (31, 119, 180), (255, 127, 14)  # matplotlib's first two line colours: train, val


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])  # IHDR width, height


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def has_colour(image: np.ndarray, rgb: tuple[int, int, int], min_pixels: int = 50) -> bool:
    return int((np.abs(image.astype(int) - rgb).sum(-1) < 30).sum()) >= min_pixels


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("learning_curves.png", (800, 320)),
        ("test/confusion_matrix.png", (560, 500)),
        ("test/misclassified.png", (670, 775)),
    ],
)
def test_fit_leaves_the_three_pictures(tiny_run, name, size):
    path = tiny_run / name
    assert png_size(path) == size
    assert 5_000 < path.stat().st_size < 200_000
    assert not list(path.parent.glob(".*.tmp"))  # written atomically: no temporary file left behind


def test_learning_curves_show_train_and_val(tiny_run):
    image = pixels(tiny_run / "learning_curves.png")
    assert has_colour(image, BLUE) and has_colour(image, ORANGE)


def test_misclassified_grid_shows_25_dark_digits(tiny_run):
    image = pixels(tiny_run / "test" / "misclassified.png").mean(-1)  # (775, 670) grey
    # 25 tiles of dark ink on white: count the dark blobs per tile row (5 rows of 5).
    dark_rows = (image < 80).sum(1) > 0
    row_starts = np.flatnonzero(dark_rows[1:] & ~dark_rows[:-1])
    assert len(row_starts) >= 5
    assert (image < 80).mean() > 0.02


def test_epoch_metrics_keeps_the_last_value_of_each_epoch(tmp_path):
    (tmp_path / "metrics.csv").write_text(
        "epoch,step,train/loss,val/acc,test/acc\n"
        "0,49,2.0,,\n"
        "0,99,,0.90,\n"
        "0,99,1.5,,\n"
        "1,199,,0.95,\n"
        "1,199,1.0,,\n"
        "1,199,,,0.96\n"
    )
    series = epoch_metrics(tmp_path / "metrics.csv", ["train/loss", "val/acc", "train/acc"])
    assert series == {"train/loss": {0: 1.5, 1: 1.0}, "val/acc": {0: 0.90, 1: 0.95}, "train/acc": {}}
    assert png_size(learning_curves_png(tmp_path / "metrics.csv", tmp_path / "lc.png")) == (800, 320)


def test_curves_of_a_fit_stopped_in_its_first_epoch_say_so_without_a_warning(tmp_path):
    """The bug: Ctrl-C (or an error) in the first epoch drew the curves with empty axes, and matplotlib's
    "No artists with labels found to put in legend" warning reached the user's terminal."""
    (tmp_path / "metrics.csv").write_text("epoch,lr-Adam,step\n,0.00012,0\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = learning_curves_png(tmp_path / "metrics.csv", tmp_path / "lc.png")
    assert png_size(path) == (800, 320)


def test_confusion_matrix_counts():
    labels, preds = torch.tensor([0, 0, 1, 2, 2, 2]), torch.tensor([0, 1, 1, 0, 2, 2])
    assert confusion_matrix(labels, preds, 3).tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_top_k_keeps_the_most_confident_distinct_mistakes():
    def mistakes(confidence, ids):
        n = len(ids)
        return (
            torch.zeros(n, 28, 28),
            torch.zeros(n, dtype=torch.long),
            torch.ones(n, dtype=torch.long),
            torch.tensor(confidence),
            torch.tensor(ids),
        )

    first = plot_callbacks._top_k(None, mistakes([0.5, 0.9, 0.7], [1, 2, 3]), k=3)
    merged = plot_callbacks._top_k(first, mistakes([0.95, 0.9, 0.1], [4, 2, 5]), k=3)  # id 2 again (DDP padding)
    assert merged[4].tolist() == [4, 2, 3] and merged[3].tolist() == pytest.approx([0.95, 0.9, 0.7])


def test_test_plots_pick_the_most_confident_mistakes(tmp_path):
    callback = plot_callbacks.TestPlots(num_misclassified=2, dirpath=str(tmp_path / "pics"))
    trainer = SimpleNamespace(world_size=1, is_global_zero=True)
    callback.on_test_epoch_start(trainer, None)
    # Two batches of 3: true labels 0; logits favour class 1 for ids 11 (strongly) and 13 (mildly), 21 (most).
    for ids, logits in (([10, 11, 12], [[5, 0], [0, 4], [3, 0]]), ([20, 21, 13], [[4, 0], [0, 9], [0, 1]])):
        logits = torch.cat([torch.tensor(logits, dtype=torch.float), torch.full((3, 8), -20.0)], dim=1)
        batch = (torch.randn(3, 1, 28, 28), torch.zeros(3, dtype=torch.long), torch.tensor(ids))
        callback.on_test_batch_end(trainer, None, {"logits": logits}, batch, 0)
    callback.on_test_epoch_end(trainer, None)
    assert callback.worst[4].tolist() == [21, 11]
    assert [p.name for p in callback.written] == ["confusion_matrix.png", "misclassified.png"]
    assert png_size(tmp_path / "pics" / "misclassified.png") == (280, 195)  # one row of two tiles


def test_base_config_lists_the_plot_callbacks_so_they_can_be_removed():
    config = yaml.safe_load((REPO / "configs" / "base.yaml").read_text())
    paths = [c["class_path"] for c in config["trainer"]["callbacks"]]
    assert "mnistctl.plot_callbacks.LearningCurves" in paths and "mnistctl.plot_callbacks.TestPlots" in paths
