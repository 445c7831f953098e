"""Plan a sweep before anything trains: parse the overrides, expand the jobs, check every key and option.

    mnistctl sweep --dry-run criterion=ce,mse model.dropout_ratio=0.1,0.3

Uses Hydra's own override parser and BasicSweeper expansion, the sweep config tree and the generated
key list (configs/sweep/lightning_keys.yaml); never torch or Lightning, so a dry run takes a second.
Must be called inside `hydra_session()`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import yaml

from mnistctl.errors import UsageError
from mnistctl.sweep.keys import CLASS_SECTIONS, DEFAULTS_FILE, GROUP_SECTIONS, SWEEP_DIR, Keys, load_keys

CONFIG_NAME = "sweep"
JOB_NAME = "mnistctl-sweep"


@contextmanager
def hydra_session() -> Iterator[None]:
    """Hydra's compose API on the packaged sweep tree; Hydra never changes the working directory."""
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(SWEEP_DIR), version_base="1.3", job_name=JOB_NAME):
        yield


@dataclass
class Job:
    overrides: list[str]
    problems: list[str] = field(default_factory=list)


@dataclass
class Plan:
    overrides: list[str]  # what the user asked for
    sweeper: str  # hydra/sweeper choice: basic, optuna
    launcher: str  # hydra/launcher choice: basic, joblib, submitit_local, submitit_slurm
    parallel: int  # jobs that run at the same time on this machine (threads per job = cores // parallel)
    jobs: list[Job]  # basic sweeper: every job; other sweepers: one entry for what is fixed up front
    search: dict[str, str] = field(default_factory=dict)  # optuna: key -> distribution
    n_trials: int | None = None
    extra_overrides: list[str] = field(default_factory=list)  # what mnistctl adds for Hydra

    @property
    def problems(self) -> list[str]:
        return [p for job in self.jobs for p in job.problems]


def one_line(err: Exception) -> str:
    """Hydra's multi-line messages as one line, keeping the list of available options."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    options = [line for line in lines[1:] if not line.startswith(("Available", "Config search", "provider="))]
    available = any(line.startswith("Available options") for line in lines)
    head = lines[0].split(" expecting {")[0]
    if head.startswith("Could not override"):  # the reason is in the cause, e.g. "Key 'n_job' not in ..."
        cause = str(err.__cause__ or "no such key").strip().splitlines() or ["no such key"]
        head = f"{head.rstrip('.')}: {cause[0]}"
    if available:
        return f"{head} (options: {', '.join(options)})"
    rest = [line for line in lines[1:] if not line.startswith(("See https://", "To append"))]
    return " ".join([head, *rest[:1]])


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def make_plan(overrides: list[str]) -> Plan:
    """The sweep's jobs (or search space) and every problem with them, before anything trains."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    loader = GlobalHydra.instance().config_loader()
    parsed = _parse(overrides, loader)
    options = functools.cache(loader.get_group_options)  # each call copies Hydra's whole config repository
    keys = load_keys()
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    fixed_problems = job_problems(fixed, keys, options)
    if fixed_problems:  # every job has them; Hydra could not compose even the common part
        try:
            jobs = [Job(job, job_problems(job, keys, options)) for job in BasicSweeper.split_arguments(parsed, None)[0]]
        except HydraException:
            jobs = [Job(fixed, fixed_problems)]
        return Plan(overrides, "unchecked", "unchecked", 1, jobs)
    hydra = _hydra_config(fixed, parsed)
    sweeper, launcher = hydra.runtime.choices["hydra/sweeper"], hydra.runtime.choices["hydra/launcher"]
    if sweeper == "basic":
        try:
            expanded = BasicSweeper.split_arguments(parsed, None)[0]
        except HydraException as err:
            raise UsageError(f"bad override: {one_line(err)}; the basic sweeper takes a,b / range() / glob()") from None
        if not expanded:
            empty = [o for o in overrides if "glob(" in o or "range(" in o] or overrides
            raise UsageError(
                f"bad override: {' '.join(empty)} expands to no jobs (a glob() that matches no option or an empty "
                "range()); see the options with 'mnistctl sweep --help'"
            )
        jobs = [Job(job, job_problems(job, keys, options)) for job in expanded]
        _flag_duplicates(jobs)
        batch = min(len(jobs), hydra.sweeper.max_batch_size or len(jobs))
        return Plan(overrides, sweeper, launcher, _parallel(hydra, launcher, batch), jobs)
    # Optuna (or another sampling sweeper): jobs are chosen while it runs; check the search space's keys.
    search = {str(k): str(v) for k, v in (hydra.sweeper.get("params") or {}).items()}
    search.update({o.get_key_element(): o.input_line.split("=", 1)[1] for o in parsed if o.is_sweep_override()})
    # The search space's keys are checked with a stand-in value; a group's options are Hydra's to check.
    probes = [f"{k}=null" if k.lstrip("+~") in default_choices() or "/" in k else f"{k}=0" for k in search]
    job = Job(fixed, job_problems([*fixed, *probes], keys, options))
    n_trials = hydra.sweeper.get("n_trials")
    batch = min(hydra.sweeper.get("n_jobs") or 1, n_trials or 1)
    extra = []
    if sweeper == "optuna" and not any(o.get_key_element() == "hydra.sweeper.direction" for o in parsed):
        extra = ["hydra.sweeper.direction=maximize"]  # jobs return their best val/acc: higher is better
    return Plan(overrides, sweeper, launcher, _parallel(hydra, launcher, batch), [job], search, n_trials, extra)


def _flag_duplicates(jobs: list[Job]) -> None:
    """Jobs are identified by their overrides (for --resume), so two jobs may not share them (a=1,1)."""
    from mnistctl.sweep.job import job_key

    first: dict[str, int] = {}
    for number, job in enumerate(jobs):
        key = job_key(job.overrides)
        if key in first:
            job.problems.append(f"the same overrides as job #{first[key]} ({key}); give each value once")
        first.setdefault(key, number)


def _hydra_config(fixed: list[str], parsed: list):
    """The composed `hydra` node (sweeper, launcher); skipped when nothing can change Hydra's defaults."""
    from hydra import compose
    from hydra.errors import HydraException
    from omegaconf import OmegaConf

    if not any(o.get_key_element().lstrip("+~").startswith(("hydra", "search")) for o in parsed):
        choices = {"hydra/sweeper": "basic", "hydra/launcher": "basic"}
        return OmegaConf.create({"runtime": {"choices": choices}, "sweeper": {"max_batch_size": None}})
    try:
        return compose(CONFIG_NAME, overrides=fixed, return_hydra_config=True).hydra
    except HydraException as err:
        raise UsageError(f"bad override: {one_line(err)}") from None


def _parse(overrides: list[str], loader) -> list:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create(config_loader=loader)
    parsed = []
    for override in overrides:
        try:
            parsed += parser.parse_overrides([override])
        except HydraException as err:
            raise UsageError(
                f"malformed override {override!r}: {one_line(err)} "
                "(write KEY=VALUE, KEY=a,b, KEY=range(1,4) or GROUP=OPTION)"
            ) from None
    return parsed


def _parallel(hydra, launcher: str, batch: int) -> int:
    if launcher == "joblib":
        n = int(hydra.launcher.n_jobs)
        n = cores() + 1 + n if n < 0 else n  # joblib: -1 is every core
    elif launcher == "submitit_local":
        n = batch  # the local executor starts every job of a batch at once
    else:
        n = 1  # basic runs one job at a time; submitit_slurm gives each job its own allocation
    return max(1, min(n, batch))


@functools.cache
def _yaml(path) -> dict:
    return yaml.safe_load(path.read_text())


def default_choices() -> dict[str, str | None]:
    defaults = _yaml(SWEEP_DIR / f"{CONFIG_NAME}.yaml")["defaults"]
    return {k: v for entry in defaults if isinstance(entry, dict) for k, v in entry.items()}


def option_config(group: str, option: str) -> dict:
    return _yaml(SWEEP_DIR / group / f"{option}.yaml")


def job_problems(job: list[str], keys: Keys, options) -> list[str]:
    """What is wrong with one job's overrides: unknown keys, group options, classes or init_args."""
    pairs = [(s.split("=", 1)[0], s.split("=", 1)[1] if "=" in s else "") for s in job]
    problems: list[str] = []
    choices = default_choices()
    for key, value in pairs:
        group = key.lstrip("+~")
        if group in choices or "/" in group:
            known = options(group)
            if not known:
                problems.append(f"{key}={value}: there is no config group {group}")
            elif value not in known and value != "null":
                problems.append(f"{key}={value}: {group} has no option {value} (options: {', '.join(known)})")
            else:
                choices[group] = value
    scheduler = _yaml(DEFAULTS_FILE)["lr_scheduler"]
    classes = {"lr_scheduler": scheduler["class_path"]}
    section_args = {"lr_scheduler": list(scheduler["init_args"])}
    for group, section in GROUP_SECTIONS.items():
        if choices.get(group) in options(group):
            option = option_config(group, str(choices[group]))
            classes[section], section_args[section] = option["class_path"], list(option["init_args"])
    # class_path overrides first: they decide which init_args the other overrides may name
    for key, value in sorted(pairs, key=lambda pair: not pair[0].endswith(".class_path")):
        bare = key.lstrip("+~")
        if bare in choices or "/" in bare:
            continue
        section = bare.removesuffix(".class_path")
        if bare.endswith(".class_path") and section in CLASS_SECTIONS:
            problem = keys.class_problem(section, value)
            if problem is None:
                wrong = [a for a in section_args.get(section, []) if a not in keys.init_args[value]]
                if wrong:
                    problem = (
                        f"{bare}={value}: the sweep's {section}.init_args ({', '.join(wrong)}) are not "
                        f"arguments of {value}; switch classes with a group option instead"
                    )
                classes[section] = value
        else:
            problem = keys.problem(bare, classes, value)
        if problem:
            problems.append(problem)
    return problems
