"""Range checks on a parsed LightningCLI config, run before anything is built.

    mnistctl fit --optimizer.lr -0.1      # -> mnistctl: error: --optimizer.lr must be positive, got -0.1

Types are checked by jsonargparse; values that are the right type but meaningless (a negative
learning rate, zero epochs) are checked here so the user gets one line naming the flag.
"""

from __future__ import annotations

import math

from jsonargparse import Namespace

from mnistctl.errors import UsageError

FLOAT32_MAX = 3.4028234663852886e38  # a learning rate is used in float32: beyond this it overflows
SEED_MAX = 2**32 - 1  # numpy's seeds, which Lightning's seed_everything sets too
RATE_FLAGS = ("lr", "max_lr")


def _positive(name: str, value) -> None:
    if value is not None and not value > 0:
        raise UsageError(f"--{name} must be positive, got {value}")


def _rate(name: str, value) -> None:
    _positive(name, value)
    if value is not None and value > FLOAT32_MAX:
        raise UsageError(f"--{name} must be at most 3.4e38 (it is used as a float32), got {value}")


def check_argv_numbers(argv: list[str]) -> None:
    """`--optimizer.lr nan` (or inf): one line here; jsonargparse's own message spans a screen."""
    for i, arg in enumerate(argv):
        flag, _, value = arg.partition("=")
        if not value and i + 1 < len(argv):
            value = argv[i + 1]
        if flag.startswith("--") and flag.rsplit(".", 1)[-1] in RATE_FLAGS:
            try:
                number = float(value)
            except ValueError:
                continue
            if not math.isfinite(number):
                raise UsageError(f"{flag} must be a positive finite number, got {value}")


def check_config(config: Namespace) -> None:
    seed = config.get("seed_everything")
    if not isinstance(seed, bool) and isinstance(seed, int) and not 0 <= seed <= SEED_MAX:
        raise UsageError(f"--seed_everything must be between 0 and {SEED_MAX} (or true for a random seed), got {seed}")
    if config.get("num_threads") is not None and config.num_threads < 1:
        raise UsageError(f"--num_threads must be at least 1, got {config.num_threads}")
    trainer = config.get("trainer") or Namespace()
    max_epochs = trainer.get("max_epochs")
    if max_epochs is not None and (max_epochs == 0 or max_epochs < -1):
        raise UsageError(f"--trainer.max_epochs must be at least 1 (or -1 for no limit), got {max_epochs}")
    for section in ("optimizer", "lr_scheduler"):
        init_args = (config.get(section) or Namespace()).get("init_args") or Namespace()
        for key in RATE_FLAGS:
            _rate(f"{section}.{key}", init_args.get(key))
    _positive("data.std", config.data.get("std"))
