"""The allowed range of each numeric setting, in one torch-free place.

    mnistctl fit --model.dropout_ratio 1.5            # -> --model.dropout_ratio must be in [0, 1), got 1.5
    mnistctl sweep --dry-run model.dropout_ratio=1.5  # -> model.dropout_ratio must be in [0, 1), got 1.5

The CLI checks the parsed config here before anything is built (cli/config_checks.py), the model, the
DataModule and the one-cycle schedule guard their own arguments with the same rules (so plain-Python
use gets the same message), and `mnistctl sweep` checks every job's composed config here before any
job starts (sweep/values.py). Types are not checked here: jsonargparse checks them for the CLI and the
generated key list for the sweep.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mnistctl.errors import UsageError

TRAIN_SIZE = 60_000  # images in MNIST's training split, of which data.val_size are held out
FLOAT32_MAX = 3.4028234663852886e38  # a learning rate is used in float32: beyond this it overflows
SEED_MAX = 2**32 - 1  # numpy's seeds, which Lightning's seed_everything sets too


@dataclass(frozen=True)
class Rule:
    ok: Callable[[Any], bool]
    text: str  # what the value must be, completing "<key> ..."


AT_LEAST_ONE = Rule(lambda v: v >= 1, "must be at least 1")
POSITIVE = Rule(lambda v: v > 0, "must be positive")
RATE = Rule(lambda v: 0 < v <= FLOAT32_MAX, "must be a positive finite number (at most 3.4e38, a float32)")

# Keys of the LightningCLI config tree (as in `mnistctl fit --print_config`); None always passes (unset).
RULES: dict[str, Rule] = {
    "seed_everything": Rule(lambda v: 0 <= v <= SEED_MAX, f"must be between 0 and {SEED_MAX} (or true: random)"),
    "num_threads": AT_LEAST_ONE,
    "trainer.max_epochs": Rule(lambda v: v >= 1 or v == -1, "must be at least 1 (or -1 for no limit)"),
    "model.dropout_ratio": Rule(lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "data.batch_size": AT_LEAST_ONE,
    "data.eval_batch_size": AT_LEAST_ONE,
    "data.val_size": Rule(lambda v: 0 < v < TRAIN_SIZE, f"must be between 1 and {TRAIN_SIZE - 1}"),
    "data.std": POSITIVE,
    "data.augment_shift": Rule(lambda v: 0 <= v <= 8, "must be between 0 and 8 pixels"),
    "optimizer.init_args.lr": RATE,
    "lr_scheduler.init_args.max_lr": RATE,
    "lr_scheduler.init_args.pct_start": Rule(lambda v: 0 < v < 1, "must be between 0 and 1 (exclusive)"),
}


def flag(key: str) -> str:
    """The command-line flag of a config key: --optimizer.lr for optimizer.init_args.lr (LightningCLI takes both)."""
    return "--" + key.replace(".init_args.", ".")


def problem(key: str, value: Any) -> str | None:
    """'<key> must be ..., got <value>' when `value` breaks the rule for `key`, else None."""
    rule = RULES.get(key)
    if rule is None or value is None or isinstance(value, bool):
        return None
    try:
        if rule.ok(value):
            return None
    except TypeError:  # not a number: the type check reports it (jsonargparse, or the sweep's key list)
        return None
    return f"{key} {rule.text}, got {value}"


def check(key: str, value: Any) -> None:
    """Raise UsageError naming the flag, e.g. '--model.dropout_ratio must be in [0, 1), got 1.5'."""
    found = problem(key, value)
    if found:
        raise UsageError(flag(key) + found[len(key) :])


def tree_problems(tree: Mapping) -> list[str]:
    """Every broken rule in a config tree (nested dicts), as 'key ... got value' lines."""
    found = []
    for key in RULES:
        node: Any = tree
        for part in key.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if (line := problem(key, node)) is not None:
            found.append(line)
    return found


def check_tree(tree: Mapping) -> None:
    """Raise UsageError for the first broken rule, naming its flag."""
    for line in tree_problems(tree):
        key = line.split(" ", 1)[0]
        raise UsageError(flag(key) + line[len(key) :])
