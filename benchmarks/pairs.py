"""B and C measured in pairs, in mirrored order (B C, C B, B C, ...), and each row pooled over its repeats.

    python -c "from benchmarks.pairs import run_order; print(run_order(2))"   # ['B', 'C', 'C', 'B']

One B and one C a few seconds apart gave bf16 C/B from 0.86x to 0.97x on one quiet 2-core machine (the
same commit, five runs): the machine's speed drifts by more than the gap being measured. Mirrored pairs put
a drift that is linear in time on B and C alike (with an even number of repeats: `make bench` runs four),
and pooling (all samples over all training seconds) weighs each repeat by its length, so one slow repeat
moves the figure by its share only.
"""

from __future__ import annotations

import statistics


def run_order(repeats: int) -> list[str]:
    """The order of the rows: B C for the first repeat, C B for the second, and so on."""
    return [key for r in range(repeats) for key in (("B", "C") if r % 2 == 0 else ("C", "B"))]


def pool(rows: list[dict]) -> dict:
    """The first repeat's row (its wall time, memory, accuracy, log) with training speed and start-up
    pooled over every repeat; `repeats` keeps each one's figures. A failed repeat fails the row."""
    row = dict(rows[0])
    if len(rows) == 1:
        return row
    row["repeats"] = [
        {key: r.get(key) for key in ("rc", "train_s", "train_samples", "samples_per_s", "load_1m", "started_at")}
        | {"train_start_s": r.get("timeline_s", {}).get("train_start")}
        for r in rows
    ]
    row["rc"] = next((r["rc"] for r in rows if r.get("rc")), 0)
    times = [r.get("train_s") for r in rows]
    samples = [r.get("train_samples") for r in rows]
    # A repeat without a figure (it failed) leaves none: a single run must not pass for a pooled one.
    pooled = None not in times and None not in samples and sum(times) > 0
    row["train_s"] = statistics.fmean(times) if pooled else None
    row["samples_per_s"] = sum(samples) / sum(times) if pooled else None
    starts = [r.get("timeline_s", {}).get("train_start") for r in rows]
    row["startup_s"] = statistics.fmean(starts) if None not in starts else None
    return row


def startup_s(row: dict) -> float | None:
    """Command start to first batch: the mean over a pooled row's repeats, else the row's own."""
    return row.get("startup_s", row.get("timeline_s", {}).get("train_start"))


def pair_ratios(b: dict, c: dict) -> list[float]:
    """C/B of each repeat, in the order they ran."""
    each = zip(b.get("repeats", [b]), c.get("repeats", [c]), strict=True)
    speeds = [(x.get("samples_per_s"), y.get("samples_per_s")) for x, y in each]
    return [c_speed / b_speed for b_speed, c_speed in speeds if b_speed and c_speed]
