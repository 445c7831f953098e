"""A real tiny sweep beside a real fit: `mnistctl runs` lists both, and TensorBoard's HParams dashboard
over the sweep folder shows its jobs side by side.

    .venv/bin/python -m pytest tests/test_runs_sweep.py     # slow tier: a two-job sweep, about a minute
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hparams_dashboard import columns, session_groups

from conftest import SWEEP_TINY, TINY, run_cli, run_main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """runs/mnist/version_0 (a tiny fit) and sweeps/tiny (criterion=ce,mse, two jobs)."""
    root = tmp_path_factory.mktemp("runs_and_sweep")
    done = run_cli("sweep", "criterion=ce,mse", *SWEEP_TINY, "hydra.sweep.dir=sweeps/tiny", cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        assert run_main("fit", *TINY) == 0
    return root


def jobs(root: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in (root / "sweeps/tiny").glob("*/job.json")}


def test_table_lists_the_fit_and_every_sweep_job(folder, capsys, monkeypatch):
    monkeypatch.chdir(folder)
    assert run_main("runs", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["run"] for r in rows] == ["tiny/0", "tiny/1", "mnist/version_0"]  # oldest first: the sweep ran first
    recorded = jobs(folder)
    for row in rows[:2]:
        job = recorded[row["job"]]  # what the sweep itself recorded for the job
        assert row["sweep"] == str(folder / "sweeps/tiny") and row["status"] == job["status"] == "completed"
        assert (row["val_acc"], row["test_acc"], row["epochs"]) == (job["val_acc"], job["test_acc"], job["epochs"])
    criteria = [r["config"]["model.criterion"] for r in rows]
    assert criteria == ["CrossEntropyLoss", "MSELoss", "CrossEntropyLoss"]
    assert [r["config"]["trainer.limit_train_batches"] for r in rows] == [5, 5, 8]
    assert run_main("runs", "--sweep", "ti*", "--json") == 0
    assert [r["run"] for r in json.loads(capsys.readouterr().out)] == ["tiny/0", "tiny/1"]
    assert run_main("runs") == 0
    table = capsys.readouterr().out
    assert table.startswith("3 of 3 runs under runs and sweeps\n")
    assert "model.criterion" in table.splitlines()[1] and "MSELoss" in table


def test_show_and_diff_of_sweep_jobs(folder, capsys, monkeypatch):
    monkeypatch.chdir(folder)
    assert run_main("runs", "show", "sweeps/tiny/1", "--json") == 0  # a job folder: its run
    shown = json.loads(capsys.readouterr().out)
    assert shown["path"] == str(folder / "sweeps/tiny/1/runs/mnist/version_0")
    assert shown["reproduce"] == "cd sweeps/tiny/1 && mnistctl fit --config job.yaml"
    assert run_main("runs", "show", shown["id"]) == 0
    assert "reproduce  cd sweeps/tiny/1 && mnistctl fit --config job.yaml" in capsys.readouterr().out
    assert run_main("runs", "diff", "sweeps/tiny/0", shown["id"], "--json") == 0
    diff = json.loads(capsys.readouterr().out)
    assert diff["config"] == {
        "model.criterion": ["CrossEntropyLoss", "MSELoss"],
        "model.criterion.ignore_index": [-100, None],  # CrossEntropyLoss's own arguments
        "model.criterion.label_smoothing": [0.0, None],
    }
    assert diff["metrics"]["best val/acc"] == [jobs(folder)["0"]["val_acc"], jobs(folder)["1"]["val_acc"]]


def test_hparams_dashboard_over_the_sweep_shows_each_job(folder):
    sweep = folder / "sweeps/tiny"
    hparam_columns, metric_columns = columns(sweep)
    assert {"model.criterion", "optimizer.lr", "trainer.max_epochs"} <= set(hparam_columns)
    assert {"val/acc_best", "test/acc", "test/loss"} <= set(metric_columns)
    groups = {g["hparams"]["model.criterion"]: g for g in session_groups(sweep)}
    assert set(groups) == {"CrossEntropyLoss", "MSELoss"}
    for criterion, job in (("CrossEntropyLoss", "0"), ("MSELoss", "1")):
        record = jobs(folder)[job]
        assert groups[criterion]["runs"] == [f"{job}/runs/mnist/version_0"]
        assert groups[criterion]["metrics"]["val/acc_best"] == pytest.approx(record["val_acc"])
        assert groups[criterion]["metrics"]["test/acc"] == pytest.approx(record["test_acc"])
