"""The two baselines `benchmarks` measures mnistctl against, each meant to run in its own process.

    python -m benchmarks.baselines recipe --samples 3200 --json /tmp/a.json   # A
    python -m benchmarks.baselines plain --samples 3200 --json /tmp/b.json    # B

A, `recipe`: the original recipe's pipeline: torchvision `MNIST` with `ToTensor()`, a `DataLoader`
(batch 32, 4 workers, shuffle), Adam 1e-3 in a stock Lightning Trainer, the recipe's LightningModule.
B, `plain`: the floor: a plain PyTorch loop over in-memory uint8 tensors, normalised per batch,
channels_last, Adam (fused where the default config says so) with the same one-cycle schedule as
mnistctl's default config; no Lightning. It runs
under mnistctl's process settings (`mnistctl.cpu_tuning`) and in the precision mnistctl chooses on this
CPU (`mnistctl.cli.precision`), so C/B is what Lightning and mnistctl cost.
Both train the same CNN (`mnistctl.network.CNN`) on the same 55,000-image split and report JSON:
train_s, train_samples, test_acc (the full 10,000-image test split).
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
import torch.nn.functional as F

from mnistctl.cli.precision import native_bf16
from mnistctl.cpu_tuning import tune_process
from mnistctl.data.mnist_files import prepare_root
from mnistctl.network import CNN

TRAIN, VAL, SPLIT_SEED = 55_000, 5_000, 42
MEAN, STD = 0.1307, 0.3081


def run_recipe(samples: int, json_path: str, batch_size: int = 32, workers: int = 4, seed: int = 42) -> None:
    """A: the recipe, trained on `samples` images (at most one epoch), then tested; the probe writes the JSON.

    The recipe sets no seed; A does (as B does), so its accuracy on a few steps is one figure per machine and
    not a draw: unseeded, 1,024 images gave 0.68 to 0.84 from run to run. Seeding costs no time.
    """
    from pytorch_lightning import LightningModule, Trainer, seed_everything
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger
    from torch.utils.data import DataLoader, random_split
    from torchmetrics import Accuracy
    from torchvision import datasets, transforms

    from benchmarks.probe import BenchProbe

    class RecipeCNN(LightningModule):
        """The recipe's LightningModule (seeds/000): logs loss and accuracy per epoch; Adam 1e-3."""

        def __init__(self) -> None:
            super().__init__()
            self.net = CNN(10, 0.25)
            self.criterion = torch.nn.CrossEntropyLoss()
            self.accuracy = Accuracy(task="multiclass", num_classes=10)

        def forward(self, x):
            return self.net(x)

        def _step(self, batch, stage: str):
            x, y = batch
            logits = self(x)
            loss = self.criterion(logits, y)
            self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, logger=True)
            self.log(f"{stage}_acc", self.accuracy(logits, y), on_step=False, on_epoch=True, logger=True)
            return loss

        def training_step(self, batch, batch_idx):
            return self._step(batch, "train")

        def validation_step(self, batch, batch_idx):
            self._step(batch, "valid")

        def test_step(self, batch, batch_idx):
            self._step(batch, "test")

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    root = str(prepare_root(None))
    full = datasets.MNIST(root, train=True, transform=transforms.ToTensor())
    train, val = random_split(full, [TRAIN, VAL], generator=torch.Generator().manual_seed(SPLIT_SEED))
    test = datasets.MNIST(root, train=False, transform=transforms.ToTensor())

    def loader(dataset, shuffle: bool = False) -> DataLoader:
        return DataLoader(dataset, batch_size=batch_size, num_workers=workers, shuffle=shuffle)

    trainer = Trainer(
        accelerator="cpu",  # a CPU row: the recipe's `auto` would take a GPU where there is one
        max_epochs=1,
        limit_train_batches=math.ceil(min(samples, TRAIN) / batch_size),
        logger=CSVLogger("recipe_runs"),
        callbacks=[
            ModelCheckpoint(monitor="valid_loss", mode="min", save_last=True),
            BenchProbe(json_path, metric="test_acc"),
        ],
    )
    seed_everything(seed, workers=True, verbose=False)
    model = RecipeCNN()
    trainer.fit(model, loader(train, shuffle=True), loader(val))
    trainer.test(model, loader(test))


def normalise(images: torch.Tensor) -> torch.Tensor:
    """(B, 28, 28) uint8 -> (B, 1, 28, 28) float, normalised, channels_last, on the images' device: as mnistctl's
    DataModule does (B's batches here, G-B's and the plain test/predict scripts' on a GPU)."""
    x = images.unsqueeze(1).float().div_(255.0).sub_(MEAN).div_(STD)
    return x.contiguous(memory_format=torch.channels_last)


def plain_batch(images: torch.Tensor, labels: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows `idx` cut as mnistctl's TensorBatches cuts them (index_select) and normalised as its DataModule
    does: B's batches, and step_phases' plain step's."""
    return normalise(images.index_select(0, idx)), labels.index_select(0, idx)


def plain_step(
    net, optimizer, schedule, autocast, images: torch.Tensor, labels: torch.Tensor, idx: torch.Tensor
) -> None:
    """One step of the plain loop on the rows `idx`: batch and loss under `autocast` (a torch.autocast, reused
    from step to step), backward, optimizer step, schedule step."""
    with autocast:
        x, y = plain_batch(images, labels, idx)
        loss = F.cross_entropy(net(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    schedule.step()


def run_plain(
    samples: int, json_path: str, batch_size: int = 128, lr: float = 0.003, fused: bool = False, seed: int = 42
) -> None:
    """B: the plain loop, in the precision mnistctl chooses here (bf16 autocast on native BF16); writes the JSON."""
    from torchvision.datasets import MNIST

    tune_process()
    bf16 = native_bf16() is not None
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    torch.manual_seed(seed)
    root = str(prepare_root(None))
    train, test = MNIST(root, train=True), MNIST(root, train=False)
    order = torch.randperm(len(train.data), generator=torch.Generator().manual_seed(SPLIT_SEED))
    images, labels = train.data[order[VAL:]], train.targets[order[VAL:]]  # the same 55,000 as mnistctl

    net = CNN(10, 0.25).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr, fused=fused)
    steps = math.ceil(min(samples, TRAIN) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.25)

    stamps = {"train_start": time.time()}
    start, start_cpu = time.perf_counter(), time.process_time()
    shuffled = torch.randperm(len(images))
    for step in range(steps):
        plain_step(
            net, optimizer, schedule, autocast, images, labels, shuffled[step * batch_size : (step + 1) * batch_size]
        )
    train_s, train_cpu_s = time.perf_counter() - start, time.process_time() - start_cpu
    stamps["train_end"] = time.time()

    net.eval()
    correct = 0
    with torch.inference_mode(), autocast:
        for i in range(0, len(test.data), 1000):
            logits = net(normalise(test.data[i : i + 1000]))
            correct += int((logits.argmax(-1) == test.targets[i : i + 1000]).sum())
    samples_seen = min(steps * batch_size, len(images), samples)
    result = {"train_s": train_s, "train_cpu_s": train_cpu_s, "train_samples": samples_seen}
    result["precision"] = "bf16-mixed" if bf16 else "32-true"
    result["fused_adam"] = fused
    result["test_acc"] = correct / len(test.data)
    result["stamps"] = {**stamps, "test_end": time.time()}
    with open(json_path, "w") as f:
        json.dump(result, f)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baselines", description=__doc__.split("\n")[0])
    parser.add_argument("which", choices=["recipe", "plain"])
    parser.add_argument("--samples", type=int, default=TRAIN, help="training images (at most one epoch, 55,000)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 32 (recipe), 128 (plain)")
    parser.add_argument("--lr", type=float, default=0.003, help="plain: peak of the one-cycle schedule")
    parser.add_argument("--fused", action="store_true", help="plain: fused Adam (as the default config sets it)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", required=True, help="file to write the result to")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.which == "recipe":
        run_recipe(args.samples, args.json, batch_size=args.batch_size or 32)
    else:
        run_plain(args.samples, args.json, batch_size=args.batch_size or 128, lr=args.lr, fused=args.fused)


if __name__ == "__main__":
    main()
