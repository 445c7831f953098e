"""MNISTClassifier: the LightningModule that trains `network.CNN` with any torch loss.

    mnistctl fit --config configs/base.yaml --model.criterion torch.nn.MSELoss

The loss decides what the network's logits are turned into: class-index losses (cross-entropy,
with or without label smoothing) take logits; NLLLoss takes log-probabilities; regression losses
(MSE, L1, Huber) compare softmax probabilities with one-hot targets, so they really train.

The optimizer and schedule are `optimizer` and `lr_scheduler` (class_path/init_args dicts, as in a
config): `mnistctl fit` sets them from --optimizer and --lr_scheduler; in plain Python the model keeps
the recipe (`mnistctl.optimization`: Adam 3e-3 with a one-cycle schedule), so

    Trainer(max_epochs=2).fit(MNISTClassifier(), datamodule=MNISTDataModule())

trains as `mnistctl fit --trainer.max_epochs 2` does.
"""

from __future__ import annotations

import copy
import inspect

import torch
import torch.nn.functional as F
from jsonargparse import lazy_instance
from pytorch_lightning import LightningModule
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from mnistctl import optimization, ranges
from mnistctl.network import CNN

# Set on the module around every hook call (Lightning's `_current_fx_name`, dozens of times a step) and
# at each epoch's end: plain attributes, so they skip nn.Module.__setattr__'s checks for
# parameters, buffers and submodules (about 1 us each, isinstance checks through Parameter's metaclass).
PLAIN_ATTRIBUTES = frozenset({"_current_fx_name", "_epoch_steps"})
PROBABILITY_LOSSES = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss)
LOG_PROBABILITY_LOSSES = (nn.NLLLoss,)
Step = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (loss, predicted classes, labels) of a training step


class MNISTClassifier(LightningModule):
    """Trains the recipe's CNN; logs `{train,val,test}/{loss,acc}`.

    Args:
        dropout_ratio: dropout after each pooled convolution, in [0, 1).
        criterion: any torch loss module, e.g. torch.nn.CrossEntropyLoss (with label_smoothing),
            torch.nn.NLLLoss, torch.nn.MSELoss.
        num_classes: number of digit classes.
    """

    def __init__(
        self,
        dropout_ratio: float = 0.25,
        criterion: nn.Module = lazy_instance(nn.CrossEntropyLoss),
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        ranges.check("model.dropout_ratio", dropout_ratio)
        # Under LightningCLI the criterion is recorded as its class_path dict, so checkpoints rebuild it.
        self.save_hyperparameters()
        self.net = CNN(num_classes, dropout_ratio).to(memory_format=torch.channels_last)
        self.criterion = criterion
        # Not constructor arguments: they are the CLI's --optimizer and --lr_scheduler, not model settings.
        self.optimizer: dict = copy.deepcopy(optimization.RECIPE_OPTIMIZER)
        self.lr_scheduler: dict | None = copy.deepcopy(optimization.RECIPE_LR_SCHEDULER)
        # Optimizer steps a resumed run already took when its schedule restarts (an allowed optimizer change).
        self.steps_done = 0
        # This epoch's training steps: (loss, predicted classes, labels), reduced at its last batch.
        self._epoch_steps: list[Step] = []
        self.finished_epoch: dict | None = None  # {"epoch", "train/loss", "train/acc"} of the last epoch trained
        self.metrics = nn.ModuleDict(
            {f"{stage}_acc": MulticlassAccuracy(num_classes, average="micro") for stage in ("val", "test")}
        )

    def __setattr__(self, name: str, value) -> None:
        if name in PLAIN_ATTRIBUTES:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, 1, 28, 28) -> (B, 10) logits

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if isinstance(self.criterion, PROBABILITY_LOSSES):
            return self.criterion(logits.softmax(-1), F.one_hot(y, logits.shape[-1]).to(logits.dtype))
        if isinstance(self.criterion, LOG_PROBABILITY_LOSSES):
            return self.criterion(logits.log_softmax(-1), y)
        return self.criterion(logits, y)

    def _shared_step(self, batch, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        x, y, _ = batch
        logits = self(x)
        loss = self.loss(logits, y)
        accuracy = self.metrics[f"{stage}_acc"]
        accuracy(logits, y)
        # Tensors, not .item(): Lightning reduces them at logging intervals, so no per-step sync.
        # sync_dist: under DDP the epoch loss averages every rank's shard (one all-reduce per epoch), so all
        # ranks see the same val/loss, e.g. for ReduceLROnPlateau. Accuracy syncs itself (torchmetrics).
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        self.log(f"{stage}/acc", accuracy, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        return loss, logits

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        # One tensor operation per step beyond the loss (the argmax): each self.log, torchmetrics update or
        # running sum costs microseconds of dispatch a step, so the epoch's loss and accuracy are reduced
        # from the kept (loss, predictions, labels) once, at its last batch (about 1 MB for an epoch).
        x, y, _ = batch
        logits = self(x)
        loss = self.loss(logits, y)
        self._epoch_steps.append((loss.detach(), logits.detach().argmax(-1), y))
        return loss

    # Lightning inspects training_step's signature every step (does it take batch_idx?): 10-30 us a step.
    # inspect answers from a function's __signature__ (PEP 362) when it has one, so it is computed once here.
    # A subclass that overrides training_step is inspected as before.
    training_step.__signature__ = inspect.signature(training_step)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        # Lightning calls this every step with --trainer.gradient_clip_val; without one (None or 0) there is
        # nothing to clip, and Lightning's checks before finding that out cost about 15 us a step.
        if gradient_clip_val:
            super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if not self.trainer.fit_loop.epoch_loop.done:
            return
        # The epoch's last batch (or max_steps): logged before any on_train_epoch_end, so callbacks see train/*.
        # sync_dist averages the ranks' values: every rank runs as many samples (padded shards), so the mean
        # of their accuracies is the accuracy over all of them.
        loss, accuracy = epoch_loss_and_accuracy(self._epoch_steps)
        self._epoch_steps = []
        # For the checkpoints that end this epoch (cli/epoch_record.py): Lightning logs train/* only after them.
        self.finished_epoch = {"epoch": self.current_epoch, "train/loss": float(loss), "train/acc": float(accuracy)}
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=1, sync_dist=True)
        self.log("train/acc", accuracy, on_step=False, on_epoch=True, prog_bar=True, batch_size=1, sync_dist=True)

    def validation_step(self, batch, batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        loss, logits = self._shared_step(batch, "test")
        return {"loss": loss, "logits": logits.detach()}  # (B, 10): for callbacks, e.g. plot_callbacks.TestPlots

    def predict_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        x, y, ids = batch
        return {"ids": ids, "probs": self(x).softmax(-1), "labels": y}

    def configure_optimizers(self) -> dict:
        return optimization.configure_optimizers(self, self.optimizer, self.lr_scheduler, self.steps_done)


def epoch_loss_and_accuracy(steps: list[Step]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss over samples (each step's loss weighted by its batch size) and accuracy, from the steps'
    (loss, predicted classes, labels); tensors on the steps' device, so no host sync."""
    losses, predictions, labels = zip(*steps, strict=True)
    sizes = torch.tensor([len(y) for y in labels], dtype=torch.float32, device=losses[0].device)
    loss = (torch.stack(losses).float() * sizes).sum() / sizes.sum()
    return loss, (torch.cat(predictions) == torch.cat(labels)).float().mean()
