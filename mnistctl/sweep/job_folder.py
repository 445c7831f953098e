"""Which folder of a sweep a job owns: a job's identity is its key (its overrides, order-free), and a folder
is the job's only when its job.json holds that key.

    mnistctl sweep --resume sweeps/<time>     # completed jobs found by key and skipped, interrupted ones resumed

Hydra numbers jobs and names their folders (hydra.sweep.subdir); a resumed sweep may number them
differently, an edited sweep.json or hydra.sweep.subdir=same may point a job at another job's folder. So a
job looks for the folder whose record holds its key (`find_job_dir`) and otherwise claims one that holds
no record (`claim_job_dir`): another job's folder, or one with an unreadable job.json, is never trusted,
skipped into, resumed from or written over.
"""

from __future__ import annotations

import json
from pathlib import Path

from mnistctl import layout
from mnistctl.atomic import atomic_write
from mnistctl.errors import UsageError
from mnistctl.layout import JOB_RECORD

JOB_STATUSES = ("running", "completed", "failed", "interrupted", "pruned")  # what job.py records


def job_key(overrides: list[str]) -> str:
    """A job's identity: its overrides, order-free, without Hydra's own (launcher, sweep folder)."""
    return " ".join(sorted(o for o in overrides if not o.lstrip("+~").startswith("hydra")))


def read_record(job_dir: Path) -> dict | None:
    return layout.read_record(job_dir, JOB_RECORD)


def foreign_record_problem(record: dict) -> str | None:
    """What a readable job.json lacks to be a mnistctl sweep job's record (another tool wrote it), or None."""
    job, overrides, status = record.get("job"), record.get("overrides"), record.get("status")
    if isinstance(job, bool) or not isinstance(job, (int, str)):
        return "no job number"
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        return "no list of overrides"
    if status not in JOB_STATUSES:
        return "no status" if status is None else f"status {status!r} is none of {', '.join(JOB_STATUSES)}"
    return None


def sweep_job_record(job_dir: Path) -> dict | None:
    """A job's record for --summary and --status; None when it cannot be read (a row of its own). A readable
    job.json that is no mnistctl record means the folder is not a mnistctl sweep: one line, not a bogus table."""
    record = read_record(job_dir)
    if record is not None and (problem := foreign_record_problem(record)):
        raise UsageError(
            f"{job_dir / JOB_RECORD} is not a mnistctl sweep job record ({problem}): {job_dir.parent} is not a "
            "sweep folder; give a folder made by 'mnistctl sweep'"
        )
    return record


def write_record(job_dir: Path, record: dict) -> None:
    with atomic_write(job_dir / JOB_RECORD) as f:
        json.dump(record, f, indent=2)


def find_job_dir(sweep_dir: Path, key: str) -> Path | None:
    """The folder in which a job with these overrides already ran, if any (jobs may be renumbered)."""
    for job_dir in layout.job_dirs(sweep_dir):
        record = read_record(job_dir)
        if record and record.get("key") == key:
            return job_dir
    return None


def claim_job_dir(sweep_dir: Path, output_dir: Path, number: int, record: dict) -> Path:
    """A folder of the sweep that holds no other job, claimed by writing this job's record into it.

    Hydra's folder for the job (<sweep>/<number>, or whatever hydra.sweep.subdir makes of it) unless it
    already holds a job.json, which is then another job's or unreadable: never trusted, never written
    over (hydra.sweep.subdir=same, an edited sweep.json). The job then runs in <sweep>/<number>_<k>.
    The record is named only where none exists (atomic_write, replace=False): of two jobs started at
    once, one gets each folder.
    """
    candidates = [output_dir] if output_dir.parent == sweep_dir else []  # job_dirs() lists direct children
    candidates.append(sweep_dir / str(number))
    k = 0
    while True:
        for job_dir in candidates:
            try:
                job_dir.mkdir(parents=True, exist_ok=True)
                # replace=False names the complete record only where none exists: the claim is exclusive
                with atomic_write(job_dir / JOB_RECORD, replace=False) as f:
                    json.dump({**record, "job": job_number(job_dir)}, f, indent=2)
                return job_dir
            except (FileExistsError, NotADirectoryError):
                continue
        k += 1
        candidates = [sweep_dir / f"{number}_{k}"]


def job_number(job_dir: Path) -> int | str:
    return int(job_dir.name) if job_dir.name.isdigit() else job_dir.name


def job_order(job: int | str) -> tuple:
    """Sort key of job numbers: 2 before 10 (never as strings), <n>_<k> right after <n>, other names last."""
    head, _, tail = str(job).partition("_")
    if head.isdigit() and (not tail or tail.isdigit()):
        return (0, int(head), int(tail or 0), "")
    return (1, 0, 0, str(job))


def last_checkpoint(job_dir: Path) -> Path | None:
    run = layout.job_run_dir(job_dir)
    return layout.last_checkpoint(run) if run is not None and layout.last_checkpoint(run).is_file() else None
