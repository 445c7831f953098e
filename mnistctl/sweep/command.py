"""`mnistctl sweep`: fan out configurations with Hydra multirun, one `mnistctl fit` per job, then compare.

    mnistctl sweep criterion=ce,mse optimizer=adam,sgd trainer.max_epochs=2

Hydra's compose API loads the packaged tree configs/sweep/ (sweep.yaml: the whole LightningCLI config,
groups criterion/, optimizer/, search/) and its multirun machinery runs the jobs through the chosen
launcher and sweeper plugins. Each job runs in <sweep>/<job>/ (see job.py); at the end
summary.csv, summary.json and val_curves.png are written and a table sorted by val/acc is printed.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
import time
from pathlib import Path

from mnistctl import __version__
from mnistctl.argparser import OneLineParser
from mnistctl.atomic import atomic_write
from mnistctl.errors import UsageError
from mnistctl.layout import SWEEP_RECORD, job_dirs
from mnistctl.sweep.job import SWEEP_PID_ENV
from mnistctl.sweep.keys import SWEEP_DIR
from mnistctl.sweep.plan import CONFIG_NAME, Plan, cores, hydra_session, make_plan, one_line

log = logging.getLogger(__name__)
SWEEP_DIR_KEY = "hydra.sweep.dir"


def _options(group: str) -> str:
    return ", ".join(sorted(p.stem for p in (SWEEP_DIR / group).glob("*.yaml")))


EPILOG = f"""\
overrides (Hydra syntax; any key of 'mnistctl fit --print_config', no '+' needed):
  criterion=OPTION       {_options("criterion")}
  optimizer=OPTION       {_options("optimizer")}
  search=OPTION          {_options("search")} (the Optuna sweeper over a search space)
  KEY=VALUE, KEY=a,b     e.g. trainer.max_epochs=2 data.batch_size=128 model.dropout_ratio=0.1,0.3
  KEY=range(1,4)         also glob(*) for groups, e.g. criterion=glob(*)
  seed=1,2,3             repeat each configuration; the summary adds mean and std across seeds
  hydra/launcher=NAME    basic (default, one job at a time), joblib (hydra.launcher.n_jobs=2),
                         submitit_local, submitit_slurm (hydra.launcher.partition=... timeout_min=...)
  hydra/sweeper=optuna   with hydra.sweeper.params.KEY=interval(a,b) or search=lr_dropout
  hydra.sweep.dir=DIR    the sweep folder (default: sweeps/<date>_<time>)

examples:
  mnistctl sweep criterion=ce,mse trainer.max_epochs=2
  mnistctl sweep optimizer=adam,sgd seed=1,2,3 hydra/launcher=joblib hydra.launcher.n_jobs=2
  mnistctl sweep search=lr_dropout hydra.sweeper.n_trials=10 trainer.max_epochs=2
  mnistctl sweep --dry-run criterion=glob(*) model.dropout_ratio=0.1,0.3
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
    args = parser.parse_intermixed_args(argv)
    if args.summary and (args.overrides or args.resume or args.dry_run):
        raise UsageError("sweep: --summary DIR takes no overrides and no other option")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.summary:
        from mnistctl.sweep.summary import summarize

        summarize(_existing_sweep(args.summary), write_files=False)
        return 0
    overrides = list(args.overrides)
    resume_dir = _existing_sweep(args.resume) if args.resume else None
    if resume_dir is not None:
        overrides = _resumed_overrides(resume_dir, overrides)
    sweep_dir, overrides = _take_sweep_dir(overrides, resume_dir)
    with hydra_session():
        plan = make_plan(overrides)
        if args.dry_run:
            _print_plan(plan, sweep_dir)
        if plan.problems:
            unique = list(dict.fromkeys(plan.problems))
            more = f" (and {len(unique) - 1} more; see --dry-run)" if len(unique) > 1 else ""
            raise UsageError(f"bad override: {unique[0]}{more}")
        if args.dry_run:
            return 0
        sweep_dir = _claim(sweep_dir, resume_dir, overrides)
        os.environ[SWEEP_PID_ENV] = str(os.getpid())  # job workers stop their fit if this process is killed
        status = _multirun(plan, sweep_dir)
    from mnistctl.sweep.summary import summarize

    rows = summarize(sweep_dir) if job_dirs(sweep_dir) else []
    failed = [r for r in rows if r["status"] != "completed"]
    if status == "interrupted":
        sys.stderr.write(f"mnistctl sweep: interrupted; finish it with: mnistctl sweep --resume {sweep_dir}\n")
        return 130
    if failed:
        sys.stderr.write(f"mnistctl sweep: {len(failed)} of {len(rows)} jobs did not complete (see {sweep_dir})\n")
        return 1
    return 0


def _multirun(plan: Plan, sweep_dir: Path) -> str:
    """Hydra multirun through the compose API (Hydra's own test helper does the same)."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    from mnistctl.sweep.job import run_job

    overrides = [*plan.overrides, *plan.extra_overrides, f"{SWEEP_DIR_KEY}={_quote(str(sweep_dir))}"]
    task = functools.partial(run_job, parallel=plan.parallel)
    try:
        GlobalHydra.instance().hydra.multirun(config_name=CONFIG_NAME, task_function=task, overrides=overrides)
    except KeyboardInterrupt:
        return "interrupted"
    except HydraException as err:
        if not job_dirs(sweep_dir):
            raise UsageError(f"sweep could not start: {one_line(err)}") from None
        log.error("the sweep stopped early: %s", one_line(err))
        return "stopped"
    return "done"


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _existing_sweep(path: str) -> Path:
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise UsageError(f"sweep folder {path} does not exist; give a folder made by 'mnistctl sweep'")
    return folder


def _resumed_overrides(sweep_dir: Path, extra: list[str]) -> list[str]:
    try:
        saved = json.loads((sweep_dir / SWEEP_RECORD).read_text())["overrides"]
    except (OSError, ValueError, KeyError):
        raise UsageError(
            f"{sweep_dir} has no readable {SWEEP_RECORD}; --resume needs a folder made by 'mnistctl sweep'"
        ) from None
    if any(not o.startswith(("hydra/launcher=", "hydra.launcher.")) for o in extra):
        raise UsageError(
            "sweep --resume DIR reuses the sweep's overrides; only hydra/launcher and hydra.launcher.* may be added"
        )
    return [*saved, *extra]


def _take_sweep_dir(overrides: list[str], resume_dir: Path | None) -> tuple[Path | None, list[str]]:
    """Pull hydra.sweep.dir out of the overrides: mnistctl decides the folder and passes it to Hydra."""
    given = [o.split("=", 1)[1].strip("'\"") for o in overrides if o.startswith(f"{SWEEP_DIR_KEY}=")]
    rest = [o for o in overrides if not o.startswith(f"{SWEEP_DIR_KEY}=")]
    if resume_dir is not None:
        return resume_dir, rest
    return (Path(given[-1]).expanduser().resolve() if given else None), rest


def _claim(sweep_dir: Path | None, resume_dir: Path | None, overrides: list[str]) -> Path:
    """Create the sweep folder (a new one unless resuming) and record the overrides in sweep.json."""
    if resume_dir is not None:
        return resume_dir
    if sweep_dir is None:
        base = Path("sweeps", time.strftime("%Y-%m-%d_%H-%M-%S")).resolve()
        sweep_dir, n = base, 0
        while True:
            try:
                sweep_dir.mkdir(parents=True)
                break
            except FileExistsError:
                n += 1
                sweep_dir = base.with_name(f"{base.name}_{n}")
    else:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        try:  # an exclusive create: of two sweeps started at once into one folder, exactly one gets it
            os.close(os.open(sweep_dir / SWEEP_RECORD, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            raise UsageError(
                f"{SWEEP_DIR_KEY}={sweep_dir} already holds a sweep; finish it with "
                f"'mnistctl sweep --resume {sweep_dir}' or choose another folder"
            ) from None
    manifest = {"overrides": overrides, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "mnistctl": __version__}
    with atomic_write(sweep_dir / SWEEP_RECORD) as f:
        json.dump(manifest, f, indent=2)
    return sweep_dir


def _print_plan(plan: Plan, sweep_dir: Path | None) -> None:
    threads = (
        "threads from the SLURM allocation"
        if plan.launcher == "submitit_slurm"
        else (f"{max(1, cores() // plan.parallel)} threads per job")
    )
    where = sweep_dir or "sweeps/<date>_<time>"
    if plan.sweeper in ("basic", "unchecked"):
        jobs = f"{len(plan.jobs)} job{'s' * (len(plan.jobs) != 1)}"
        head = f"{jobs}, launcher {plan.launcher}, {plan.parallel} at a time, {threads}"
    else:
        head = f"{plan.sweeper} sweeper, {plan.n_trials} trials, launcher {plan.launcher}, {threads}"
    out = [f"dry run: {head}; sweep folder {where} (nothing created)"]
    for name, space in plan.search.items():
        out.append(f"  search {name}: {space}")
    for number, job in enumerate(plan.jobs):
        label = f"#{number}" if plan.sweeper in ("basic", "unchecked") else "fixed"
        out.append(f"  {label:>5}  {' '.join(job.overrides) or '(no overrides)'}")
        out += [f"         error: {problem}" for problem in job.problems]
    sys.stdout.write("\n".join(out) + "\n")
