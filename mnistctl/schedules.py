"""Learning-rate schedules that size themselves from the Trainer, so any max_epochs/batch size works.

    mnistctl fit --trainer.max_epochs 3 --data.batch_size 256   # one-cycle re-sized automatically

`mnistctl.optimization.configure_optimizers` gives OneCycle the run's length when its `total_steps` is None.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import OneCycleLR

from mnistctl import ranges
from mnistctl.errors import UsageError


class OneCycle(OneCycleLR):
    """One-cycle schedule (warm-up then cosine annealing), stepped every batch.

    Args:
        optimizer: set by `MNISTClassifier.configure_optimizers`.
        max_lr: peak learning rate; None uses the optimizer's `lr`.
        total_steps: optimizer steps in the whole run; None sizes it from the Trainer (max_epochs x
            batches per epoch, or max_steps).
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
        if total_steps is None or not math.isfinite(total_steps) or total_steps < 1:
            raise UsageError(
                "the one-cycle learning-rate schedule needs a finite run: set --trainer.max_epochs or "
                "--trainer.max_steps, or choose another --lr_scheduler"
            )
        ranges.check("lr_scheduler.init_args.pct_start", pct_start)
        # torch divides by the warm-up's length in steps minus one: a run of a handful of batches (e.g.
        # --trainer.limit_train_batches 4) would divide by zero, so the schedule spans at least two warm-up steps.
        steps = max(int(total_steps), math.ceil(2 / pct_start))
        super().__init__(
            optimizer,
            max_lr=max_lr if max_lr is not None else optimizer.param_groups[0]["lr"],
            total_steps=steps,
            pct_start=pct_start,
            div_factor=div_factor,
            final_div_factor=final_div_factor,
        )

    def load_state_dict(self, state_dict: dict) -> None:
        if state_dict.get("total_steps") != self.total_steps:
            raise UsageError(
                f"the checkpoint's one-cycle schedule spans {state_dict.get('total_steps')} steps but this run has "
                f"{self.total_steps}: resume with the same --trainer.max_epochs and --data.batch_size, "
                "or start a new fit from its weights"
            )
        super().load_state_dict(state_dict)
