"""Which runs `mnistctl runs` shows: RUN arguments resolved to runs, the filters, the sort order.

    mnistctl runs show 1a2b          # resolve(): a folder, an id prefix (4+ characters), last or best
    mnistctl runs --status completed --sort val_acc

`last` and `best` are the run whose checkpoint `--ckpt_path last|best` takes, found by the same function
(`cli.checkpoints.resolve_ckpt_path`, which reads the checkpoints), so the two never name different runs.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import string
from pathlib import Path

from mnistctl import layout
from mnistctl.errors import UsageError
from mnistctl.tools.runs_index import UNREADABLE, Run, collect, run_at

STATUSES = ("completed", "failed", "interrupted", "running", UNREADABLE)
SORTS = {  # name -> (row field, best first)
    "started": ("started", False),
    "id": ("id", False),
    "run": ("run", False),
    "status": ("status", False),
    "took": ("wall_time_s", False),
    "command": ("subcommand", False),
    "epochs": ("epochs", True),
    "val_acc": ("val_acc", True),
    "test_acc": ("test_acc", True),
}
MIN_ID = 4


def all_runs(args: argparse.Namespace) -> list[Run]:
    runs = collect(args.runs_dir, args.sweeps_dir)
    if not runs:
        example = f"{layout.RUNS_ROOT}/<name>/{layout.VERSION_PREFIX}N/{layout.RUN_RECORD}"
        raise UsageError(
            f"no runs under {args.runs_dir} or {args.sweeps_dir} (no {example}, nor sweep jobs with one); "
            "run 'mnistctl fit' or 'mnistctl sweep' first, or point --runs_dir / --sweeps_dir at your runs"
        )
    return runs


def _newest_with(args: argparse.Namespace, which: str, runs: list[Run]) -> Run:
    """The run `--ckpt_path last|best` takes: the run folder of the very checkpoint that resolves to."""
    from mnistctl.cli.checkpoints import resolve_ckpt_path  # reads checkpoints with torch: only for last/best

    try:
        ckpt = resolve_ckpt_path(which, args.runs_dir)
    except UsageError as err:
        raise UsageError(f"runs: {which} (the run of --ckpt_path {which}): {err}") from None
    run = _run_in(layout.run_dir_of(ckpt), runs)
    if run is None:
        raise UsageError(
            f"runs: --ckpt_path {which} takes {ckpt}, whose run folder has no {layout.RUN_RECORD}: "
            "not a run that 'mnistctl runs' can show"
        )
    return run


def _run_in(folder: Path, runs: list[Run]) -> Run | None:
    """The run in folder with the id the listing gives it: the listed run at that path (a symlinked run folder
    is listed under its own name), else the listed run it points to, else (outside the roots) its run.json's."""
    given, real = os.path.abspath(folder), os.path.realpath(folder)
    for wanted, listed in ((given, os.path.abspath), (real, os.path.abspath), (real, os.path.realpath)):
        if found := next((r for r in runs if listed(r.folder) == wanted), None):
            return found
    return run_at(folder)


def resolve(value: str, args: argparse.Namespace, runs: list[Run]) -> Run:
    """A RUN argument: last, best, a folder, or an id prefix."""
    if value in ("last", "best"):
        return _newest_with(args, value, runs)
    path = Path(value)
    if path.is_dir():
        job_runs = layout.job_run_dirs(path) if (path / layout.JOB_RECORD).is_file() else []
        run = _run_in(path, runs) or (_run_in(job_runs[-1], runs) if job_runs else None)
        if run is None:
            raise UsageError(
                f"runs: {value} is not a run folder (no {layout.RUN_RECORD} in it); 'mnistctl runs' lists them"
            )
        return run
    if not set(value.lower()) <= set(string.hexdigits):
        raise UsageError(
            f"runs: no run folder or id {value!r}; give a folder, an id from 'mnistctl runs', last or best"
        )
    if len(value) < MIN_ID:
        raise UsageError(
            f"runs: id {value} is too short; give at least {MIN_ID} characters of an id from 'mnistctl runs'"
        )
    matches = [r for r in runs if r.full_id.startswith(value.lower())]
    if not matches:
        raise UsageError(
            f"runs: no run with id {value} under {args.runs_dir} or {args.sweeps_dir}; 'mnistctl runs' lists them"
        )
    if len(matches) > 1:
        shown_ids = ", ".join(f"{r.full_id[:10]} ({r.label})" for r in matches[:4])
        raise UsageError(
            f"runs: id {value} is ambiguous: {len(matches)} runs start with it ({shown_ids}); give more characters"
        )
    return matches[0]


def filtered(runs: list[Run], args: argparse.Namespace) -> list[Run]:
    if args.status:
        wanted = {s.strip() for s in args.status.split(",") if s.strip()}
        if unknown := sorted(wanted - set(STATUSES)):
            raise UsageError(f"runs: --status {','.join(unknown)} is not a status; use {', '.join(STATUSES)}")
        runs = [r for r in runs if r.status in wanted]
    if args.name:
        runs = [r for r in runs if fnmatch.fnmatchcase(_name_of(r), args.name)]
    if args.sweep:
        runs = [r for r in runs if r.sweep is not None and fnmatch.fnmatchcase(r.sweep.name, args.sweep)]
    return runs


def _name_of(run: Run) -> str:
    """The run's name: <name> of <root>/<name>/version_N."""
    base = run.folder.parent if run.folder.name in layout.EVALUATIONS else run.folder
    return base.parent.name


def sorted_rows(rows: list[dict], key: str, reverse: bool, runs: list[Run]) -> list[dict]:
    """rows (of some of runs) sorted by key, a column or a config key of any of runs."""
    field, best_first = SORTS.get(key.replace("/", "_"), (None, False))
    by_id = {r.full_id: r for r in runs}
    if field is None:
        if not any(key in r.config for r in runs):
            raise UsageError(f"runs: --sort {key} is neither a column ({', '.join(SORTS)}) nor a config key of any run")
        value = lambda row: by_id[row["full_id"]].config.get(key)  # noqa: E731
    elif field == "started":
        value = lambda row: by_id[row["full_id"]].started_at  # noqa: E731
    else:
        value = lambda row: row[field]  # noqa: E731
    # By the full start time in run.json (the table shows it to the second): ties stay oldest first.
    rows = sorted(rows, key=lambda row: by_id[row["full_id"]].started_at or 0.0)
    present = [r for r in rows if value(r) is not None]
    present.sort(key=lambda row: (_kind(value(row)), value(row)), reverse=best_first != reverse)
    return present + [r for r in rows if value(r) is None]  # runs without the value last, either way


def _kind(value: object) -> str:
    """Values sort among their kind: numbers (ints and floats together), then text, ..."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return "0 number" if number else type(value).__name__
