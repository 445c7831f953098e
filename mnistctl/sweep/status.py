"""`mnistctl sweep --status DIR`: where each job of a sweep stands, now, from its records and the scheduler.

    mnistctl sweep --status sweeps/2026-01-01_12-00-00

States: queued (submitted, not started, or requeued and waiting), running (with the epoch its run.json
has reached), completed, failed, interrupted (stopped by a signal, a time limit, a preemption that did
not requeue it, a lost node: `--resume` continues it), pruned (stopped early by the search), cancelled
(cancelled before it started). A job's job.json says what the job last recorded; SLURM (squeue, scontrol,
sacct) says whether a job that has not recorded its end is still queued or running; for jobs of the
local launchers, whether the process that ran it is still alive. Reads files and asks SLURM; writes nothing.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml

from mnistctl import layout
from mnistctl.process_alive import record_alive
from mnistctl.sweep import scheduler
from mnistctl.sweep.detach import submitted_jobs
from mnistctl.sweep.job_folder import job_order, sweep_job_record
from mnistctl.sweep.metrics import run_metrics

FINAL = ("completed", "failed", "pruned")


def collect(sweep_dir: Path) -> tuple[list[dict], str | None]:
    """One row per job (submitted or started) and, when SLURM could not be asked, why."""
    jobs: dict[str, dict] = {}
    for key, entry in submitted_jobs(sweep_dir).items():
        jobs[key] = {"job": entry["job"], "overrides": entry["overrides"], "slurm_job_id": entry["slurm_job_id"]}
    for job_dir in layout.job_dirs(sweep_dir):
        record = sweep_job_record(job_dir)
        if record is None:
            jobs[f"?{job_dir.name}"] = {"job": job_dir.name, "overrides": [], "state": "unreadable"}
            continue
        row = jobs.setdefault(record.get("key", job_dir.name), {})
        row.update(job=record.get("job"), overrides=record.get("overrides", []), record=record, job_dir=job_dir)
        row["slurm_job_id"] = record.get("slurm_job_id") or row.get("slurm_job_id")
    ids = [row["slurm_job_id"] for row in jobs.values() if row.get("slurm_job_id")]
    unreachable = None
    try:
        states = scheduler.slurm_states(ids) if ids else {}
    except scheduler.Unreachable as err:
        states, unreachable = {}, str(err)
    rows = []
    for row in jobs.values():
        if "state" not in row:
            row["slurm_state"] = states.get(row.get("slurm_job_id"))
            row["state"], row["note"] = _state(row, asked=unreachable is None)
        rows.append(_progress(row, sweep_dir))
    return sorted(rows, key=lambda row: job_order(row["job"])), unreachable


def _state(row: dict, asked: bool) -> tuple[str, str]:
    record, slurm_id, slurm = row.get("record"), row.get("slurm_job_id"), row.get("slurm_state")
    status = record.get("status") if record else None
    if status in FINAL:
        return status, record.get("error") or ""
    if slurm_id and slurm is not None:
        if scheduler.is_queued(slurm):
            return "queued", f"SLURM {slurm}" + (", requeued" if record else "")
        if scheduler.is_live(slurm):  # running, or suspended, signalled, winding down: SLURM's word says which
            return "running", "" if slurm == "RUNNING" else f"SLURM {slurm}"
        if record is None:
            word = "cancelled" if slurm.startswith("CANCELLED") else "failed"
            return word, f"SLURM {slurm} before it started; --resume submits it again"
        return "interrupted", f"SLURM {slurm}; --resume continues it"
    if slurm_id and not asked:
        return status or "queued", "SLURM not asked (see below)"
    if slurm_id:  # SLURM has forgotten the job: it ended a while ago
        if record is None:
            return "cancelled", f"SLURM no longer knows job {slurm_id} and it never started; --resume submits it again"
        if status == "running":
            return "interrupted", f"its SLURM job {slurm_id} ended without recording its end; --resume continues it"
        return status or "interrupted", record.get("error") or ""
    if status == "running":
        alive = record_alive(record)
        if alive is False:
            return "interrupted", f"its process {record['pid']} is gone; --resume continues it"
        if alive is None:
            return "running", f"on {record.get('host') or 'an unknown host'}: not checked from here"
    return status or "queued", (record or {}).get("error") or ""


def _progress(row: dict, sweep_dir: Path) -> dict:
    """Epochs done (of max_epochs from job.yaml) and best val/acc so far, from the job's run.json."""
    job_dir = row.get("job_dir")
    row["epoch"], row["val_acc"], row["max_epochs"] = None, None, None
    if job_dir is None:
        return row
    metrics = run_metrics(job_dir, sweep_dir)
    row["epoch"], row["val_acc"] = metrics["epochs"], metrics["val_acc"]
    try:
        row["max_epochs"] = yaml.safe_load((job_dir / layout.JOB_CONFIG).read_text())["trainer"]["max_epochs"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        pass
    return row


def print_status(sweep_dir: Path) -> int:
    from rich.console import Console
    from rich.table import Table

    rows, unreachable = collect(sweep_dir)
    if not rows:
        from mnistctl.errors import UsageError

        raise UsageError(f"{sweep_dir} holds no sweep jobs (no job.json, no slurm.json); give a sweep folder")
    common = set.intersection(*[set(r["overrides"]) for r in rows]) if len(rows) > 1 else set()
    table = Table(title=f"sweep {sweep_dir} ({len(rows)} job{'s' * (len(rows) != 1)}, {time.strftime('%H:%M:%S')})")
    for name in ("job", "overrides", "state", "epoch", "val/acc", "attempts", "SLURM job", "note"):
        table.add_column(name, justify="right" if name in ("job", "epoch", "val/acc", "attempts") else "left")
    colour = {"completed": "green", "failed": "red", "running": "cyan", "queued": "blue"}
    for r in rows:
        record = r.get("record") or {}
        epoch = "" if r["epoch"] is None else f"{r['epoch']}/{r['max_epochs'] or '?'}"
        table.add_row(
            str(r["job"]),
            " ".join(o for o in r["overrides"] if o not in common) or "(none)",
            f"[{colour.get(r['state'], 'yellow')}]{r['state']}",
            epoch,
            "" if r["val_acc"] is None else f"{r['val_acc']:.4f}",
            str(record.get("attempts", "")),
            r.get("slurm_job_id") or "",
            r.get("note", ""),
        )
    if common:
        table.caption = f"every job: {' '.join(sorted(common))}"
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    sys.stdout.write(", ".join(f"{n} {state}" for state, n in counts.items()) + "\n")
    if unreachable:
        sys.stderr.write(f"mnistctl sweep: warning: SLURM not asked ({unreachable}); states from job.json only\n")
    return 0
