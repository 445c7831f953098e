"""Range checks on a parsed LightningCLI config, run before anything is built.

    mnistctl fit --optimizer.lr -0.1      # -> mnistctl: error: --optimizer.lr must be positive, got -0.1

Types are checked by jsonargparse; values that are the right type but meaningless (a negative
learning rate, zero epochs) are checked here so the user gets one line naming the flag.
"""

from __future__ import annotations

from jsonargparse import Namespace

from mnistctl.errors import UsageError


def _positive(name: str, value) -> None:
    if value is not None and not value > 0:
        raise UsageError(f"--{name} must be positive, got {value}")


def check_config(config: Namespace) -> None:
    if config.get("num_threads") is not None and config.num_threads < 1:
        raise UsageError(f"--num_threads must be at least 1, got {config.num_threads}")
    trainer = config.get("trainer") or Namespace()
    max_epochs = trainer.get("max_epochs")
    if max_epochs is not None and (max_epochs == 0 or max_epochs < -1):
        raise UsageError(f"--trainer.max_epochs must be at least 1 (or -1 for no limit), got {max_epochs}")
    for section in ("optimizer", "lr_scheduler"):
        init_args = (config.get(section) or Namespace()).get("init_args") or Namespace()
        for key in ("lr", "max_lr"):
            _positive(f"{section}.{key}", init_args.get(key))
    _positive("data.std", config.data.get("std"))
