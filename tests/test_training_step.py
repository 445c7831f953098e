"""What a training step keeps for its epoch's train/loss and train/acc, and the per-step shortcuts taken for
speed (plain attributes, a cached signature, no clipping checks without clipping, no copy of a batch already
on its device), each against its bug."""

from __future__ import annotations

import inspect
import json

import pytest
import torch
from pytorch_lightning import Trainer
from pytorch_lightning.utilities.signature_utils import is_param_in_hook_signature
from torch import nn

from conftest import TINY, read_csv, run_main
from mnistctl.cli.progress import running_loss
from mnistctl.data.datamodule import MNISTDataModule
from mnistctl.model import PLAIN_ATTRIBUTES, MNISTClassifier, epoch_loss_and_accuracy


def test_the_epoch_loss_weights_each_step_by_its_batch_size():
    labels = torch.tensor([1, 2, 3, 4]), torch.tensor([5, 6])
    predictions = torch.tensor([1, 2, 0, 0]), torch.tensor([5, 6])
    steps = [(torch.tensor(1.0), predictions[0], labels[0]), (torch.tensor(4.0), predictions[1], labels[1])]
    loss, accuracy = epoch_loss_and_accuracy(steps)
    assert float(loss) == pytest.approx((4 * 1.0 + 2 * 4.0) / 6)  # not (1 + 4) / 2: a short last batch counts less
    assert float(accuracy) == pytest.approx(4 / 6)


def test_each_epochs_train_loss_is_the_mean_over_its_own_samples(tmp_path):
    # 10 training images in batches of 4, 4 and 2: the last batch is short; two epochs, so one epoch's steps
    # leaking into the next shows.
    args = ["--data.val_size", "59990", "--data.batch_size", "4", "--trainer.limit_train_batches", "1.0"]
    args += ["--trainer.max_epochs", "2", "--trainer.callbacks+=probes.StepLosses", "--test_after_fit", "false"]
    assert run_main("fit", *TINY, *args) == 0
    epochs = json.loads((tmp_path / "step_losses.json").read_text())
    assert [[size for _, size in steps] for steps in epochs.values()] == [[4, 4, 2], [4, 4, 2]]
    (metrics,) = tmp_path.glob("runs/mnist/version_0/metrics.csv")
    logged = [float(row["train/loss"]) for row in read_csv(metrics) if row.get("train/loss")]
    expected = [sum(loss * size for loss, size in steps) / 10 for steps in epochs.values()]
    assert logged == pytest.approx(expected, rel=1e-5)


def test_attributes_lightning_sets_per_hook_skip_module_registration_and_nothing_else_does():
    model = MNISTClassifier()
    assert not PLAIN_ATTRIBUTES & {name for name, _ in model.named_children()}
    model._current_fx_name = "training_step"
    assert vars(model)["_current_fx_name"] == "training_step"
    model.head = nn.Linear(10, 2)  # any other attribute still goes through nn.Module's registration
    model.scale = nn.Parameter(torch.ones(1))
    assert {"head.weight", "head.bias", "scale"} <= set(model.state_dict())
    assert not any(name.startswith("_epoch_steps") for name in model.state_dict())


def test_lightning_still_passes_batch_idx_and_a_subclass_is_inspected_afresh():
    assert is_param_in_hook_signature(MNISTClassifier().training_step, "batch_idx", min_args=2)
    assert list(inspect.signature(MNISTClassifier.training_step).parameters) == ["self", "batch", "batch_idx"]

    class OneArgument(MNISTClassifier):
        def training_step(self, batch):
            return super().training_step(batch, 0)

    assert not is_param_in_hook_signature(OneArgument().training_step, "batch_idx", min_args=2)


@pytest.mark.parametrize(("clip", "moved"), [(1e-6, False), (None, True)], ids=["clipped", "not-clipped"])
def test_gradient_clipping_still_clips(clip, moved):
    model = MNISTClassifier()
    model.optimizer = {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1}}  # steps as large as the gradient
    model.lr_scheduler = None
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    trainer = Trainer(
        max_steps=3, gradient_clip_val=clip, accelerator="cpu", limit_val_batches=0, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, datamodule=MNISTDataModule())
    change = (torch.cat([p.detach().flatten() for p in model.parameters()]) - before).norm()
    # Clipped to a gradient norm of 1e-6, three SGD steps move the weights by at most 3 * 0.1 * 1e-6.
    assert float(change) > 1e-3 if moved else float(change) <= 3.1e-7


def test_the_bar_shows_the_loss_the_step_computed():
    assert running_loss({"loss": torch.tensor(0.5)}) == 0.5
    assert running_loss({"loss": torch.tensor(0.5)}, accumulate_grad_batches=4) == 2.0  # Lightning divided it
    assert running_loss(torch.tensor(0.25)) == 0.25
    assert running_loss(None) is None and running_loss({"logits": torch.zeros(2)}) is None


def test_a_batch_already_on_the_device_is_not_copied_and_one_elsewhere_is_moved():
    data = MNISTDataModule()
    batch = torch.zeros(4, 28, 28, dtype=torch.uint8), torch.zeros(4, dtype=torch.long), torch.arange(4)
    same = data.transfer_batch_to_device(batch, torch.device("cpu"), 0)
    assert all(a is b for a, b in zip(same, batch, strict=True))
    moved = data.transfer_batch_to_device(batch, torch.device("meta"), 0)  # any other device: Lightning's transfer
    assert [t.device.type for t in moved] == ["meta"] * 3
