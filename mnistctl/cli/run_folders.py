"""Where a command may write: a new run folder for fit, the outputs of validate/test/predict; and the clean-up.

    mnistctl fit --trainer.max_epochs 1        # runs/mnist/version_N, made by this command
    mnistctl test --ckpt_path best --output_dir results/   # a read-only run folder is left alone

A fit that fails before its first checkpoint removes what it created, and only that: the folders that
`layout.allocate_run_dir` made for it. Nothing else is ever removed (not a --ckpt_path's folder, not a
folder that existed before, nothing behind a symlink). Every path problem is one line with the fix.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from mnistctl import layout
from mnistctl.errors import UsageError

EVALUATIONS = ("validate", "test", "predict")


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
    check_run_name(name)
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
    """Where validate/test/predict keep run.json, config.yaml, metrics.csv: checked before anything runs."""
    if output_dir is None:
        folder = layout.evaluation_dir(run_dir, subcommand)
        if not _writable(folder):
            raise UsageError(
                f"cannot write into {folder} (the run folder is read-only); send the outputs elsewhere "
                f"with --output_dir DIR"
            )
        return folder
    folder = Path(output_dir).expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--output_dir {output_dir} is a file; give a folder")
    record = layout.read_record(folder) if folder.is_dir() else None
    ours = record is not None and record.get("subcommand") in EVALUATIONS
    if folder.is_dir() and any(folder.iterdir()) and not ours:
        raise UsageError(
            f"--output_dir {output_dir} already holds other files; give a new or empty folder (or one an "
            "earlier validate, test or predict wrote)"
        )
    if not _writable(folder):
        raise UsageError(f"--output_dir {output_dir} is not writable; give a folder you can write to")
    return folder


def check_predictions_path(path: str) -> None:
    """`--predictions.path` must name a file that can be written: refused before predicting."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise UsageError(
            f"--predictions.path {path} is a folder; give a file name, e.g. {Path(path) / layout.PREDICTIONS}"
        )
    if not _writable(target.parent):
        raise UsageError(
            f"--predictions.path {path}: cannot write into {target.parent}; give a path in a writable folder"
        )


def _writable(folder: Path) -> bool:
    """Can this process create `folder` (or files in it)? The nearest existing folder decides."""
    existing = next((p for p in [folder, *folder.parents] if p.exists()), None)
    return existing is not None and existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)
