"""`--trainer.limit_predict_batches 1` is one batch on every machine: int before float in number options.

    mnistctl predict --ckpt_path best --trainer.limit_predict_batches 1     # 256 rows, not 10,000

Lightning reads `limit_*_batches`, `overfit_batches` and `val_check_interval` as a number of batches when
given an int and as a fraction when given a float: 1 is one batch, 1.0 is all of them. The Trainer types
them `Optional[Union[int, float]]` and jsonargparse tries a union's types in order, so "1" should become
the int 1. But `typing` caches unions and holds `Union[int, float]` equal to `Union[float, int]`: when
jsonargparse wraps a type in `Optional[...]`, the cache can hand back an equal, float-first union that
another module made earlier (lightning_fabric has `Optional[Union[float, int]]`), and "1" then parses as
1.0, every batch. What the cache holds depends on what was imported, and in which order: on the CUDA
machine of issue 18 `predict --trainer.limit_predict_batches 1` wrote all 10,000 rows. Creating that
union before the parser is built reproduces it on any machine (tests/test_int_flags.py).
"""

from __future__ import annotations

import types
import typing
from functools import reduce
from operator import or_


def int_before_float(parser) -> None:
    """Make every option typed as a union of int and float (and None) try int first.

    The new union is built with `|` (types.UnionType), which typing does not cache, so it keeps its order.
    """
    for action in parser._actions:
        typehint = getattr(action, "_typehint", None)  # jsonargparse's ActionTypeHint keeps the type here
        if typing.get_origin(typehint) not in (typing.Union, types.UnionType):
            continue
        args = typing.get_args(typehint)
        if int in args and float in args and args.index(float) < args.index(int):
            action._typehint = reduce(or_, [int, *(a for a in args if a is not int)])
