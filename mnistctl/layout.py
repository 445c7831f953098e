"""Where everything of a run and of a sweep lives on disk: the one module that knows the folder layout.

    python -c "from mnistctl import layout; print(layout.fit_runs('runs'))"

A fit run:   <runs root>/<name>/version_N/    run.json  config.yaml  metrics.csv  checkpoints/  ...
             <run>/<subcommand>/              run.json, config.yaml, metrics.csv of validate/test/predict
             <run>/predictions.csv            what `mnistctl predict` writes by default (+ predictions.skipped.txt)
A sweep:     <sweeps root>/<time>/sweep.json, summary.*    <sweep>/<job>/job.yaml, job.json, runs/<name>/version_N/
             <sweep>/slurm.json                the SLURM job id of each submitted job (submitit_slurm)

Every other module asks this one for a path; none spells these names itself. Imports nothing heavy.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mnistctl.atomic import make_folders

RUNS_ROOT = "runs"  # the default save_dir of the loggers: run folders are <root>/<name>/version_N
RUN_RECORD = "run.json"
CONFIG = "config.yaml"
METRICS = "metrics.csv"
CHECKPOINTS = "checkpoints"
LAST = "last.ckpt"
INTERRUPTED = "interrupted.ckpt"
PREDICTIONS = "predictions.csv"
VERSION_PREFIX = "version_"
EVALUATIONS = ("validate", "test", "predict")  # subcommands that write <run>/<subcommand>/run.json
SWEEPS_ROOT = "sweeps"  # the default parent of sweep folders: sweeps/<date>_<time>
SWEEP_RECORD = "sweep.json"  # the sweep's overrides, for --resume
SWEEP_MULTIRUN = "multirun.yaml"  # Hydra's record of the sweep's config
SLURM_JOBS = "slurm.json"  # which SLURM job runs which sweep job (hydra/launcher=submitit_slurm)
JOB_RECORD = "job.json"
JOB_CONFIG = "job.yaml"
STUDY_DB = "optuna.db"  # an Optuna search's study (SQLite), in its sweep folder


def cache_root() -> Path:
    """mnistctl's user cache (unpacked MNIST, generated sweep configs): $MNISTCTL_CACHE_DIR, else
    $XDG_CACHE_HOME/mnistctl."""
    if os.environ.get("MNISTCTL_CACHE_DIR"):
        return Path(os.environ["MNISTCTL_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "mnistctl"


def sweep_configs_cache() -> Path:
    """Where the sweep's Hydra trees, generated per set of installed versions, are kept."""
    return cache_root() / "sweep-configs"


# -- fit runs -----------------------------------------------------------------------------------


def version_of(run: Path) -> int | None:
    """N of a `version_N` folder, else None."""
    suffix = run.name.removeprefix(VERSION_PREFIX)
    return int(suffix) if run.name.startswith(VERSION_PREFIX) and suffix.isdigit() else None


def allocate_run_dir(root: str | os.PathLike, name: str, created: list[Path] | None = None) -> Path:
    """Create and return the next free `<root>/<name>/version_N`, as an absolute path.

    Absolute, because ModelCheckpoint compares its saved dirpath with the current one on resume:
    the same folder spelt differently would make it version `last.ckpt` as `last-v1.ckpt`.
    Folders are created with an exclusive mkdir, so two fits started at once never share one.
    `created` receives every folder this call made (missing parents first, the run folder last):
    the only folders a failed fit may remove again.
    """
    parent = Path(root).resolve() / name
    make_folders(parent, created)
    taken = [v for p in parent.glob(f"{VERSION_PREFIX}*") if (v := version_of(p)) is not None]
    version = max(taken, default=-1) + 1
    while True:
        candidate = parent / f"{VERSION_PREFIX}{version}"
        try:
            make_folders(candidate.parent, created)  # a failed fit may just have removed an empty <name>/
            candidate.mkdir()
        except FileExistsError:  # another process took it between glob and mkdir
            version += 1
            continue
        if created is not None:
            created.append(candidate)
        return candidate


def is_run_dir(folder: Path) -> bool:
    """A folder a mnistctl fit made: its run.json is a fit's record. Not any folder holding a .ckpt, nor one
    whose run.json is some other program's (mnistctl would write over that folder's files as its own)."""
    record = read_record(folder)
    return record is not None and record.get("subcommand") == "fit"


def run_of_checkpoint(ckpt: Path) -> Path | None:
    """The mnistctl run a checkpoint belongs to: `<run>/checkpoints/x.ckpt` of a run folder; else None."""
    ckpt = Path(ckpt).resolve()
    run = ckpt.parent.parent
    return run if ckpt.parent.name == CHECKPOINTS and is_run_dir(run) else None


def rank_rendezvous(root: Path, job_id: str, step_id: str) -> Path:
    """Where rank 0 of an `srun` step publishes its run folder for the other ranks (cli/srun_ranks.py)."""
    return Path(root) / f".srun-{job_id}.{step_id}.json"


def checkpoints_dir(run: Path) -> Path:
    return run / CHECKPOINTS


def last_checkpoint(run: Path) -> Path:
    return run / CHECKPOINTS / LAST


def run_dir_of(ckpt: Path) -> Path:
    """The run folder that made a checkpoint: `<run>/checkpoints/x.ckpt` -> `<run>`; else the file's folder."""
    ckpt = Path(ckpt).resolve()
    return ckpt.parent.parent if ckpt.parent.name == CHECKPOINTS else ckpt.parent


def evaluation_dir(run: Path, subcommand: str) -> Path:
    """Where validate, test and predict keep their run.json, config.yaml and metrics.csv."""
    return run / subcommand


def default_predictions(run: Path) -> Path:
    return run / PREDICTIONS


PREDICTION_COLUMNS = ("id", "pred", "prob")  # then p0, p1, ...: one per class


def skipped_list(predictions_csv: Path) -> Path:
    """The unreadable images of one predictions CSV, named after it: `a.csv` -> `a.skipped.txt` beside it."""
    predictions_csv = Path(predictions_csv)
    return predictions_csv.with_name(f"{predictions_csv.stem}.skipped.txt")


def evaluation_dirs(run: Path) -> list[Path]:
    """The `<run>/<subcommand>` folders of a run that hold an evaluation's run.json."""
    return [folder for sub in EVALUATIONS if ((folder := evaluation_dir(run, sub)) / RUN_RECORD).is_file()]


def run_dirs(root: str | os.PathLike) -> list[Path]:
    """Every `<root>/<name>/version_N` folder, in no particular order."""
    return [p for p in Path(root).glob(f"*/{VERSION_PREFIX}*") if p.is_dir() and version_of(p) is not None]


def fit_runs(root: str | os.PathLike) -> list[Path]:
    """Run folders under root that hold checkpoints, newest checkpoint first."""
    runs = {p.parent.parent for p in Path(root).glob(f"*/{VERSION_PREFIX}*/{CHECKPOINTS}/*.ckpt")}
    return sorted(
        runs, key=lambda run: max(c.stat().st_mtime for c in checkpoints_dir(run).glob("*.ckpt")), reverse=True
    )


def read_record(folder: Path, name: str = RUN_RECORD) -> dict | None:
    """A run's run.json (or a job's job.json) as a dict; None when missing, not a file or not complete JSON."""
    path = Path(folder) / name
    if not path.is_file():  # a FIFO (or device) of that name would block the read forever
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


# -- sweeps -------------------------------------------------------------------------------------


def job_runs_root(job_dir: Path) -> Path:
    """The runs root of a sweep job's fit, which runs inside the job folder."""
    return job_dir / RUNS_ROOT


def job_run_dir(job_dir: Path) -> Path | None:
    """The job's newest run folder (a resumed job keeps training in the same one)."""
    runs = run_dirs(job_runs_root(job_dir))
    return max(runs, key=lambda p: (version_of(p), p.stat().st_mtime)) if runs else None


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The folders of a sweep that hold a job record, sorted by name."""
    return sorted(p.parent for p in Path(sweep_dir).glob(f"*/{JOB_RECORD}"))


def job_run_dirs(job_dir: Path) -> list[Path]:
    """Every run folder of a sweep job (a job that failed and ran again has one per attempt)."""
    return sorted(run_dirs(job_runs_root(job_dir)), key=lambda p: (p.parent.name, version_of(p)))


def job_dir_of(run: Path) -> Path | None:
    """The sweep job a run folder belongs to (`<job>/runs/<name>/version_N`), else None."""
    job = Path(run).parent.parent.parent
    return job if job_runs_root(job) == Path(run).parent.parent and (job / JOB_RECORD).is_file() else None


def is_sweep(folder: Path) -> bool:
    return (Path(folder) / SWEEP_RECORD).is_file() or bool(job_dirs(folder))


def sweep_dirs(root: str | os.PathLike) -> list[Path]:
    """The sweep folders under root (or root itself when it is one), sorted by name."""
    root = Path(root)
    if is_sweep(root):
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir() and is_sweep(p)) if root.is_dir() else []
