"""The summary's order: completed jobs first, by best val/acc, then every other job by job number, the same
order --status uses; records built by hand (the summary reads job.json), so nothing trains.

    .venv/bin/python -m pytest tests/test_sweep_summary.py      # fast
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import read_csv, run_main
from mnistctl.sweep.status import collect as status_rows
from mnistctl.sweep.summary import collect, summarize

# job folder -> (status, best val/acc so far); an interrupted or pruned job has the metrics of the epochs it ran
JOBS = {
    "0": ("completed", 0.0664),
    "1": ("interrupted", 0.7168),
    "2": ("completed", 0.5),
    "3": ("completed", 0.5),
    "10": ("failed", None),
    "11": ("pruned", 0.9),
    "2_1": ("failed", None),
    "4": ("completed", None),  # completed without validation (limit_val_batches=0): nothing to rank it by
}


def sweep_of_records(sweep: Path) -> None:
    for name, (status, val_acc) in JOBS.items():
        (sweep / name).mkdir(parents=True)
        job = int(name) if name.isdigit() else name
        record = {"job": job, "overrides": [f"seed={name.replace('_', '')}"], "key": f"seed={name}", "status": status}
        record |= {"val_acc": val_acc, "test_acc": None, "epochs": 1, "attempts": 1, "error": None}
        (sweep / name / "job.json").write_text(json.dumps(record))


def test_completed_jobs_rank_first_and_the_rest_follow_by_job_number(tmp_path, capsys):
    """The bug: the sort key looked only at whether val/acc was known, so an interrupted job with the
    partial val/acc of its first epochs was ranked (and named best) above completed jobs, and jobs without
    val/acc sorted as strings (10 and 11 before 2)."""
    sweep = tmp_path / "s"
    sweep_of_records(sweep)
    expected = ["2", "3", "0", "4", "1", "2_1", "10", "11"]  # 2 and 3 tie: by number
    assert [str(r["job"]) for r in collect(sweep)] == expected
    summarize(sweep)
    assert [r["job"] for r in read_csv(sweep / "summary.csv")] == expected
    assert [str(r["job"]) for r in json.loads((sweep / "summary.json").read_text())["jobs"]] == expected
    capsys.readouterr()
    assert run_main("sweep", "--summary", str(sweep)) == 0
    table = [line.split("│")[1:4] for line in capsys.readouterr().out.splitlines() if line.startswith("│")]
    assert [[cell.strip() for cell in row][0::2] for row in table][:2] == [["2", "completed"], ["3", "completed"]]
    # --status lists the same jobs by number, numerically
    rows, _ = status_rows(sweep)
    assert [str(r["job"]) for r in rows] == ["0", "1", "2", "2_1", "3", "4", "10", "11"]
