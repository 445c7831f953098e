"""Range checks on a parsed LightningCLI config, run before anything is built.

    mnistctl fit --optimizer.lr -0.1      # -> mnistctl: error: --optimizer.lr must be positive and finite, got -0.1

Types are checked by jsonargparse; values that are the right type but meaningless (a negative
learning rate, zero epochs) are checked by the rules in mnistctl/ranges.py, the same rules
`mnistctl sweep --dry-run` applies to every job, so the user gets one line naming the flag.
"""

from __future__ import annotations

from jsonargparse import Namespace

from mnistctl.ranges import check_tree


def check_config(config: Namespace) -> None:
    check_tree(config.as_dict())
