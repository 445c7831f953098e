"""MNIST for mnistctl: the bundled copy, the LightningDataModule over it, and your own digit images.

    python -c "from mnistctl.data import MNISTDataModule; print(MNISTDataModule().hparams)"

`mnistctl.data.MNISTDataModule` is the class path configs and checkpoints name; it lives in datamodule.py
and is imported on first use (PEP 562), so that reading the MNIST files (`mnistctl.data.mnist_files`, as
the benchmark's plain PyTorch loops do) does not import Lightning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mnistctl.data.datamodule import MNISTDataModule

__all__ = ["MNISTDataModule"]


def __getattr__(name: str):
    if name == "MNISTDataModule":
        from mnistctl.data.datamodule import MNISTDataModule

        return MNISTDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
