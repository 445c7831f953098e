"""Learning-rate schedules that size themselves from the Trainer, so any max_epochs/batch size works.

mnistctl fit --trainer.max_epochs 3 --data.batch_size 256   # one-cycle re-sized automatically
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import OneCycleLR

from mnistctl import ranges
from mnistctl.errors import UsageError


class OneCycle(OneCycleLR):
    """One-cycle schedule (warm-up then cosine annealing), stepped every batch.

    LightningCLI builds schedulers before the Trainer knows how many steps it will run, so this one
    waits: `start(total_steps)` is called from the CLI's `configure_optimizers` with the Trainer's
    `estimated_stepping_batches` (max_epochs x batches per epoch, or max_steps).

    Args:
        optimizer: set by the CLI.
        max_lr: peak learning rate; None uses the optimizer's `lr`.
        total_steps: optimizer steps in the whole run; None sizes it from the Trainer.
        pct_start: fraction of the steps spent warming up.
        div_factor: start learning rate is max_lr / div_factor.
        final_div_factor: final learning rate is the start one / final_div_factor.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | None = None,
        total_steps: int | None = None,
        pct_start: float = 0.25,
        div_factor: float = 25.0,
        final_div_factor: float = 1e3,
    ) -> None:
        self.optimizer = optimizer  # LRScheduler.state_dict leaves `optimizer` out; keep it out of checkpoints
        self._pending = dict(
            max_lr=max_lr if max_lr is not None else optimizer.param_groups[0]["lr"],
            total_steps=total_steps,
            pct_start=pct_start,
            div_factor=div_factor,
            final_div_factor=final_div_factor,
        )
        if total_steps is not None:
            self.start(total_steps)

    def start(self, estimated_steps: float) -> None:
        """Initialise the schedule for `total_steps` (given) or `estimated_steps` (from the Trainer)."""
        if hasattr(self, "last_epoch"):  # already started
            return
        kwargs = self._pending
        steps = kwargs["total_steps"] or estimated_steps
        if not math.isfinite(steps) or steps < 1:
            raise UsageError(
                "the one-cycle learning-rate schedule needs a finite run: set --trainer.max_epochs or "
                "--trainer.max_steps, or choose another --lr_scheduler"
            )
        ranges.check("lr_scheduler.init_args.pct_start", kwargs["pct_start"])
        # torch divides by the warm-up's length in steps minus one: a run of a handful of batches (e.g.
        # --trainer.limit_train_batches 4) would divide by zero, so the schedule spans at least two warm-up steps.
        steps = max(int(steps), math.ceil(2 / kwargs["pct_start"]))
        super().__init__(self.optimizer, **{**kwargs, "total_steps": steps})

    def load_state_dict(self, state_dict: dict) -> None:
        if state_dict.get("total_steps") != self.total_steps:
            raise UsageError(
                f"the checkpoint's one-cycle schedule spans {state_dict.get('total_steps')} steps but this run has "
                f"{self.total_steps}: resume with the same --trainer.max_epochs and --data.batch_size, "
                "or start a new fit from its weights"
            )
        super().load_state_dict(state_dict)
