"""The LightningCLI commands fit, validate, test and predict, and the callbacks every such run gets.

    mnistctl fit --config configs/base.yaml

mnist_cli.py holds MnistCLI (parsing, run folders, checkpoints resolved before anything loads); the
other modules are what it adds to each run: run.json, progress, atomic checkpoints, clean interrupts,
RNG state for exact resume, the predictions CSV, range checks.
"""

from mnistctl.cli.deferred_scipy import defer_scipy_signal

defer_scipy_signal()  # before any module here imports Lightning, and with it torchmetrics
