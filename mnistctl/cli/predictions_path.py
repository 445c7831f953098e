"""Where `mnistctl predict` may write its CSV (and, with --data.predict_dir, its skip list): never over a user's file.

    mnistctl predict --ckpt_path best --predictions.path preds.csv [--predictions.overwrite true]

A file already at --predictions.path is replaced only when it looks like a predictions CSV an earlier predict
wrote: a regular file (not a link, a FIFO or a device) whose first line begins `id,pred,prob,p0,`. Its
`<stem>.skipped.txt` is replaced or removed only beside such a CSV. Anything else there is a user's file and
is refused with one line, unless --predictions.overwrite true says to replace it. Checked before predicting and
again just before writing; a file that appears at the path in between is never replaced.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mnistctl import layout
from mnistctl.cli.run_folders import writable
from mnistctl.data.images import EXTENSIONS
from mnistctl.errors import UsageError

FLAG = "--predictions.overwrite true"


def check_predictions_path(path: str, overwrite: bool = False, skip_list: bool = False, reads: tuple = ()) -> None:
    """Refused before predicting: a folder, a place that cannot be written, a user's file, a file it reads
    (`reads`: the checkpoint, the images), the last even with --predictions.overwrite true."""
    target = Path(path).expanduser()
    for source in reads:
        if _is_or_holds(Path(source).expanduser(), target):
            raise UsageError(
                f"--predictions.path {path} is {'among ' if Path(source).is_dir() else ''}what predict reads "
                f"({source}); give another file name"
            )
    if target.is_dir():
        raise UsageError(
            f"--predictions.path {path} is a folder; give a file name, e.g. {Path(path) / layout.PREDICTIONS}"
        )
    if not writable(target.parent):
        raise UsageError(
            f"--predictions.path {path}: cannot write into {target.parent}; give a path in a writable folder"
        )
    may_replace(path, overwrite, skip_list)


def _is_or_holds(source: Path, target: Path) -> bool:
    """Whether writing `target` would replace the file `source`, or an image in the folder `source`."""
    if not target.exists():
        return False
    if source.is_dir():
        return target.resolve().is_relative_to(source.resolve()) and target.suffix.lower() in EXTENSIONS
    return source.exists() and os.path.samefile(source, target)


def may_replace(path: str, overwrite: bool, skip_list: bool) -> bool:
    """Whether the CSV may replace a file at `path`: True for one of ours (or with overwrite), False when nothing
    is there (so nothing may be replaced while writing); UsageError for a user's file there or beside it."""
    if overwrite:
        return True
    target = Path(path).expanduser()
    there = os.path.lexists(target)
    ours = there and is_predictions_csv(target)
    if there and not ours:
        raise UsageError(
            f"--predictions.path {path} already exists and is not a predictions CSV; give another path, or add "
            f"{FLAG} to replace it"
        )
    listed = layout.skipped_list(target)
    if skip_list and os.path.lexists(listed) and not ours:
        raise UsageError(
            f"--predictions.path {path}: {listed} already exists beside it and is not a list an earlier predict "
            f"wrote; give another path, or add {FLAG} to replace it"
        )
    return there


def appeared(path: str) -> UsageError:
    """The error for a file that appeared at `path` while predicting (atomic_write refused to replace it)."""
    return UsageError(f"--predictions.path {path} appeared while predicting; give another path, or add {FLAG}")


def is_predictions_csv(path: Path) -> bool:
    """A regular file (not followed through a link, never opened if a FIFO) that begins `id,pred,prob,p0,`."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        with open(path, newline="") as f:
            return f.readline(200).startswith(",".join([*layout.PREDICTION_COLUMNS, "p0,"]))
    except (OSError, UnicodeDecodeError):
        return False
