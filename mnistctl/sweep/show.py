"""What `mnistctl sweep` prints instead of running: the dry run's job list, `--cfg` and `--info`.

mnistctl sweep --dry-run criterion=ce,mse      # the jobs and what is wrong with each
mnistctl sweep --cfg job criterion=ce,mse      # each job's job.yaml, as the sweep would write it
mnistctl sweep --info                          # where the configs and the plugins come from
"""

from __future__ import annotations

import sys
from pathlib import Path

from mnistctl.sweep.plan import Plan, cores

SAMPLING = "fixed"  # the label of the one entry a sampling sweeper's plan has


def _sampled(plan: Plan) -> bool:
    return plan.sweeper not in ("basic", "unchecked")


def print_plan(plan: Plan, where: str, folder_problem: str | None) -> None:
    threads = (
        "threads from the SLURM allocation"
        if plan.launcher == "submitit_slurm"
        else (f"{max(1, cores() // plan.parallel)} threads per job")
    )
    if not _sampled(plan):
        jobs = f"{len(plan.jobs)} job{'s' * (len(plan.jobs) != 1)}"
        head = f"{jobs}, launcher {plan.launcher}, {plan.parallel} at a time, {threads}"
    else:
        head = f"{plan.sweeper} sweeper, {plan.n_trials} trials, launcher {plan.launcher}, {threads}"
    out = [f"dry run: {head}; sweep folder {where} (nothing created)"]
    if folder_problem:
        out.append(f"  error: {folder_problem}")
    for name, space in plan.search.items():
        out.append(f"  search {name}: {space}")
    for number, job in enumerate(plan.jobs):
        label = SAMPLING if _sampled(plan) else f"#{number}"
        out.append(f"  {label:>5}  {' '.join(job.overrides) or '(no overrides)'}")
        out += [f"         error: {problem}" for problem in job.problems]
    sys.stdout.write("\n".join(out) + "\n")


def print_cfg(plan: Plan, what: str, where: str) -> None:
    """Hydra's --cfg: job (each job's job.yaml), hydra (the sweep's Hydra config) or all (both)."""
    from omegaconf import OmegaConf

    from mnistctl.sweep.job import job_yaml

    parts = []
    if what in ("hydra", "all") and plan.master is not None:
        parts.append("# the sweep's Hydra config (hydra:), unresolved\n" + OmegaConf.to_yaml(plan.master.hydra))
    if what in ("job", "all"):
        for number, job in enumerate(plan.jobs):
            name = "<trial>" if _sampled(plan) else str(number)
            if job.config is None:
                parts.append(f"# mnistctl sweep job {name}: {' '.join(job.overrides)}\n# error: {job.problems[0]}\n")
                continue
            text = job_yaml(job.config, name, where, job.overrides)
            if _sampled(plan):
                text = f"# the fixed part of every trial; {', '.join(plan.search)} are chosen per trial\n" + text
            parts.append(text)
    sys.stdout.write("---\n".join(parts))


def print_info(tree: Path, what: str = "all") -> None:
    """Where the sweep's configs come from (config: the packaged tree, the generated one, the groups and
    their options), Hydra's search path (searchpath), the installed launcher and sweeper plugins (plugins)."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.plugins import Plugins
    from hydra.plugins.launcher import Launcher
    from hydra.plugins.sweeper import Sweeper

    from mnistctl.sweep.keys import KEYS_NAME
    from mnistctl.sweep.tree import PACKAGED_TREE, versions

    loader = GlobalHydra.instance().config_loader()
    out = []
    if what in ("all", "config"):
        out += [
            f"packaged sweep configs: {PACKAGED_TREE}",
            f"generated tree Hydra composes from: {tree}",
            "  generated for " + ", ".join(f"{k} {v}" for k, v in versions().items()),
            f"  keys, types and init_args checked by --dry-run: {tree / KEYS_NAME}",
            "groups:",
        ]
        for group in ("criterion", "optimizer", "search", "hydra/launcher", "hydra/sweeper"):
            out.append(f"  {group:<15} {', '.join(loader.get_group_options(group))}")
    if what in ("all", "searchpath"):
        out.append("config search path (Hydra):")
        out += [f"  {source.provider:<10} {source.full_path()}" for source in loader.get_sources()]
    if what in ("all", "plugins"):
        out.append("plugins:")
        for kind, base in (("launcher", Launcher), ("sweeper", Sweeper)):
            for plugin in Plugins.instance().discover(base):
                out.append(f"  {kind:<9} {plugin.__module__}.{plugin.__name__}")
    sys.stdout.write("\n".join(out) + "\n")
