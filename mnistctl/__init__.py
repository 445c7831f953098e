"""mnistctl: train, evaluate, serve and sweep a CNN on MNIST with Lightning and Hydra.

    mnistctl fit --config configs/base.yaml

Importing this package is cheap on purpose: torch and Lightning are imported only by the
subcommands that need them, so `mnistctl --help` and `mnistctl sweep --dry-run` start fast.
"""

__version__ = "0.1.0"
