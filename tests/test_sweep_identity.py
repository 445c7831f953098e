"""A sweep job's identity is its key (issue 9.8), and every job folder shows in the summary (issue 9.14).

    .venv/bin/python -m pytest tests/test_sweep_identity.py     # one tiny real job (fast tier), more with -m slow

A numbered folder whose job.json holds another job's key (an edited sweep.json, hydra.sweep.subdir=same)
or cannot be read is never trusted: not skipped as completed, not resumed from, never written over; the
job runs in a fresh folder <number>_<k>. `sweep --summary` lists an unreadable job.json as `unreadable`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from conftest import SWEEP_ON_CPU, read_csv, run_cli, run_main
from mnistctl.sweep.job_folder import claim_job_dir, job_key
from mnistctl.sweep.summary import collect

pytestmark = pytest.mark.usefixtures("sweep_tree")
ONE_BATCH = [  # the smallest real job: seconds of training, a checkpoint, a test result
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    SWEEP_ON_CPU,
]


def files_of(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def foreign_job(folder: Path, overrides: list[str], status: str) -> None:
    """A job folder as another job of the sweep left it: its record, a run, a last.ckpt that is not one."""
    record = {"job": 0, "overrides": overrides, "key": job_key(overrides), "status": status, "val_acc": 0.99}
    record |= {"test_acc": 0.98, "epochs": 1, "wall_s": 1.0, "attempts": 1, "error": None}
    (folder / "job.json").parent.mkdir(parents=True)
    (folder / "job.json").write_text(json.dumps(record))
    checkpoints = folder / "runs" / "mnist" / "version_0" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "last.ckpt").write_bytes(b"another job's checkpoint, not a real one")


def test_claim_skips_folders_holding_another_record(tmp_path):
    sweep = tmp_path / "s"
    foreign_job(sweep / "0", ["criterion=mse"], "completed")
    (sweep / "same").mkdir()
    (sweep / "same" / "job.json").write_text('{"job": "same", "key": "crit')  # truncated: not trusted either
    before = files_of(sweep)
    record = {"key": "criterion=nll", "status": "running"}
    assert claim_job_dir(sweep, sweep / "0", 0, record) == sweep / "0_1"
    assert claim_job_dir(sweep, sweep / "same", 0, record) == sweep / "0_2"  # Hydra's folder, then <n>, <n>_k
    assert claim_job_dir(sweep, sweep / "a" / "b", 3, record) == sweep / "3"  # only direct children hold jobs
    assert {k: v for k, v in files_of(sweep).items() if k in before} == before
    assert json.loads((sweep / "0_1" / "job.json").read_text()) == {**record, "job": "0_1"}
    assert sorted(p.name for p in (sweep / "0_1").iterdir()) == ["job.json"]  # no claim file left


@pytest.mark.parametrize("status", ["completed", pytest.param("running", marks=pytest.mark.slow)])
def test_a_folder_holding_another_jobs_record_is_never_trusted(tmp_path, status):
    # sweep.json edited from criterion=mse to criterion=nll, as in the issue: folder 0 is mse's.
    sweep = tmp_path / "s"
    foreign_job(sweep / "0", ["criterion=mse", *ONE_BATCH], status)
    (sweep / "sweep.json").write_text(json.dumps({"overrides": ["criterion=nll", *ONE_BATCH]}))
    before = files_of(sweep / "0")
    done = run_cli("sweep", "--resume", str(sweep))
    assert done.returncode == (0 if status == "completed" else 1), done.stderr[-3000:]  # mse's job is unfinished
    assert "already completed: skipped" not in done.stdout + done.stderr
    # mse's folder: not skipped into, not resumed from, not written over. job.log is Hydra's log of the job
    # number it gave that folder, where it notes the nll job starting; nothing of mnistctl's.
    assert {k: v for k, v in files_of(sweep / "0").items() if k != "job.log"} == before
    nll = json.loads((sweep / "0_1" / "job.json").read_text())
    assert nll["key"] == job_key(["criterion=nll", *ONE_BATCH]) and nll["status"] == "completed"
    assert nll["resumed_from"] is None and nll["attempts"] == 1
    assert nll["val_acc"] != 0.99 and 0 < nll["val_acc"] <= 1
    config = (sweep / "0_1" / "job.yaml").read_text()
    assert "class_path: torch.nn.NLLLoss" in config
    rows = {r["job"]: r for r in read_csv(sweep / "summary.csv")}
    assert set(rows) == {"0", "0_1"} and float(rows["0_1"]["val_acc"]) == pytest.approx(nll["val_acc"])


def test_summary_lists_an_unreadable_job_record(tmp_path, capsys):
    sweep = tmp_path / "s"
    foreign_job(sweep / "0", ["criterion=ce"], "completed")
    (sweep / "1").mkdir()
    (sweep / "1" / "job.json").write_text('{"job": 1, "overrides": ["criterion=mse"], "stat')  # killed mid-write
    assert run_main("sweep", "--summary", str(sweep)) == 1
    captured = capsys.readouterr()
    rows = [line.split("│")[1:4] for line in captured.out.splitlines() if line.startswith("│")]
    assert [[cell.strip() for cell in row] for row in rows] == [
        ["0", "criterion=ce", "completed"],
        ["1", "(none)", "unreadable"],
    ]
    (unreadable,) = [r for r in collect(sweep) if r["status"] == "unreadable"]
    assert unreadable["job"] == 1 and unreadable["error"].startswith("1/job.json is not complete JSON (48 bytes)")
    assert captured.err == "mnistctl sweep: warning: 1 job record(s) could not be read (job 1): listed as unreadable\n"
    assert sorted(p.name for p in sweep.iterdir()) == ["0", "1"]  # --summary writes nothing
