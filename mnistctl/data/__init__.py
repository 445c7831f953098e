"""MNIST for mnistctl: the bundled copy, the LightningDataModule over it, and your own digit images.

    python -c "from mnistctl.data import MNISTDataModule; print(MNISTDataModule().hparams)"

`mnistctl.data.MNISTDataModule` is the class path configs and checkpoints name; it lives in datamodule.py.
"""

from mnistctl.data.datamodule import MNISTDataModule

__all__ = ["MNISTDataModule"]
