"""A sweep's comparison: summary.csv, summary.json and a table of the completed jobs by validation accuracy.

    mnistctl sweep --summary sweeps/<time>      # print the table of an existing sweep folder

Rows come from each job's job.json, so the summary of a sweep that was interrupted, resumed or ran
on a cluster is built the same way. Jobs that differ only in `seed` form one configuration, whose
mean and standard deviation across seeds are reported too.
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
from pathlib import Path

from mnistctl.atomic import atomic_write
from mnistctl.errors import UsageError
from mnistctl.layout import JOB_RECORD, job_dirs
from mnistctl.sweep.job_folder import job_number, job_order, sweep_job_record
from mnistctl.sweep.metrics import run_metrics

COLUMNS = [
    "job",
    "trial",
    "overrides",
    "status",
    "val_acc",
    "val_loss",
    "test_acc",
    "test_loss",
    "epochs",
    "attempts",
    "wall_s",
    "threads",
    "best_ckpt",
    "error",
]
SEED_KEYS = ("seed", "seed_everything")
UNREADABLE = "unreadable"  # the status of a job whose job.json cannot be read


def collect(sweep_dir: Path) -> list[dict]:
    """Every job of the sweep folder: completed jobs first, best val/acc first, then every other job (failed,
    interrupted, pruned, running) by job number. A job whose job.json cannot be read (truncated, corrupted)
    is a row of its own with status `unreadable`."""
    records = [_current(job_dir, sweep_dir) for job_dir in job_dirs(sweep_dir)]
    return sorted(records, key=_rank)


def _rank(row: dict) -> tuple:
    """A job that did not complete has the metrics of the epochs it ran: never ranked above a completed one."""
    if row["status"] == "completed":
        val_acc = row.get("val_acc")
        return (0, val_acc is None, -(val_acc or 0), job_order(row["job"]))
    return (1, False, 0, job_order(row["job"]))


def _current(job_dir: Path, sweep_dir: Path) -> dict:
    """A job's record; for one still running or interrupted, with what its run.json holds so far."""
    record = sweep_job_record(job_dir)
    if record is None:
        return _unreadable(job_dir)
    if record.get("status") in ("running", "interrupted") and record.get("val_acc") is None:
        record.update(run_metrics(job_dir, sweep_dir))
    return record


def _unreadable(job_dir: Path) -> dict:
    try:
        size = f"{(job_dir / JOB_RECORD).stat().st_size} bytes"
    except OSError as err:
        size = err.strerror or "unreadable"
    return {
        "job": job_number(job_dir),
        "overrides": [],
        "status": UNREADABLE,
        "error": f"{job_dir.name}/{JOB_RECORD} is not complete JSON ({size}); its folder may still hold the run",
    }


def config_of(overrides: list[str]) -> str:
    """The configuration a job ran: its overrides without the seed."""
    return " ".join(o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in SEED_KEYS)


def config_stats(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation of val/acc and test/acc per configuration across its seeds."""
    groups: dict[str, list[dict]] = {}
    for row in (r for r in rows if r["status"] != UNREADABLE):  # its overrides are unknown
        groups.setdefault(config_of(row["overrides"]), []).append(row)
    stats = []
    for config, members in groups.items():
        done = [r for r in members if r.get("status") == "completed" and r.get("val_acc") is not None]
        entry = {"config": config, "jobs": [r["job"] for r in members], "n": len(done)}
        for metric in ("val_acc", "test_acc"):
            values = [r[metric] for r in done if r.get(metric) is not None]
            entry[f"{metric}_mean"] = statistics.fmean(values) if values else None
            entry[f"{metric}_std"] = statistics.stdev(values) if len(values) > 1 else None
        stats.append(entry)
    return sorted(stats, key=lambda s: (s["val_acc_mean"] is None, -(s["val_acc_mean"] or 0)))


def write(sweep_dir: Path, rows: list[dict], stats: list[dict]) -> None:
    with atomic_write(sweep_dir / "summary.csv", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "overrides": " ".join(row["overrides"])})
    summary = {"sweep_dir": str(sweep_dir), "jobs": rows, "configs": stats}
    with atomic_write(sweep_dir / "summary.json") as f:
        json.dump(summary, f, indent=2)


def _common(rows: list[dict]) -> list[str]:
    """Overrides every job shares: shown once under the table instead of in every row."""
    sets = [set(r["overrides"]) for r in rows if r["status"] != UNREADABLE]
    return sorted(set.intersection(*sets)) if len(sets) > 1 else []


def _fmt(value, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def render(sweep_dir: Path, rows: list[dict], stats: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 200)
    common = _common(rows)
    table = Table(
        title=f"sweep {sweep_dir} ({len(rows)} job{'s' * (len(rows) != 1)}, completed ones first, by best val/acc)"
    )
    numbers = ("job", "val/acc", "test/acc", "epochs", "attempts", "wall s")
    for name in ("job", "overrides", "status", *numbers[1:], "best checkpoint", "error"):
        table.add_column(name, justify="right" if name in numbers else "left")
    for r in rows:
        overrides = " ".join(o for o in r["overrides"] if o not in common) or "(none)"
        status = {"completed": "[green]completed", "failed": "[red]failed", "pruned": "[magenta]pruned"}.get(
            r["status"], f"[yellow]{r['status']}"
        )
        cells = [r.get("val_acc"), r.get("test_acc"), r.get("epochs"), r.get("attempts"), _fmt(r.get("wall_s"), 1)]
        table.add_row(
            str(r["job"]), overrides, status, *map(_fmt, cells), r.get("best_ckpt") or "", r.get("error") or ""
        )
    if common:
        table.caption = f"every job: {' '.join(common)}"
    console.print(table)
    if any(s["n"] > 1 for s in stats):
        by_config = Table(title="per configuration, across seeds")
        for name in ("configuration", "jobs", "n", "val/acc mean", "val/acc std", "test/acc mean", "test/acc std"):
            by_config.add_column(name, justify="left" if name in ("configuration", "jobs") else "right")
        for s in stats:
            config = " ".join(o for o in s["config"].split() if o not in common) or "(none)"
            values = [s["val_acc_mean"], s["val_acc_std"], s["test_acc_mean"], s["test_acc_std"]]
            by_config.add_row(config, ",".join(map(str, s["jobs"])), str(s["n"]), *map(_fmt, values))
        console.print(by_config)


def summarize(sweep_dir: Path, write_files: bool = True) -> list[dict]:
    """Collect the jobs, write summary.csv/json and the val/acc plot (unless read-only), print the table."""
    rows = collect(sweep_dir)
    if not rows:
        raise UsageError(f"{sweep_dir} holds no sweep jobs (no */{JOB_RECORD}); give a folder made by 'mnistctl sweep'")
    stats = config_stats(rows)
    if write_files:
        from mnistctl.sweep.plot import plot_val_curves

        write(sweep_dir, rows, stats)
        plot_val_curves(rows, sweep_dir / "val_curves.png", _common(rows))
    render(sweep_dir, rows, stats)
    unreadable = [str(r["job"]) for r in rows if r["status"] == UNREADABLE]
    if unreadable:
        sys.stderr.write(
            f"mnistctl sweep: warning: {len(unreadable)} job record(s) could not be read "
            f"(job {', '.join(unreadable)}): listed as {UNREADABLE}\n"
        )
    return rows
