"""The Optuna search's study: kept in SQLite in the sweep folder, resumed from it, told which trials were pruned.

    mnistctl sweep search=lr_dropout hydra.sweeper.n_trials=12 trainer.max_epochs=3   # <sweep>/optuna.db
    optuna-dashboard sqlite:///$PWD/sweeps/<time>/optuna.db        # pip install 'mnistctl[dashboard]'
    mnistctl sweep --resume sweeps/<time>                          # finished trials are not asked again

Hydra's Optuna sweeper (1.3) loads its study from hydra.sweeper.storage, asks n_trials new trials and tells
each job's return value as COMPLETE. `StudySweeper` is that sweeper with what a persisted, pruned search needs;
`in_place()` puts it in place of the plugin's implementation for the duration of mnistctl's multirun:
- n_trials is the size of the study: a resumed sweep asks only for the trials not finished yet (COMPLETE,
  PRUNED and FAIL count), with its sampler reseeded (a seeded one would repeat its first trials). A trial the
  killed sweep left RUNNING is closed (FAIL, marked interrupted, not counted) and asked again with the same
  params, so its job finds its folder and continues from last.ckpt; so is a trial whose fit a signal stopped
  while the sweep went on (told FAIL, marked interrupted, never COMPLETE with a partial score);
- each trial holds its job's key (a system attr): the job finds its trial by it (`find_trial`) and its fit
  reports val/acc to it after every epoch (trial_reporter.py), where the pruner may stop it;
- a job its pruner stopped is told PRUNED. Jobs never create or load the study: only trials by id.
Only optuna and sqlalchemy are imported: no torch.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from hydra_plugins.hydra_optuna_sweeper import _impl
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides
from omegaconf import OmegaConf

from mnistctl.errors import UsageError
from mnistctl.layout import STUDY_DB
from mnistctl.sweep.job_folder import job_key
from mnistctl.sweep.settings import storage_refusal

log = logging.getLogger(__name__)
KEY_ATTR = "mnistctl_job_key"  # the job's key (job_folder.job_key) on its trial
INTERRUPTED_ATTR = "mnistctl_interrupted"  # a trial closed unfinished (FAIL): not counted, asked again
FIT_STOPPED_ATTR = "mnistctl_fit_stopped"  # ... because a signal stopped its fit while the sweep went on
REASKED_ATTR = "mnistctl_reasked"  # on the study: the numbers of the stopped trials asked again already
PRUNED_ATTR = "mnistctl_pruned_after_epoch"  # set by the fit when its pruner stopped it
DEFAULT_STUDY_NAME = "mnistctl"


def default_storage(sweep_dir: Path) -> str:
    return f"sqlite:///{Path(sweep_dir).resolve() / STUDY_DB}"


def check_storage(url: str, study_name: str, sweep_dir: Path | None, resume: bool) -> None:
    """Before anything is claimed: the storage opens, and a resumed sweep's study is in it. One line, or nothing."""
    import optuna

    if resume and url == default_storage(sweep_dir) and not (sweep_dir / STUDY_DB).is_file():
        raise UsageError(
            f"{sweep_dir / STUDY_DB} is missing: --resume of a search continues the study its sweep kept there; "
            "start a new sweep instead"
        )
    try:
        storage = optuna.storages.get_storage(url)
        if resume:
            optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        raise UsageError(f"hydra.sweeper.storage={url} holds no study {study_name!r} to resume") from None
    except Exception as err:  # noqa: BLE001 - sqlalchemy, alembic and optuna raise many kinds
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(storage_refusal(url, reason)) from None


def finished(trial) -> bool:
    from optuna.trial import TrialState

    if trial.state == TrialState.FAIL:
        return not trial.system_attrs.get(INTERRUPTED_ATTR)
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED)


def reopen_interrupted(study) -> int:
    """Ask again, params and all, the trials left unfinished: those a killed sweep left running (closed here)
    and those whose fit a signal stopped (closed by `_tell`), once each; how many."""
    from optuna.trial import TrialState

    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        study._storage.set_trial_system_attr(trial._trial_id, INTERRUPTED_ATTR, True)
        study._storage.set_trial_state(trial._trial_id, TrialState.FAIL)
    reasked = study._storage.get_study_system_attrs(study._study_id).get(REASKED_ATTR, [])
    stopped = [
        trial
        for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if trial.system_attrs.get(FIT_STOPPED_ATTR) and trial.number not in reasked
    ]
    for trial in [*stale, *stopped]:
        study.enqueue_trial(trial.params)
    if stopped:
        study._storage.set_study_system_attr(study._study_id, REASKED_ATTR, [*reasked, *(t.number for t in stopped)])
    return len(stale) + len(stopped)


def find_trial(storage: str, study_name: str, key: str) -> tuple[int, int] | None:
    """(trial id, trial number) of the running trial whose job has `key`, or None (not a search job)."""
    import optuna
    from optuna.trial import TrialState

    study = optuna.load_study(study_name=study_name, storage=storage)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.system_attrs.get(KEY_ATTR) == key:
            return trial._trial_id, trial.number
    return None


def pruned_after(storage: str, trial_id: int) -> int | None:
    """The epoch after which the fit's pruner stopped this trial, or None."""
    import optuna

    return optuna.storages.get_storage(storage).get_trial(trial_id).system_attrs.get(PRUNED_ATTR)


def make_pruner(spec: dict):
    """An optuna.pruners class from the `pruner` node ({_target_: optuna.pruners.X, arg: value}); only that
    module's classes: the node names code to run."""
    import optuna

    spec = dict(spec or {})
    target = str(spec.pop("_target_", "optuna.pruners.NopPruner"))
    module, _, name = target.rpartition(".")
    cls = getattr(optuna.pruners, name, None) if module == "optuna.pruners" else None
    if not isinstance(cls, type) or not issubclass(cls, optuna.pruners.BasePruner):
        raise ValueError(
            f"pruner._target_={target} is not a pruner of optuna.pruners (e.g. optuna.pruners.MedianPruner)"
        )
    try:
        return cls(**spec)
    except (TypeError, ValueError) as err:
        raise ValueError(f"pruner {name}({', '.join(f'{k}={v}' for k, v in spec.items())}): {err}") from None


class StudySweeper(OptunaSweeperImpl):
    def sweep(self, arguments: list[str]) -> None:
        import optuna
        from optuna.trial import TrialState

        if not isinstance(self.sampler, optuna.samplers.BaseSampler):  # GridSampler: Hydra's own way
            return super().sweep(arguments)
        self._process_searchspace_config()
        space, fixed = create_params_from_overrides([*self._parse_sweeper_params_config(), *arguments])
        space = {**(self.search_space_distributions or {}), **space}
        for name in fixed:
            space.pop(name, None)
        directions = self._get_directions()
        study = optuna.create_study(
            study_name=self.study_name,
            storage=self.storage,
            sampler=self.sampler,
            directions=directions,
            load_if_exists=True,
        )
        if study.get_trials(deepcopy=False):
            # A seeded sampler in a new process starts its random stream again: it would ask the first
            # trials' params again (their jobs then skipped as done). A resumed study draws afresh.
            self.sampler.reseed_rng()
        again = reopen_interrupted(study)
        done = sum(finished(t) for t in study.get_trials(deepcopy=False))
        to_go = max(0, self.n_trials - done)
        log.info("study %s in %s: %d trials finished, %d to go", study.study_name, self.storage, done, to_go)
        if again:
            log.info("%d trial(s) interrupted by the killed sweep are asked again", again)
        while to_go > 0:
            trials = [study.ask() for _ in range(min(to_go, self.n_jobs))]
            overrides = self._configure_trials(trials, space, fixed)
            for trial, job in zip(trials, overrides, strict=True):
                study._storage.set_trial_system_attr(trial._trial_id, KEY_ATTR, job_key(list(job)))
            returns = self.launcher.launch(overrides, initial_job_idx=trials[0].number)
            failures = [err for trial, ret in zip(trials, returns, strict=True) if (err := _tell(study, trial, ret))]
            if len(failures) / len(returns) > self.max_failure_rate:
                log.error(
                    "%d of %d trials failed (max_failure_rate=%s)", len(failures), len(returns), self.max_failure_rate
                )
                for ret in returns:
                    ret.return_value  # noqa: B018 - raises the job's own exception, as Hydra's sweeper does
            to_go -= len(trials)
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if len(directions) == 1 and complete:
            best = study.best_trial
            log.info("best trial %d: %s, value %s", best.number, best.params, best.value)
            results = {"name": "optuna", "best_params": best.params, "best_value": best.value}
            OmegaConf.save(OmegaConf.create(results), f"{self.config.hydra.sweep.dir}/optimization_results.yaml")


def _tell(study, trial, ret) -> Exception | None:
    """Tell the trial how its job ended: PRUNED, COMPLETE with its value, or FAIL (returned). A job whose fit
    was stopped (a signal) is unfinished, not a result: FAIL marked interrupted, neither counted nor learnt
    from, asked again by the next --resume, whose job continues from its last.ckpt."""
    from optuna.trial import TrialState

    try:
        value = ret.return_value  # raises what the job raised
        status = (getattr(value, "record", None) or {}).get("status")
        if status == "interrupted":
            for attr in (INTERRUPTED_ATTR, FIT_STOPPED_ATTR):
                study._storage.set_trial_system_attr(trial._trial_id, attr, True)
            study.tell(trial, state=TrialState.FAIL)
            log.warning("trial %d interrupted: 'mnistctl sweep --resume' asks it again", trial.number)
        elif status == "pruned":
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, values=[float(value)], state=TrialState.COMPLETE)  # NaN (a failed fit): ValueError
        return None
    except Exception as err:  # noqa: BLE001 - the trial fails; the sweeper's max_failure_rate decides
        study.tell(trial, state=TrialState.FAIL)
        log.warning("trial %d failed: %s", trial.number, err)
        return err


@contextlib.contextmanager
def in_place():
    """Hydra's OptunaSweeper builds its implementation from `_impl.OptunaSweeperImpl` when instantiated: this
    one instead, for one multirun."""
    original = _impl.OptunaSweeperImpl
    _impl.OptunaSweeperImpl = StudySweeper
    try:
        yield
    finally:
        _impl.OptunaSweeperImpl = original
