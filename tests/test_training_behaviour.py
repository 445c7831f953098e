"""What training does, watched from outside a real fit: data order, the one-cycle curve, the ETA, MSE, plateau.

    .venv/bin/python -m pytest tests/test_training_behaviour.py

One four-epoch fit (module fixture) logs its learning rate every step, records each epoch's sample ids
(tests/probes.py), takes about a second per epoch (a pause per batch) and prints progress lines.
"""

from __future__ import annotations

import contextlib
import io
import re
import signal
from itertools import pairwise
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import TINY, fit_in, last_metric, read_csv
from mnistctl.data import MNISTDataModule
from mnistctl.model import MNISTClassifier
from probes import read_ids

EPOCHS, BATCHES, BATCH_SIZE = 4, 4, 32
BUDGET = [*TINY, "--trainer.max_epochs", str(EPOCHS), "--trainer.limit_train_batches", str(BATCHES)]
BUDGET += ["--data.batch_size", str(BATCH_SIZE), "--test_after_fit", "false"]

FLOAT32 = ["--trainer.precision", "32-true"]


def callbacks_config(folder: Path, *callbacks: str) -> str:
    """A config file whose trainer.callbacks list (replacing base.yaml's) is ModelCheckpoint plus `callbacks`."""
    lines = ["trainer:", "  callbacks:", "    - class_path: pytorch_lightning.callbacks.ModelCheckpoint"]
    lines += ["      init_args: {monitor: val/acc, mode: max, save_last: true}"]
    lines += [f"    - {callback}" for callback in callbacks]
    path = folder / "callbacks.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def four_epochs(tmp_path_factory) -> tuple[Path, str]:
    """The run folder of the four-epoch fit and what it printed on stderr."""
    folder = tmp_path_factory.mktemp("four_epochs")
    config = callbacks_config(
        folder,
        "{class_path: pytorch_lightning.callbacks.LearningRateMonitor, init_args: {logging_interval: step}}",
        f"{{class_path: probes.RecordEpochIds, init_args: {{folder: {folder / 'ids'}}}}}",
        "{class_path: probes.Slow, init_args: {seconds: 0.25}}",
    )
    progress = ["--trainer.enable_progress_bar", "true", "--trainer.log_every_n_steps", "1"]
    with contextlib.redirect_stderr(io.StringIO()) as err:
        fit_in(folder, "--config", config, *BUDGET, *progress)
    return folder / "runs" / "mnist" / "version_0", err.getvalue()


def test_every_epoch_draws_a_new_order(four_epochs):
    run, _ = four_epochs
    orders = [read_ids(run.parents[2] / "ids", epoch) for epoch in range(EPOCHS)]
    for order in orders:
        assert len(order) == BATCHES * BATCH_SIZE and len(set(order)) == len(order)
    assert all(a != b for i, a in enumerate(orders) for b in orders[i + 1 :])  # no two epochs alike


def test_a_resumed_fit_sees_the_order_an_uninterrupted_one_saw(four_epochs, tmp_path):
    run, _ = four_epochs
    ids = f"{{class_path: probes.RecordEpochIds, init_args: {{folder: {tmp_path / 'ids'}}}}}"
    interrupted = callbacks_config(tmp_path, ids, "{class_path: probes.InterruptAt, init_args: {epoch: 2}}")
    try:
        with pytest.raises(AssertionError):  # Ctrl-C at epoch 2: exit 130
            fit_in(tmp_path, "--config", interrupted, *BUDGET)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning ignores Ctrl-C while it shuts down
    assert not (tmp_path / "ids" / "ids_epoch2.txt").exists()
    fit_in(tmp_path, "--config", callbacks_config(tmp_path, ids), *BUDGET, "--ckpt_path", "last")
    for epoch in range(EPOCHS):
        assert read_ids(tmp_path / "ids", epoch) == read_ids(run.parents[2] / "ids", epoch), epoch


def test_one_cycle_rises_to_its_peak_at_pct_start_then_falls_every_batch(four_epochs):
    run, _ = four_epochs
    lrs = [float(r["lr-Adam"]) for r in read_csv(run / "metrics.csv") if r.get("lr-Adam")]
    steps = EPOCHS * BATCHES
    assert len(lrs) == steps  # one value per optimizer step
    peak = lrs.index(max(lrs))
    assert peak == round(0.25 * steps) - 1 and max(lrs) == pytest.approx(0.003)  # pct_start 0.25, base.yaml's lr
    assert all(a < b for a, b in pairwise(lrs[: peak + 1])), lrs  # rises at every batch
    assert all(a > b for a, b in pairwise(lrs[peak:])), lrs  # then falls at every batch
    # The oracle: torch's own OneCycleLR over the same number of steps, with mnistctl's defaults.
    optimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=0.003)
    oracle = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, 0.003, total_steps=steps, pct_start=0.25, div_factor=25.0, final_div_factor=1e3
    )
    expected = []
    for _ in range(steps):
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        oracle.step()
    assert lrs == pytest.approx(expected, rel=1e-6)


def test_eta_counts_down_over_the_epochs(four_epochs):
    _, err = four_epochs
    lines = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == [f"{e}/{EPOCHS}" for e in range(1, EPOCHS + 1)]
    etas = [int(m.group(1)) if (m := re.search(r", ETA (\d+)s$", line)) else None for line in lines]
    assert etas[-1] is None  # nothing left after the last epoch
    # About a second per epoch: three, two, one epochs to go.
    assert etas[0] >= 2 and all(a > b for a, b in pairwise(etas[:-1])), lines


def test_mse_trains_on_softmax_outputs_against_one_hot_targets(tmp_path):
    # float32 as the oracle below computes (where the CPU has native BF16, fit would choose bf16-mixed).
    fit_in(tmp_path, *TINY, "--model.criterion", "torch.nn.MSELoss", "--test_after_fit", "false", *FLOAT32)
    run = tmp_path / "runs" / "mnist" / "version_0"
    # The oracle: the end-of-epoch val/loss recomputed from the checkpoint of that epoch, by hand.
    model = MNISTClassifier()
    model.load_state_dict(torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"])
    model.eval()
    data = MNISTDataModule()
    data.setup("fit")
    losses, sizes = [], []
    with torch.no_grad():
        for batch in list(data.val_dataloader())[:2]:  # --trainer.limit_val_batches 2
            x, y, _ = data.on_after_batch_transfer(batch, 0)
            probs = model(x).softmax(-1)
            losses.append(F.mse_loss(probs, F.one_hot(y, 10).float()).item())
            sizes.append(len(y))
    expected = sum(loss * n for loss, n in zip(losses, sizes, strict=True)) / sum(sizes)
    assert last_metric(run / "metrics.csv", "val/loss") == pytest.approx(expected, rel=1e-5)
    # That it trains well is the slow tier's: test_every_sweep_criterion_trains_to_98_percent_in_two_epochs.


def test_reduce_lr_on_plateau_steps_on_val_loss_going_down(tmp_path):
    args = [*TINY, "--lr_scheduler", "ReduceLROnPlateau", "--trainer.max_epochs", "3", "--test_after_fit", "false"]
    fit_in(tmp_path, *args, "--trainer.limit_train_batches", "2")
    run = tmp_path / "runs" / "mnist" / "version_0"
    # What the scheduler actually did, as saved in last.ckpt: it tracked the lowest val/loss. The checkpoint
    # is written when validation ends, before the scheduler steps on that validation: the last one is not in it.
    (state,) = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["lr_schedulers"]
    val_loss = [float(r["val/loss"]) for r in read_csv(run / "metrics.csv") if r.get("val/loss")]
    assert len(val_loss) == 3 and state["last_epoch"] == 2
    assert state["mode"] == "min" and state["monitor"] == "val/loss"
    assert state["best"] == pytest.approx(min(val_loss[:-1]), rel=1e-6)
