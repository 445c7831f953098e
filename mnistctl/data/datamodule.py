"""MNISTDataModule: the verified MNIST copy, held in memory as uint8 tensors, cut into batches.

    mnistctl fit --config configs/base.yaml --data.batch_size 256

Each split is one (N, 28, 28) uint8 tensor; batches are taken by indexing (see `batches.py`) and
turned into normalised float tensors only after they reach the device, in `on_after_batch_transfer`.
On a CUDA device each split used is copied to the GPU once (47 MB for the training images) and cut into
batches there: no host-to-device copy per step (`resident_device`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pytorch_lightning import LightningDataModule

from mnistctl import ranges
from mnistctl.data.batches import TensorBatches
from mnistctl.data.mnist_files import load_split, prepare_root


class MNISTDataModule(LightningDataModule):
    """MNIST from the bundled copy (or `data_dir`), split 55,000/5,000 by a seeded generator.

    Args:
        data_dir: torchvision root or folder with the four MNIST files; None uses the copy that ships
            with mnistctl (unpacked once into ~/.cache/mnistctl, or $MNISTCTL_CACHE_DIR).
        download: fetch MNIST through torchvision when `data_dir` has no copy (needs network).
        batch_size: samples per training batch.
        eval_batch_size: samples per validation/test/predict batch (256: on CPU its activations still
            fit in cache; much larger batches run slower).
        val_size: images held out of the 60,000 training images for validation.
        split_seed: seed of the train/validation split; recorded in checkpoints so evaluation
            reuses the same split.
        shuffle_seed: base seed of the per-epoch training order (epoch e uses shuffle_seed + e).
        mean: normalisation mean of the pixel values scaled to [0, 1].
        std: normalisation standard deviation.
        augment_shift: largest random shift in pixels applied to training images (0: off).
        predict_dir: an image file or a folder of PNG/JPEG/BMP digits to classify with `predict`;
            None predicts the MNIST test split.
    """

    def __init__(
        self,
        data_dir: str | None = None,
        download: bool = False,
        batch_size: int = 128,
        eval_batch_size: int = 256,
        val_size: int = 5_000,
        split_seed: int = 42,
        shuffle_seed: int = 0,
        mean: float = 0.1307,
        std: float = 0.3081,
        augment_shift: int = 0,
        predict_dir: str | None = None,
    ) -> None:
        super().__init__()
        for name, value in dict(
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            val_size=val_size,
            std=std,
            augment_shift=augment_shift,
        ).items():
            ranges.check(f"data.{name}", value)
        self.save_hyperparameters()
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = {}
        self._resident: dict[tuple[str, str], tuple] = {}  # (split, device): the split's tensors held there

    def prepare_data(self) -> None:
        prepare_root(self.hparams.data_dir, self.hparams.download)

    def setup(self, stage: str) -> None:
        if self.splits:
            return
        # The bytes parsed are the bytes checked (no second read by torchvision, which would also prefer a
        # stray legacy MNIST/processed/*.pt over the verified raw files).
        root = prepare_root(self.hparams.data_dir, self.hparams.download)
        (train_x, train_y), (test_x, test_y) = load_split(root, train=True), load_split(root, train=False)
        generator = torch.Generator().manual_seed(self.hparams.split_seed)
        order = torch.randperm(len(train_x), generator=generator)
        val_idx, train_idx = order[: self.hparams.val_size], order[self.hparams.val_size :]
        # ids are indices into the original 60,000 training images / 10,000 test images.
        self.splits = {
            "train": (train_x[train_idx], train_y[train_idx], train_idx),
            "val": (train_x[val_idx], train_y[val_idx], val_idx),
            "test": (test_x, test_y, None),
        }
        if stage == "predict" and self.hparams.predict_dir:
            from mnistctl.data.images import load_digit_folder

            images, names, skipped = load_digit_folder(self.hparams.predict_dir)
            self.predict_names = names
            self.predict_skipped = skipped  # (path, reason) per unreadable file: skipped.txt and exit code 3
            self.splits["predict"] = (images, torch.full((len(images),), -1), None)

    def _batches(self, split: str, train: bool = False) -> TensorBatches:
        images, labels, ids = self._held(split)
        trainer = self.trainer
        return TensorBatches(
            images,
            labels,
            self.hparams.batch_size if train else self.hparams.eval_batch_size,
            shuffle=train,
            seed=self.hparams.shuffle_seed,
            epoch_fn=(lambda: trainer.current_epoch) if trainer else None,
            rank=trainer.global_rank if trainer else 0,
            world_size=trainer.world_size if trainer else 1,
            ids=ids,
        )

    def _held(self, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """A split's tensors, on the trainer's GPU when it has one (copied once per split and device)."""
        images, labels, ids = self.splits[split]
        device = resident_device(self.trainer)
        if device is None:
            return images, labels, ids
        key = (split, str(device))
        if key not in self._resident:  # fit's test after training, or a second fit, reuses the copy
            ids = torch.arange(len(images)) if ids is None else ids
            self._resident[key] = tuple(t.to(device) for t in (images, labels, ids))
        return self._resident[key]

    def train_dataloader(self) -> TensorBatches:
        return self._batches("train", train=True)

    def val_dataloader(self) -> TensorBatches:
        return self._batches("val")

    def test_dataloader(self) -> TensorBatches:
        return self._batches("test")

    def predict_dataloader(self) -> TensorBatches:
        return self._batches("predict" if "predict" in self.splits else "test")

    def transfer_batch_to_device(self, batch, device: torch.device, dataloader_idx: int):
        # Batches are cut from tensors already held on the trainer's device (see `_held`): Lightning's generic
        # transfer would walk the batch and call .to() on each tensor for nothing, every step.
        if all(t.device == device for t in batch):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, labels, ids = batch
        # (B, 28, 28) uint8 -> (B, 1, 28, 28) float, normalised, channels_last (faster convs on CPU).
        x = images.unsqueeze(1).float().div_(255.0)
        if self.trainer is not None and self.trainer.training and self.hparams.augment_shift:
            x = random_shift(x, self.hparams.augment_shift)
        x = x.sub_(self.hparams.mean).div_(self.hparams.std)
        return x.contiguous(memory_format=torch.channels_last), labels, ids


def resident_device(trainer) -> torch.device | None:
    """The device to hold the data on: the trainer's CUDA device; None (batches copied per step) elsewhere."""
    device = getattr(getattr(trainer, "strategy", None), "root_device", None)
    return device if device is not None and device.type == "cuda" else None


def random_shift(x: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Shift each image by up to `max_shift` pixels in x and y, filling with background (0)."""
    b = x.shape[0]
    padded = F.pad(x, (max_shift,) * 4)
    dx = torch.randint(0, 2 * max_shift + 1, (b,), device=x.device)
    dy = torch.randint(0, 2 * max_shift + 1, (b,), device=x.device)
    rows = (dy[:, None] + torch.arange(28, device=x.device)[None, :])[:, :, None]  # (B, 28, 1)
    cols = (dx[:, None] + torch.arange(28, device=x.device)[None, :])[:, None, :]  # (B, 1, 28)
    return padded[:, 0][torch.arange(b, device=x.device)[:, None, None], rows, cols].unsqueeze(1)  # (B, 1, 28, 28)
