"""`mnistctl sweep`: fan out configurations with Hydra multirun, one `mnistctl fit` per job, then compare.

    mnistctl sweep criterion=ce,mse optimizer=adam,sgd trainer.max_epochs=2

Hydra's compose API loads the sweep tree (tree.py: the packaged configs/sweep/ completed from the installed
libraries; sweep.yaml is the whole LightningCLI config, groups criterion/, optimizer/, search/). The plan
(plan.py) composes and checks every job first, exactly as the multirun will, and nothing is created
when it finds a problem (--dry-run shows it); then the folder is claimed (folder.py) and Hydra's multirun
runs the jobs through the chosen launcher and sweeper plugins. Each job runs in <sweep>/<job>/ (job.py);
at the end summary.csv, summary.json and val_curves.png are written and a table sorted by val/acc is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import sys
from pathlib import Path

from mnistctl.argparser import OneLineParser
from mnistctl.errors import UsageError
from mnistctl.layout import SWEEP_RECORD, SWEEPS_ROOT, job_dirs
from mnistctl.sweep import detach, folder, in_use
from mnistctl.sweep.job import FINISHED, SWEEP_PID_ENV
from mnistctl.sweep.tree import PACKAGED_TREE

log = logging.getLogger(__name__)
INFO_SECTIONS = ("all", "config", "searchpath", "plugins")  # Hydra's --info takes these (and more)


def _options(group: str) -> str:
    return ", ".join(sorted(p.stem for p in (PACKAGED_TREE / group).glob("*.yaml")))


EPILOG = f"""\
overrides (Hydra syntax; any key of 'mnistctl fit --print_config', no '+' needed):
  criterion=OPTION       {_options("criterion")}
  optimizer=OPTION       {_options("optimizer")}
  search=OPTION          {_options("search")} (the Optuna sweeper over a search space; study in <sweep>/optuna.db)
  pruner=OPTION          {_options("pruner")} (with a search; default median), e.g. pruner.n_startup_trials=2
  KEY=VALUE, KEY=a,b     e.g. trainer.max_epochs=2 data.batch_size=128 model.dropout_ratio=0.1,0.3
  KEY=range(1,4)         also glob(*) for groups, e.g. criterion=glob(*)
  seed=1,2,3             repeat each configuration; the summary adds mean and std across seeds
  hydra.sweeper.params={{KEY:"a,b"}}   the same sweep written as the sweeper's params
  hydra/launcher=NAME    basic (default, one job at a time), joblib (hydra.launcher.n_jobs=2),
                         submitit_local, submitit_slurm (hydra.launcher.partition=... timeout_min=...)
  hydra/sweeper=optuna   with search dimensions as overrides, e.g. 'model.dropout_ratio=interval(0.1,0.5)'
                         'optimizer.init_args.lr=tag(log,interval(1e-4,1e-2))' (or search=lr_dropout)
  hydra.sweep.dir=DIR    the sweep folder: new or empty (default: sweeps/<date>_<time>)

examples:
  mnistctl sweep criterion=ce,mse trainer.max_epochs=2
  mnistctl sweep optimizer=adam,sgd seed=1,2,3 hydra/launcher=joblib hydra.launcher.n_jobs=2
  mnistctl sweep search=lr_dropout hydra.sweeper.n_trials=10 trainer.max_epochs=2
  mnistctl sweep hydra/sweeper=optuna 'model.dropout_ratio=interval(0.1,0.5)' hydra.sweeper.n_trials=4
  mnistctl sweep --dry-run criterion=glob(*) model.dropout_ratio=0.1,0.3
  mnistctl sweep --cfg job criterion=ce,mse      # each job's job.yaml; nothing runs
  mnistctl sweep --resume sweeps/2026-01-01_12-00-00
"""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = OneLineParser(
        prog="mnistctl sweep",
        description="Run every combination of the overrides as its own 'mnistctl fit' job (Hydra multirun), "
        "then write summary.csv, summary.json, val_curves.png and print a table sorted by val/acc.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="Hydra overrides (see below)")
    parser.add_argument("--dry-run", action="store_true", help="list the jobs and check every override; train nothing")
    parser.add_argument("--summary", metavar="DIR", help="print the table of an existing sweep folder")
    parser.add_argument("--resume", metavar="DIR", help="finish a sweep: skip completed jobs, resume interrupted ones")
    parser.add_argument(
        "--detach",
        action="store_true",
        help="hydra/launcher=submitit_slurm: submit the jobs and return at once; follow with --status DIR",
    )
    parser.add_argument(
        "--status", metavar="DIR", help="each job's state now: queued, running (epoch), completed, failed, ..."
    )
    parser.add_argument(
        "--cfg",
        choices=("job", "hydra", "all"),
        help="print each job's job.yaml (job), the sweep's Hydra config (hydra) or both (all); run nothing",
    )
    parser.add_argument(
        "--info",
        nargs="?",
        const="all",
        choices=INFO_SECTIONS,
        help="say where the sweep configs come from (config), Hydra's search path (searchpath), the installed "
        "launcher and sweeper plugins (plugins), or all of it; run nothing",
    )
    parser.add_argument("-m", "--multirun", action="store_true", help="accepted out of Hydra habit: a sweep is one")
    args = parser.parse_intermixed_args(argv)
    for flag, value in (("--summary", args.summary), ("--status", args.status)):
        others = [args.overrides, args.resume, args.dry_run, args.cfg, args.info, args.detach]
        if value and any([*others, args.summary and args.status]):
            raise UsageError(f"sweep: {flag} DIR takes no overrides and no other option")
    if args.detach and args.info:
        raise UsageError("sweep: --detach submits a sweep; --info runs nothing")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.summary:
        from mnistctl.sweep.summary import summarize

        rows = summarize(_existing_sweep(args.summary), write_files=False)
        return 1 if any(r["status"] == "unreadable" for r in rows) else 0
    if args.status:
        from mnistctl.sweep.status import print_status

        return print_status(_existing_sweep(args.status))
    from mnistctl.sweep.overrides import quote
    from mnistctl.sweep.warm_start import early_server, likely_launcher, likely_search, wanted

    overrides = list(args.overrides)
    resume_dir = _existing_sweep(args.resume) if args.resume else None
    runs_jobs = not (args.info or args.cfg or args.dry_run)
    if resume_dir is not None:
        overrides = [*_resumed_overrides(resume_dir, overrides), f"{folder.KEY}={quote(str(resume_dir))}"]
        if runs_jobs:
            in_use.refuse_if_running(resume_dir)  # before anything starts; checked again when taking it over
    # The warm-start server imports torch while this process imports Hydra and plans (seconds on 2 cores).
    warm = runs_jobs and wanted(likely_launcher(overrides))
    with early_server(warm, search=likely_search(overrides)) as early:
        return _plan_and_run(args, overrides, resume_dir, early)


def _plan_and_run(args: argparse.Namespace, overrides: list[str], resume_dir: Path | None, early) -> int:
    from mnistctl.sweep.compose import hydra_session
    from mnistctl.sweep.plan import make_plan
    from mnistctl.sweep.tree import config_dir

    tree = config_dir()
    with hydra_session(tree):
        if args.info:
            from mnistctl.sweep.show import print_info

            print_info(tree, args.info)
            return 0
        plan = make_plan(overrides, tree)
        if args.detach and not plan.problems and (problem := detach.detach_problem(plan.launcher, plan.sweeper)):
            raise UsageError(problem)
        chosen = resume_dir or plan.sweep_dir
        where = str(chosen or Path(SWEEPS_ROOT, "<date>_<time>"))
        # --cfg shows configs, whatever the folder; the dry run and the real sweep check it.
        skip_folder = resume_dir is not None or plan.sweeper == "unchecked" or args.cfg
        folder_problem = None if skip_folder else _folder_problem(chosen)
        if args.cfg:
            from mnistctl.sweep.show import print_cfg

            print_cfg(plan, args.cfg, where)
        elif args.dry_run:
            from mnistctl.sweep.show import print_plan

            print_plan(plan, where, folder_problem)
        if plan.problems:
            unique = list(dict.fromkeys(plan.problems))
            more = f" (and {len(unique) - 1} more; see --dry-run)" if len(unique) > 1 else ""
            raise UsageError(f"bad override: {unique[0]}{more}")
        if folder_problem:
            raise UsageError(folder_problem)
        if args.dry_run or args.cfg:
            return 0
        study_overrides = _study_overrides(plan, resume_dir)
        if resume_dir is not None:
            detach.wait_for_live_jobs(resume_dir, args.detach)  # a job still on the cluster must not run twice
            claim = folder.resume(resume_dir)  # nor one still running on this machine (in_use.py)
        else:
            claim = folder.claim(chosen, plan.overrides)
        os.environ[SWEEP_PID_ENV] = str(os.getpid())  # job workers stop their fit if this process is killed
        if early is not None:  # its first job waits seconds for the server's imports: load the summary's now
            from mnistctl.sweep.plot import load_matplotlib

            load_matplotlib()
        on_slurm = plan.launcher == "submitit_slurm"
        with detach.submissions(claim.path, args.detach) if on_slurm else contextlib.nullcontext([]) as submitted:
            status = _multirun(plan, claim, study_overrides, early)
    from mnistctl.sweep.summary import summarize

    sweep_dir = claim.path
    if args.detach and submitted and status == "done":
        detach.print_detached(sweep_dir, submitted)
        return 0
    rows = summarize(sweep_dir) if job_dirs(sweep_dir) else []
    failed = [r for r in rows if r["status"] not in FINISHED]
    if status == "interrupted":
        left = f"; its {len(submitted)} SLURM job(s) keep running (--status DIR)" if submitted else ""
        sys.stderr.write(f"mnistctl sweep: interrupted{left}; finish it with: mnistctl sweep --resume {sweep_dir}\n")
        return 130
    if failed:
        stopped = sum(r["status"] == "interrupted" for r in failed)
        resume = f"; 'mnistctl sweep --resume {sweep_dir}' continues the {stopped} interrupted" if stopped else ""
        sys.stderr.write(
            f"mnistctl sweep: {len(failed)} of {len(rows)} jobs did not complete (see {sweep_dir}){resume}\n"
        )
        return 1
    if status == "stopped":  # the sweeper or launcher raised after some jobs ran: the others never did
        resume = f"mnistctl sweep --resume {sweep_dir}"
        sys.stderr.write(f"mnistctl sweep: it stopped early (see above); finish it with: {resume}\n")
        return 1
    return 0


def _folder_problem(chosen: Path | None) -> str | None:
    """The dry run asks what `folder.claim` will: a chosen folder must be new or empty; the default one's
    parents must be usable."""
    return folder.problem(chosen or Path(SWEEPS_ROOT, "new").resolve())


def _study_overrides(plan, resume_dir: Path | None) -> list[str]:
    """A search keeps its study in <sweep>/optuna.db (unless hydra.sweeper.storage names one) under a fixed
    study name, so --resume finds it; its storage is opened here, before anything is claimed (the plan
    checked its URL, the pruner and the direction, settings.py). The sweep folder is not known yet for a
    new sweep: `{sweep}` stands for it."""
    if plan.sweeper != "optuna":
        return []
    from mnistctl.sweep.study import DEFAULT_STUDY_NAME, check_storage, default_storage

    sweeper = plan.master.hydra.sweeper
    extra = []
    name = sweeper.get("study_name")
    if name is None:
        name = DEFAULT_STUDY_NAME
        extra.append(f"hydra.sweeper.study_name={DEFAULT_STUDY_NAME}")
    storage = sweeper.get("storage")
    if storage is None:
        extra.append("hydra.sweeper.storage={sweep}")
        if resume_dir is not None:
            check_storage(default_storage(resume_dir), name, resume_dir, resume=True)
    else:
        check_storage(str(storage), name, resume_dir, resume=resume_dir is not None)
    return extra


def _multirun(plan, claim: folder.Claim, study_overrides: list[str], early=None) -> str:
    """Hydra multirun through the compose API (Hydra's own test helper does the same)."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    from mnistctl.sweep.job import run_job
    from mnistctl.sweep.overrides import one_line, quote
    from mnistctl.sweep.warm_start import serving

    search = contextlib.nullcontext()
    if plan.sweeper == "optuna":  # only then: importing optuna takes 1.4 s of a 2-core machine
        from mnistctl.sweep.study import default_storage, in_place

        storage = quote(default_storage(claim.path))
        study_overrides = [o.replace("={sweep}", f"={storage}") for o in study_overrides]
        search = in_place()
    overrides = [*plan.overrides, *plan.extra_overrides, *study_overrides, f"{folder.KEY}={quote(str(claim.path))}"]
    task = functools.partial(run_job, parallel=plan.parallel)
    try:
        with serving(plan.launcher, early, search=plan.sweeper == "optuna"), search:
            GlobalHydra.instance().hydra.multirun(config_name="sweep", task_function=task, overrides=overrides)
    except KeyboardInterrupt:
        return "interrupted"
    except Exception as err:
        if folder.release(claim):  # it stopped before its first job: the folder is as it was, or gone
            if isinstance(err, HydraException):
                raise UsageError(f"sweep could not start: {one_line(err)}") from None
            raise
        log.error("the sweep stopped early: %s", one_line(err))
        return "stopped"
    return "done"


def _existing_sweep(path: str) -> Path:
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise UsageError(f"sweep folder {path} does not exist; give a folder made by 'mnistctl sweep'")
    return folder


def _resumed_overrides(sweep_dir: Path, extra: list[str]) -> list[str]:
    try:
        saved = json.loads((sweep_dir / SWEEP_RECORD).read_text())["overrides"]
    except (OSError, ValueError, KeyError, TypeError):  # TypeError: JSON that is not an object
        saved = None
    if not isinstance(saved, list) or not all(isinstance(o, str) for o in saved):
        raise UsageError(
            f"{sweep_dir} has no readable {SWEEP_RECORD}; --resume needs a folder made by 'mnistctl sweep'"
        )
    if any(not o.startswith(("hydra/launcher=", "hydra.launcher.", "hydra.sweeper.n_trials=")) for o in extra):
        raise UsageError(
            "sweep --resume DIR reuses the sweep's overrides; only hydra/launcher, hydra.launcher.* and "
            "hydra.sweeper.n_trials (a search's size: its study continues) may be added"
        )
    return [*saved, *extra]
