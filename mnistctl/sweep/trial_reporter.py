"""Pruning inside a search job's fit: report val/acc to the job's Optuna trial after every epoch, stop when
the pruner says so.

    mnistctl sweep search=lr_dropout hydra.sweeper.n_trials=12 trainer.max_epochs=4            # median pruner
    mnistctl sweep search=lr_dropout pruner=none ...        # off; pruner=hyperband|percentile|median
    mnistctl sweep search=lr_dropout pruner.n_startup_trials=2 pruner.n_warmup_steps=1 ...

The sweep's job (job.py) finds its trial (study.py) and passes it to its `mnistctl fit` in TRIAL_ENV: the
storage URL, the trial id and the pruner (the composed `pruner` node: an optuna.pruners class and its
arguments). Only that environment turns this on: `cd <job> && mnistctl fit --config job.yaml` by hand
reports to no study. A pruned fit ends as an early-stopped one does (checkpoints, test of the best) and
marks its trial; the sweeper then tells the trial PRUNED and the summary shows the job as `pruned`.
"""

from __future__ import annotations

import json
import logging
import os

from pytorch_lightning import Callback

from mnistctl.sweep.job import TRIAL_ENV

log = logging.getLogger(__name__)
MONITOR = "val/acc"  # what the search maximises (job.JobResult), so what is reported and pruned on


def trial_callbacks(subcommand: str) -> list[Callback]:
    """The reporter for a fit that a search job started, else nothing."""
    found = os.environ.get(TRIAL_ENV)
    return [TrialReporter(**json.loads(found))] if found and subcommand == "fit" else []


class TrialReporter(Callback):
    def __init__(self, storage: str, trial_id: int, pruner: dict) -> None:
        self.storage_url, self.trial_id, self.pruner_spec = storage, trial_id, pruner
        self.trial = None

    def on_fit_start(self, trainer, pl_module) -> None:
        import optuna  # here, not at the top: every `mnistctl fit` imports this module, few of them report

        from mnistctl.sweep.study import make_pruner

        storage = optuna.storages.get_storage(self.storage_url)
        study_id = storage.get_study_id_from_trial_id(self.trial_id)
        study = optuna.load_study(
            study_name=storage.get_study_name_from_id(study_id),
            storage=storage,
            pruner=make_pruner(self.pruner_spec),
        )
        self.trial = optuna.trial.Trial(study, self.trial_id)

    def on_validation_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get(MONITOR)
        if self.trial is None or trainer.sanity_checking or value is None or trainer.global_rank != 0:
            return
        epoch = trainer.current_epoch
        self.trial.report(float(value), step=epoch)
        if self.trial.should_prune():
            from mnistctl.sweep.study import PRUNED_ATTR

            self.trial.study._storage.set_trial_system_attr(self.trial_id, PRUNED_ATTR, epoch)
            log.info("pruned by the search after epoch %d (%s %.4f)", epoch, MONITOR, float(value))
            trainer.should_stop = True
