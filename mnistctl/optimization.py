"""The recipe's optimizer and learning-rate schedule, and the one function that builds and wires them.

    python -c "from mnistctl import optimization as o; print(o.RECIPE_OPTIMIZER, o.RECIPE_LR_SCHEDULER)"

Both are given as LightningCLI gives them: `{"class_path": ..., "init_args": {...}}`. `mnistctl fit`
hands `MNISTClassifier` its `--optimizer` and `--lr_scheduler`; a model built in plain Python keeps
the recipe below (what configs/base.yaml sets; tests/test_optimization.py keeps the two equal), and
`MNISTClassifier.configure_optimizers` builds either through `configure_optimizers` here, once the
Trainer is known, so a schedule can be sized from the run.
"""

from __future__ import annotations

import copy
import importlib
from typing import Any

from torch.optim.lr_scheduler import ReduceLROnPlateau

from mnistctl.schedules import OneCycle

RECIPE_OPTIMIZER: dict[str, Any] = {"class_path": "torch.optim.Adam", "init_args": {"lr": 0.003, "fused": True}}
RECIPE_LR_SCHEDULER: dict[str, Any] = {"class_path": "mnistctl.schedules.OneCycle", "init_args": {"pct_start": 0.25}}
DEFAULT_PLATEAU_MONITOR = "val/loss"


def _class(class_path: str) -> type:
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def configure_optimizers(module, optimizer: dict, lr_scheduler: dict | None, steps_done: int = 0) -> dict:
    """What `LightningModule.configure_optimizers` returns for this optimizer and schedule.

    OneCycle without `total_steps` spans the Trainer's estimated optimizer steps (less `steps_done`, those
    a resumed run took before its schedule restarted) and is stepped every
    batch; ReduceLROnPlateau watches its `monitor` (Lightning's subclass has one) or val/loss; any other
    scheduler steps once per epoch, as Lightning's default.
    """
    optimizer_init = copy.deepcopy(dict(optimizer.get("init_args") or {}))
    built = _class(optimizer["class_path"])(module.parameters(), **optimizer_init)
    if lr_scheduler is None:
        return {"optimizer": built}
    scheduler_class = _class(lr_scheduler["class_path"])
    init_args = copy.deepcopy(dict(lr_scheduler.get("init_args") or {}))
    if issubclass(scheduler_class, OneCycle) and init_args.get("total_steps") is None:
        init_args["total_steps"] = module.trainer.estimated_stepping_batches - steps_done
    scheduler = scheduler_class(built, **init_args)
    if isinstance(scheduler, OneCycle):
        return {"optimizer": built, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
    if isinstance(scheduler, ReduceLROnPlateau):
        monitor = getattr(scheduler, "monitor", None) or DEFAULT_PLATEAU_MONITOR
        return {"optimizer": built, "lr_scheduler": {"scheduler": scheduler, "monitor": monitor}}
    return {"optimizer": built, "lr_scheduler": scheduler}
