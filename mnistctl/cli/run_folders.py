"""Where a command may write: a new run folder for fit, the outputs of validate/test/predict; and the clean-up.

    mnistctl fit --trainer.max_epochs 1        # runs/mnist/version_N, made by this command
    mnistctl test --ckpt_path best --output_dir results/   # a read-only run folder is left alone

A fit that fails before its first checkpoint removes what it created, and only that: the folders that
`layout.allocate_run_dir` made for it. Nothing else is ever removed (not a --ckpt_path's folder, not a
folder that existed before, nothing behind a symlink). Every path problem is one line with the fix.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import warnings
from pathlib import Path

from jsonargparse import Namespace

from mnistctl import layout
from mnistctl.cli.srun_ranks import shared_run_dir
from mnistctl.console import shown
from mnistctl.errors import UsageError

SHARED_RUN_DIR_ENV = "MNISTCTL_SHARED_RUN_DIR"  # the run folder of a fit, for its DDP child processes

log = logging.getLogger(__name__)


def loggers_of(config: Namespace) -> list[Namespace]:
    loggers = config.trainer.logger
    if isinstance(loggers, Namespace):
        return [loggers]
    return [lg for lg in loggers if isinstance(lg, Namespace)] if isinstance(loggers, list) else []


def runs_root(config: Namespace) -> str:
    """The folder that holds `<name>/version_N` run folders: the first logger's save_dir."""
    for logger in loggers_of(config):
        if logger.init_args.get("save_dir"):
            return str(logger.init_args.save_dir)
    return layout.RUNS_ROOT


def allocate_for(config: Namespace, created: list[Path]) -> Path:
    """A new run folder for a fit, named by its loggers; `created` receives the folders made for it."""
    # Lightning's DDP launcher starts ranks 1.. by re-running this command line with LOCAL_RANK set, after
    # rank 0 has allocated the run folder: they join rank 0's folder, passed down in the environment.
    if os.environ.get("LOCAL_RANK", "0") != "0" and os.environ.get(SHARED_RUN_DIR_ENV):
        return Path(os.environ[SHARED_RUN_DIR_ENV])
    names = [str(lg.init_args.name) for lg in loggers_of(config) if lg.init_args.get("name")]
    for name in names:
        check_run_name(name)
    root, name = runs_root(config), names[0] if names else "mnist"
    # Under `srun` each rank is its own process: rank 0 allocates and publishes, the others join (srun_ranks.py).
    run_dir = shared_run_dir(root, lambda: allocate(root, name, created))
    os.environ[SHARED_RUN_DIR_ENV] = str(run_dir.resolve())
    return run_dir


def point_loggers_at(config: Namespace, run_dir: Path) -> None:
    """Make every logger write into run_dir, so metrics, events and config share one folder."""
    for logger in loggers_of(config):
        if "version" in logger.init_args:
            logger.init_args.save_dir = str(run_dir.parent.parent)
            logger.init_args.name = run_dir.parent.name
            logger.init_args.version = run_dir.name
    if not loggers_of(config):
        config.trainer.default_root_dir = str(run_dir)


def check_run_name(name: str) -> None:
    """A logger name is one folder under the runs root: no path separators, `..` or absolute paths."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise UsageError(
            f"logger name {name!r} must be one plain folder name under the runs folder (no '/', '..' or "
            "absolute path); set the loggers' name in the config to e.g. mnist, and their save_dir to move runs"
        )
    if len(name.encode()) > 255:
        raise UsageError(
            f"logger name {name[:20]}... has {len(name.encode())} bytes, more than a folder name may hold (255); "
            "choose a shorter name for the loggers"
        )


def allocate(root: str, name: str, created: list[Path]) -> Path:
    """The next `<root>/<name>/version_N`, with OS errors turned into one line each."""
    try:
        return layout.allocate_run_dir(root, name, created)
    except NotADirectoryError as err:
        blocking = next(
            (p for p in [Path(err.filename or root), *Path(err.filename or root).parents] if p.is_file()), root
        )
        raise UsageError(
            f"cannot create the run folder: {blocking} is a file, not a folder; move it away, "
            "or set the loggers' save_dir to another folder"
        ) from None
    except PermissionError as err:
        raise UsageError(
            f"cannot create a run folder in {err.filename or root} (permission denied): run from a writable "
            "folder, or set the loggers' save_dir to one"
        ) from None
    except OSError as err:
        if err.errno in (errno.ENAMETOOLONG, errno.EROFS, errno.ENOSPC):
            raise UsageError(f"cannot create a run folder under {root} ({err.strerror})") from None
        raise


def discard(created: list[Path]) -> None:
    """Remove the folders in `created` (as allocate recorded them), the run folder with what is in it."""
    if not created:
        return
    run, parents = created[-1], created[:-1]
    if run.is_dir() and not run.is_symlink():
        shutil.rmtree(run, ignore_errors=True)  # rmtree never follows a symlink inside the folder
    for parent in reversed(parents):
        try:
            parent.rmdir()  # only when empty: a run another command made meanwhile stays
        except OSError:
            break
    created.clear()


def output_folder(run_dir: Path, subcommand: str, output_dir: str | None) -> Path:
    """Where validate/test/predict keep run.json, config.yaml, metrics.csv: checked before anything runs.

    Inside a mnistctl run folder it is `<run>/<subcommand>`. Anywhere else (a checkpoint copied somewhere,
    or --output_dir) the folder must be new, empty or an earlier evaluation's: Lightning's CSVLogger would
    delete a metrics.csv it finds there.
    """
    given = output_dir is not None
    folder = Path(output_dir).expanduser().resolve() if given else layout.evaluation_dir(run_dir, subcommand)
    flag = f"--output_dir {output_dir}" if given else str(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{flag} is a file; give a folder with --output_dir DIR")
    record = layout.read_record(folder) if folder.is_dir() else None
    inside_a_run = not given and layout.is_run_dir(run_dir)
    ours = inside_a_run or (record is not None and record.get("subcommand") in layout.EVALUATIONS)
    if folder.is_dir() and any(folder.iterdir()) and not ours:
        raise UsageError(
            f"{flag} already holds other files; give a new or empty folder with --output_dir DIR (or one an "
            "earlier validate, test or predict wrote)"
        )
    if not writable(folder):
        where = f"{flag} is not writable" if given else f"cannot write into {folder} (the folder is read-only)"
        raise UsageError(f"{where}; send the outputs elsewhere with --output_dir DIR")
    return folder


def say_replacing(folder: Path) -> None:
    """After every check has passed: an earlier evaluation's outputs in `folder`, which this one replaces, are
    named in one line of ours instead of the CSVLogger's warning that "previous log files ... will be deleted"."""
    record = layout.read_record(folder) if folder.is_dir() else None
    if record is None or not any(folder.iterdir()):
        return
    log.info("replacing the outputs of an earlier %s in %s", record.get("subcommand", "evaluation"), shown(folder))
    message = rf"Experiment logs directory {re.escape(str(folder))} exists and is not empty"
    warnings.filterwarnings("ignore", message=message)  # this folder's only


def writable(folder: Path) -> bool:
    """Can this process create `folder` (or files in it)? The nearest existing folder decides."""
    existing = next((p for p in [folder, *folder.parents] if p.exists()), None)
    return existing is not None and existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)
