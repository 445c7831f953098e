"""What `mnistctl runs` prints: the table of runs, one run in full (`show`), two runs side by side (`diff`).

    mnistctl runs                 # the table
    mnistctl runs show last       # one run: record, metrics, files, the command that reproduces it
    mnistctl runs diff 1a2b3c4 5d6e7f8

Tables are plain text, columns two spaces apart (hundreds of rows in milliseconds; easy to grep);
`--json` output is built from `row()` and `details()`, plain dicts. No torch.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import shlex
import sys

from mnistctl import layout
from mnistctl.console import format_duration, shown
from mnistctl.tools.runs_index import Run

COLUMNS = ("id", "run", "status", "started", "took", "command", "epochs", "val/acc", "test/acc")


def write(text: str) -> None:
    """Print text whose folder names may not be UTF-8 (kept by Python as surrogates): `caf\\xe9` for their bytes."""
    sys.stdout.write(text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))


def fmt(value: object) -> str:
    """A config value as written in the config; `-` where a run does not have the key."""
    return "-" if value is None else str(value)


def fmt_metric(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else fmt(value)


def started(run: Run) -> str | None:
    """`2026-12-04 13:08:33`: when the run started, in this machine's time zone (runs recorded under other
    UTC offsets, on cluster nodes or across a change to summer time, line up)."""
    at = run.started_at
    return datetime.datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S") if at is not None else None


def row(run: Run, short_id: str, keys: list[str]) -> dict:
    """One run as a plain dict: what `--json` prints and the table shows."""
    record = run.record or {}
    return {
        "id": short_id,
        "full_id": run.full_id,
        "run": run.label,
        "path": os.path.abspath(run.folder),
        "sweep": os.path.abspath(run.sweep) if run.sweep else None,
        "job": run.job.name if run.job else None,
        "status": run.status,
        "started": started(run),
        "finished": record.get("finished"),
        "wall_time_s": record.get("wall_time_s"),
        "subcommand": run.subcommand,
        "epochs": record.get("epochs_completed") if run.subcommand == "fit" else None,
        "val_acc": run.best_val_acc,
        "test_acc": run.metric("test/acc"),
        "test_loss": run.metric("test/loss"),
        "config": {key: run.config.get(key) for key in keys},
    }


def plain_table(header: list[str], rows: list[list[str]], right: set[int]) -> str:
    """Columns two spaces apart, like `docker ps`: fast for hundreds of rows, easy to grep and cut."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = []
    for cells in (header, *rows):
        padded = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines) + "\n"


def render_table(rows: list[dict], keys: list[str], title: str) -> None:
    header = [*COLUMNS, *keys]
    right = {i for i, name in enumerate(header) if name in ("took", "epochs", "val/acc", "test/acc")}
    cells = []
    for r in rows:
        took = format_duration(r["wall_time_s"]) if r["wall_time_s"] is not None else None
        fixed = [r["id"], r["run"], r["status"], *map(fmt, (r["started"], took, r["subcommand"], r["epochs"]))]
        cells.append(
            [*fixed, fmt_metric(r["val_acc"]), fmt_metric(r["test_acc"]), *(fmt(r["config"][k]) for k in keys)]
        )
    write(f"{title}\n{plain_table(header, cells, right)}")


def not_reproducible(run: Run) -> str | None:
    """Why no one command runs this again from scratch: it resumed with settings changed (--allow_config_change),
    so its epochs before the resume ran with values config.yaml no longer holds. None when one can."""
    resumes = [r for r in (run.record or {}).get("resumes") or [] if r.get("config_changes")]
    if not resumes or run.folder.name in layout.EVALUATIONS:
        return None
    epoch = resumes[0].get("from_epoch")
    # run.json keeps the parser's keys (optimizer.init_args.lr); the table's are flattened (optimizer.lr)
    keys = dict.fromkeys(key.replace(".init_args.", ".") for r in resumes for key in r["config_changes"])
    return (
        f"resumed{f' at epoch {epoch}' if epoch is not None else ''} with changed settings: {', '.join(keys)}; "
        f"{layout.CONFIG} holds the later values"
    )


def reproduce(run: Run) -> str | None:
    """The command that runs this again from scratch, from the current folder; None when there is none."""
    record = run.record or {}
    subcommand = record.get("subcommand") or "fit"
    if not_reproducible(run):
        return None
    if run.job is not None and run.folder.name not in layout.EVALUATIONS:
        return f"cd {shlex.quote(shown(run.job))} && mnistctl fit --config {layout.JOB_CONFIG}"
    command = f"mnistctl {subcommand} --config {shlex.quote(shown(run.folder / layout.CONFIG))}"
    if subcommand == "fit" and record.get("ckpt_path"):
        command += " --ckpt_path null"  # it resumed; the same config from scratch gives the same run
    return command


def details(run: Run, short_id: str) -> dict:
    return {
        **row(run, short_id, []),
        "config": run.config,
        "record": run.record,
        "unreadable": run.problem,  # why record is null: `history[0] is 1, not an object`, ...
        "reproduce": reproduce(run),
        "not_reproducible": not_reproducible(run),  # why reproduce is null
    }


def render_show(run: Run, short_id: str) -> None:
    record = run.record or {}
    out = [f"run        {short_id}  {shown(run.folder)}"]
    if run.record is None:
        where = shown(run.folder / layout.RUN_RECORD)
        problem = run.problem if run.problem == "is not complete JSON" else f"cannot be read: {run.problem}"
        out.append(f"status     unreadable: {where} {problem}; fix the file, or move the run folder away")
        write("\n".join(out) + "\n")
        return
    took = f", took {format_duration(record['wall_time_s'])}" if record.get("wall_time_s") is not None else ""
    out.append(f"status     {run.status}: {record.get('subcommand')}, started {started(run)}{took}")
    if run.job is not None:
        out.append(f"sweep job  {shown(run.job)}")
    out.append(f"command    {record.get('command')}  (in {record.get('cwd')})")
    out.append(f"reproduce  {reproduce(run) or f'(none: {not_reproducible(run)})'}")
    if run.gone:
        pid = record["process"].get("pid")
        out.append(
            f"note       run.json says running, but its process {pid} is gone: killed before it could record its "
            "end (the run's last.ckpt, if any, resumes it with --ckpt_path)"
        )
    if record.get("error"):
        out.append(f"error      {record['error']}")
    versions = record.get("versions") or {}
    git = record.get("git") or {}
    commit = f", git {git['commit'][:10]}{' (dirty)' if git.get('dirty') else ''}" if git.get("commit") else ""
    out.append(f"versions   {', '.join(f'{k} {v}' for k, v in versions.items())}{commit}")
    device = record.get("device") or {}
    if device:
        out.append(
            f"device     {device.get('accelerator')} x{device.get('devices')}, precision {device.get('precision')}"
        )
    out.append(f"seed       {record.get('seed')}   epochs {record.get('epochs_completed')}")
    metrics = {"best val/acc": run.best_val_acc, **(record.get("metrics") or {})}
    out.append("metrics    " + "  ".join(f"{k} {fmt_metric(v)}" for k, v in metrics.items() if v is not None))
    checkpoints = record.get("checkpoints") or {}
    if checkpoints.get("best"):
        score = f" ({checkpoints.get('monitor')} {fmt_metric(checkpoints.get('best_score'))})"
        out.append(f"best ckpt  {checkpoints['best']}{score}")
    if checkpoints.get("last"):
        out.append(f"last ckpt  {checkpoints['last']}")
    history = record.get("history") or []
    if history:
        names = list(dict.fromkeys(k for h in history for k in h if k != "epoch"))
        out.append("history    " + "  ".join(["epoch", *(f"{n:>10}" for n in names)]))
        for h in history:
            out.append("           " + "  ".join([f"{h['epoch']:>5}", *(f"{fmt_metric(h.get(n)):>10}" for n in names)]))
    outputs = record.get("outputs") or []
    out.append(f"files      {len(outputs)} in {shown(run.folder)}" + "".join(f"\n             {p}" for p in outputs))
    write("\n".join(out) + "\n")


def render_diff(a: Run, b: Run, ids: tuple[str, str], config: list[tuple[str, object, object]]) -> None:
    metrics = metric_diff(a, b)
    rows = [[key, fmt(va), fmt(vb)] for key, va, vb in config] or [["(config)", "the same", "the same"]]
    rows += [["", "", ""]]
    rows += [[key, fmt_metric(va), fmt_metric(vb)] for key, va, vb in metrics] or [
        ["(metrics)", "the same", "the same"]
    ]
    header = ["what differs", f"{ids[0]} {a.label}", f"{ids[1]} {b.label}"]
    write(plain_table(header, rows, set()))


def metric_values(run: Run) -> dict:
    record = run.record or {}
    return {
        "status": run.status,
        "subcommand": run.subcommand,
        "epochs": record.get("epochs_completed"),
        "best val/acc": run.best_val_acc,
        **(record.get("metrics") or {}),
    }


def metric_diff(a: Run, b: Run) -> list[tuple[str, object, object]]:
    ma, mb = metric_values(a), metric_values(b)
    return [(k, ma.get(k), mb.get(k)) for k in dict.fromkeys([*ma, *mb]) if not _same(ma.get(k), mb.get(k))]


def _same(a: object, b: object) -> bool:
    """Equal, where NaN equals NaN: two diverged runs do not differ in their NaN loss."""
    both_nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    return both_nan or a == b


def json_text(value: object) -> str:
    """Standard JSON for `--json`: NaN and infinities (a diverged run's loss) become null, which any parser reads."""
    return json.dumps(_finite(value), indent=2, allow_nan=False) + "\n"


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
