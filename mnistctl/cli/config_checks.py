"""Range checks on a parsed LightningCLI config, run before anything is built.

    mnistctl fit --optimizer.lr -0.1      # -> mnistctl: error: --optimizer.lr must be a positive finite number ...

Types are checked by jsonargparse; values that are the right type but meaningless (a negative
learning rate, zero epochs) are checked by the rules in mnistctl/ranges.py, the same rules
`mnistctl sweep --dry-run` applies to every job, so the user gets one line naming the flag.
"""

from __future__ import annotations

from jsonargparse import Namespace

from mnistctl.ranges import check, check_tree, flag

RATE_KEYS = ("optimizer.init_args.lr", "lr_scheduler.init_args.max_lr")


def check_argv_numbers(argv: list[str]) -> None:
    """`--optimizer.lr nan` (or inf): the rule's one line here; jsonargparse's own message spans a screen."""
    rate_flags = {flag(key): key for key in RATE_KEYS}
    for i, arg in enumerate(argv):
        name, _, value = arg.partition("=")
        if name not in rate_flags:
            continue
        if not value and i + 1 < len(argv):
            value = argv[i + 1]
        try:
            check(rate_flags[name], float(value))
        except ValueError:  # not a number: jsonargparse's type check says so
            continue


def check_config(config: Namespace) -> None:
    check_tree(config.as_dict())
