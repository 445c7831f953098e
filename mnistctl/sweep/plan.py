"""Plan a sweep before anything trains: expand the jobs as Hydra's sweeper will, compose and check each one.

    mnistctl sweep --dry-run criterion=ce,mse model.dropout_ratio=0.1,0.3

The same plan is made by the dry run and, first, by every real sweep, which starts nothing when it
finds a problem, so the two cannot disagree. For each job: its override keys (checks.py), then Hydra's
composition exactly as the multirun does it and the values of the resulting job.yaml (compose.py). For
a sampling sweeper (Optuna) the jobs are chosen while it runs: the fixed part is composed and checked,
and so is each dimension of the search space at its ends (interval) or at each value (choice, range).
Hydra composition and the generated key list only: never torch, so a dry run takes about a second.
Must be called inside `compose.hydra_session(tree)`.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

from mnistctl.errors import UsageError
from mnistctl.sweep.checks import CONFIG_NAME, job_problems, read_yaml
from mnistctl.sweep.compose import compose_job, compose_master
from mnistctl.sweep.keys import KEYS_NAME, load_keys
from mnistctl.sweep.overrides import one_line, parse, spell_out_params
from mnistctl.sweep.requeue import launcher_defaults
from mnistctl.sweep.settings import check_launcher, check_sweeper


@dataclass
class Job:
    overrides: list[str]
    problems: list[str] = field(default_factory=list)
    config: dict | None = None  # the job's LightningCLI config, as job.yaml will hold it


@dataclass
class Plan:
    overrides: list[str]  # what the user asked for (hydra.sweeper.params={...} spelt out)
    sweeper: str  # hydra/sweeper choice: basic, optuna
    launcher: str  # hydra/launcher choice: basic, joblib, submitit_local, submitit_slurm
    parallel: int  # jobs that run at the same time on this machine (threads per job = cores // parallel)
    jobs: list[Job]  # basic sweeper: every job; other sweepers: one entry for what is fixed up front
    search: dict[str, str] = field(default_factory=dict)  # optuna: key -> distribution
    n_trials: int | None = None
    extra_overrides: list[str] = field(default_factory=list)  # what mnistctl adds for Hydra
    sweep_dir: Path | None = None  # the folder hydra.sweep.dir names, when the overrides choose one
    master: object = None  # the composed sweep config (its `hydra` node is what --cfg hydra prints)

    @property
    def problems(self) -> list[str]:
        return [p for job in self.jobs for p in job.problems]


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def make_plan(overrides: list[str], tree: Path) -> Plan:
    """The sweep's jobs (or search space) and every problem with them, before anything trains."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf import OmegaConf

    loader = GlobalHydra.instance().config_loader()
    parser = OverridesParser.create(config_loader=loader)
    overrides = spell_out_params(overrides, parser)
    parsed = parse(overrides, parser)
    options = functools.cache(loader.get_group_options)  # each call copies Hydra's whole config repository
    keys = load_keys(tree / KEYS_NAME)
    check = functools.partial(job_problems, keys=keys, options=options, tree=tree)
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    if check(fixed):  # every job has these problems: report them per job, before Hydra's terser message
        try:
            jobs = [Job(job, check(job)) for job in BasicSweeper.split_arguments(parsed, None)[0]]
        except HydraException:
            jobs = []
        if not any(job.problems for job in jobs):
            jobs = [Job(fixed, check(fixed))]
        return Plan(overrides, "unchecked", "unchecked", 1, jobs)
    master = compose_master(overrides)
    hydra = master.hydra
    sweeper, launcher = hydra.runtime.choices["hydra/sweeper"], hydra.runtime.choices["hydra/launcher"]
    _one_task_per_job(hydra, launcher)
    check_sweeper(master, sweeper)  # settings.py: what Optuna and joblib would refuse only once they run
    check_launcher(hydra, launcher, cores())
    sweep_dir = _chosen_sweep_dir(hydra, tree)
    # The sweeper's params first, then the command line's task overrides: what every Hydra sweeper sweeps.
    params = [f"{k}={v}" for k, v in (hydra.sweeper.get("params") or {}).items()]
    swept = parse([*params, *OmegaConf.to_container(hydra.overrides.task, resolve=False)], parser)  # as multirun

    def checked(job: list[str], number: int, threads: int) -> Job:
        problems = check(job)
        if problems:
            return Job(job, problems)
        config, problems = compose_job(master, job, number, threads, keys)
        return Job(job, problems, config)

    if sweeper == "basic":
        try:
            batches = BasicSweeper.split_arguments(swept, hydra.sweeper.max_batch_size)
        except HydraException as err:
            raise UsageError(f"bad override: {one_line(err)}; the basic sweeper takes a,b / range() / glob()") from None
        expanded = [job for batch in batches for job in batch]
        if not expanded:
            empty = [o for o in overrides if "glob(" in o or "range(" in o] or overrides
            raise UsageError(
                f"bad override: {' '.join(empty)} expands to no jobs (a glob() that matches no option or an empty "
                "range()); see the options with 'mnistctl sweep --help'"
            )
        parallel = _parallel(hydra, launcher, len(batches[0]))
        threads = _threads(parallel)
        jobs = [checked(job, number, threads) for number, job in enumerate(expanded)]
        _flag_duplicates(jobs)
        extra = launcher_defaults(launcher, overrides)
        return Plan(
            overrides, sweeper, launcher, parallel, jobs, extra_overrides=extra, sweep_dir=sweep_dir, master=master
        )
    # Optuna (or another sampling sweeper): jobs are chosen while it runs; check what can be known now.
    search = {o.get_key_element(): o.input_line.split("=", 1)[1] for o in swept if o.is_sweep_override()}
    fixed = [o.input_line for o in swept if not o.is_sweep_override()]
    n_trials = hydra.sweeper.get("n_trials")
    if n_trials is not None and n_trials < 1:
        raise UsageError(f"bad override: hydra.sweeper.n_trials={n_trials} runs no trial; give 1 or more")
    extra = []
    batch = hydra.sweeper.get("n_jobs") or 1
    if launcher == "joblib" and not any(o.get_key_element() == "hydra.sweeper.n_jobs" for o in parsed):
        batch = _parallel(hydra, launcher, n_trials or 1)  # ask as many trials at once as joblib runs
        extra.append(f"hydra.sweeper.n_jobs={batch}")
    parallel = _parallel(hydra, launcher, min(batch, n_trials or 1))
    threads = _threads(parallel)
    job = checked(fixed, 0, threads)
    for probe in _probes(search, parser):
        found = checked([*fixed, probe], 0, threads).problems
        job.problems += [f"{probe} (a value of the search space): {p}" for p in found if p not in job.problems]
    if sweeper == "optuna" and not any(o.get_key_element() == "hydra.sweeper.direction" for o in parsed):
        extra.append("hydra.sweeper.direction=maximize")  # jobs return their best val/acc: higher is better
    extra += launcher_defaults(launcher, overrides)
    return Plan(overrides, sweeper, launcher, parallel, [job], search, n_trials, extra, sweep_dir, master)


def _probes(search: dict[str, str], parser) -> list[str]:
    """Overrides that set each search dimension to its ends (interval) or to each of its values."""
    from hydra.core.override_parser.types import IntervalSweep

    probes = []
    for key, text in search.items():
        (override,) = parse([f"{key}={text}"], parser)
        value = override.value()
        if isinstance(value, IntervalSweep):
            probes += [f"{key}={value.start}", f"{key}={value.end}"]
        elif override.is_discrete_sweep():
            probes += [f"{key}={v}" for v in override.sweep_string_iterator()]
    return probes


def _chosen_sweep_dir(hydra, tree: Path) -> Path | None:
    """The folder hydra.sweep.dir names, however it was set (=, +, ++, a dict, an interpolation), or None
    when it is still sweep.yaml's default (mnistctl then picks a fresh sweeps/<date>_<time>)."""
    from omegaconf import OmegaConf

    default = read_yaml(tree / f"{CONFIG_NAME}.yaml")["hydra"]["sweep"]["dir"]
    if OmegaConf.to_container(hydra.sweep, resolve=False).get("dir") == default:
        return None
    try:
        value = hydra.sweep.dir
    except Exception as err:  # noqa: BLE001 - any OmegaConf resolution error is the user's value
        raise UsageError(f"bad override: hydra.sweep.dir cannot be resolved: {one_line(err)}") from None
    if not isinstance(value, str) or not value:
        raise UsageError(f"bad override: hydra.sweep.dir must name a folder, got {value!r}")
    return Path(value).expanduser().resolve()


def _flag_duplicates(jobs: list[Job]) -> None:
    """Jobs are identified by their overrides (for --resume), so two jobs may not share them (a=1,1)."""
    from mnistctl.sweep.job_folder import job_key

    first: dict[str, int] = {}
    for number, job in enumerate(jobs):
        key = job_key(job.overrides)
        if key in first:
            job.problems.append(f"the same overrides as job #{first[key]} ({key}); give each value once")
        first.setdefault(key, number)


def _threads(parallel: int) -> int:
    from mnistctl.sweep.job import threads_per_job

    return threads_per_job(parallel)


def _one_task_per_job(hydra, launcher: str) -> None:
    """A sweep job is one `mnistctl fit` process. submitit runs the job function once per task: more tasks or
    nodes per job would start that many fits of each job, all writing one job folder."""
    if not launcher.startswith("submitit"):
        return
    for key in ("tasks_per_node", "nodes"):
        value = hydra.launcher.get(key)
        if value is not None and value != 1:
            raise UsageError(
                f"bad override: hydra.launcher.{key}={value} would start {value} fits of every job in one job "
                "folder; a sweep job is one process (give it more with hydra.launcher.cpus_per_task or "
                "gpus_per_node; DDP over several tasks: srun mnistctl fit, see the README)"
            )


def _parallel(hydra, launcher: str, batch: int) -> int:
    if launcher == "joblib":
        n = int(hydra.launcher.n_jobs)
        n = cores() + 1 + n if n < 0 else n  # joblib: -1 is every core (settings.py refused fewer than 1)
    elif launcher == "submitit_local":
        n = batch  # the local executor starts every job of a batch at once
    else:
        n = 1  # basic runs one job at a time; submitit_slurm gives each job its own allocation
    return max(1, min(n, batch))
