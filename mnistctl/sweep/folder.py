"""The sweep folder: new, or empty, or a mnistctl sweep being resumed; claimed before the multirun, and
given back untouched by a sweep that could not start.

    mnistctl sweep criterion=ce,mse hydra.sweep.dir=mydata    # refused when mydata holds anything

A sweep writes summary.csv, multirun.yaml and numbered job folders into its folder, so a folder that
holds anything else (a user's files, another tool's multirun) is refused in one line and left as it
was; the dry run asks the same question. `claim` creates what is missing and sweep.json (exclusively:
of two sweeps started at once into one folder, one gets it); `release` removes exactly what this
command created when the multirun stopped before its first job, and for a `resume` puts back every
file the sweep's process changed (a launcher that refuses to start leaves the folder as it was).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from mnistctl import __version__
from mnistctl.atomic import atomic_write
from mnistctl.errors import UsageError
from mnistctl.layout import JOB_RECORD, SWEEP_RECORD, SWEEPS_ROOT, job_dirs
from mnistctl.process_alive import process_record
from mnistctl.sweep import in_use

KEY = "hydra.sweep.dir"


@dataclass
class Claim:
    path: Path
    created: list[Path] = field(default_factory=list)  # folders this command made, the sweep folder last
    resumed: bool = False
    # A resumed folder as it was: its entries, its own files' bytes (sweep.json, multirun.yaml, optuna.db, ...)
    # and each job record's identity, so that a resume that starts no job puts back every file.
    entries: set[str] = field(default_factory=set)
    files: dict[str, tuple[bytes, os.stat_result]] = field(default_factory=dict)
    jobs: dict[str, tuple[int, int, int]] = field(default_factory=dict)


def problem(folder: Path) -> str | None:
    """Why a new sweep may not use `folder`, or None."""
    existing = next((p for p in [folder, *folder.parents] if p.exists() or p.is_symlink()), None)
    if existing is not None and not existing.is_dir():
        what = "is a file" if existing == folder else f"is inside {existing}, which is a file"
        return f"{KEY}={folder} {what}, not a folder; choose a new or empty folder"
    if existing is not None and existing != folder and not os.access(existing, os.W_OK | os.X_OK):
        return f"{KEY}={folder} cannot be created: {existing} is not writable; choose another folder"
    if existing == folder:
        try:
            entries = sorted(p.name for p in folder.iterdir())
        except OSError as err:
            return f"{KEY}={folder} cannot be read ({err.strerror}); choose another folder"
        if SWEEP_RECORD in entries:
            return (
                f"{KEY}={folder} already holds a sweep; finish it with 'mnistctl sweep --resume {folder}' "
                "or choose another folder"
            )
        if entries:
            shown = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
            return (
                f"{KEY}={folder} is not empty (it holds {shown}); a sweep needs a new or empty folder, "
                "or --resume DIR for a folder made by 'mnistctl sweep'"
            )
        if not os.access(folder, os.W_OK | os.X_OK):
            return f"{KEY}={folder} is not writable; choose another folder"
    return None


def claim(folder: Path | None, overrides: list[str]) -> Claim:
    """Create the sweep folder (sweeps/<date>_<time>[_N] when none was chosen) and its sweep.json."""
    chosen = folder is not None
    base = Path(SWEEPS_ROOT, time.strftime("%Y-%m-%d_%H-%M-%S")).resolve()
    for n in itertools.count():
        if not chosen:
            folder = base.with_name(f"{base.name}_{n}") if n else base
            if folder.exists():
                continue
        if found := problem(folder):
            raise UsageError(found)
        created = [p for p in [*reversed(folder.parents), folder] if not p.exists()]
        try:
            folder.mkdir(parents=True, exist_ok=True)
            # Exclusive create: of two sweeps started at once into one folder, exactly one gets it.
            os.close(os.open(folder / SWEEP_RECORD, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            break
        except FileExistsError:
            if chosen:
                raise UsageError(problem(folder) or f"{KEY}={folder} was taken by another sweep") from None
        except OSError as err:
            raise UsageError(f"{KEY}={folder} cannot be created: {err.strerror or err}") from None
    record = {"overrides": overrides, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "mnistctl": __version__}
    record[in_use.PROCESS_KEY] = process_record()  # --resume refuses while it is alive
    with atomic_write(folder / SWEEP_RECORD) as f:
        json.dump(record, f, indent=2)
    return Claim(folder, created)


def resume(folder: Path) -> Claim:
    """Take a sweep folder over for --resume (refused while the sweep still runs here: in_use.py), keeping in
    memory what `release` needs to put it back as it was."""
    files = {p.name: (p.read_bytes(), p.stat()) for p in folder.iterdir() if p.is_file() and not p.is_symlink()}
    taken = Claim(folder, resumed=True, entries={p.name for p in folder.iterdir()}, files=files)
    taken.jobs = _job_records(folder)
    in_use.take_over(folder)  # writes sweep.json: after the copy above
    return taken


def _job_records(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Each job.json's inode, size and mtime: a job that starts writes its record (atomically: a new inode)."""
    stats = {str(job): (job / JOB_RECORD).stat() for job in job_dirs(folder)}
    return {job: (s.st_ino, s.st_size, s.st_mtime_ns) for job, s in stats.items()}


def release(taken: Claim) -> bool:
    """Undo `claim` (or `resume`) after a multirun that started no job: remove what this command made, put
    back what it changed, nothing else. False, and nothing undone, when a job started."""
    if taken.resumed:
        return _put_back(taken)
    if job_dirs(taken.path):
        return False
    if taken.path in taken.created:  # everything in it is this sweep's (sweep.json, multirun.yaml, ...)
        shutil.rmtree(taken.path, ignore_errors=True)
    else:  # the folder was empty when claimed: all it holds now is the sweep's
        for entry in taken.path.iterdir():
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    for parent in reversed(taken.created[:-1] if taken.path in taken.created else taken.created):
        try:
            parent.rmdir()  # only while empty: another sweep may have started in sweeps/ meanwhile
        except OSError:
            break
    return True


def _put_back(taken: Claim) -> bool:
    """A resume that started no job: its folder's own files as they were (multirun.yaml, sweep.json, a study
    the sweeper opened), what it added removed (submitit's folder, a job folder without a record)."""
    if _job_records(taken.path) != taken.jobs:
        return False
    for entry in taken.path.iterdir():
        if entry.name not in taken.entries:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    for name, (content, stat) in taken.files.items():
        path = taken.path / name
        if not path.is_file() or path.read_bytes() != content:
            with atomic_write(path, "wb") as f:
                f.write(content)
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return True
