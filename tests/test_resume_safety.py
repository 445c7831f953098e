"""fit --ckpt_path never destroys a user's files: a failed one removes only what it created, a refused one
changes nothing in the run, a resume appends to the run's history, and settings differ only when allowed.

    .venv/bin/python -m pytest tests/test_resume_safety.py      # tiny real runs; about two minutes on 2 cores
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from file_state import fingerprint

from conftest import PROBES_ON_PATH, TINY, read_csv, run_cli, run_main

TWO_EPOCHS = [*TINY, "--trainer.max_epochs", "2"]


@pytest.fixture(scope="module")
def two_epoch_runs(tmp_path_factory) -> Path:
    """A finished two-epoch fit (tested after fit); tests work on copies of its runs/ folder."""
    folder = tmp_path_factory.mktemp("two_epochs")
    done = run_cli("fit", *TWO_EPOCHS, cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder / "runs"


@pytest.fixture
def run(two_epoch_runs, tmp_path) -> Path:
    shutil.copytree(two_epoch_runs, tmp_path / "runs")
    return tmp_path / "runs" / "mnist" / "version_0"


def epochs_in(metrics_csv: Path, column: str) -> list[int]:
    return [int(row["epoch"]) for row in read_csv(metrics_csv) if row.get(column)]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# -- item 1: a failed fit removes only what it created ---------------------------------------------


@pytest.mark.parametrize(
    "bad", [["--trainer.max_epochs", "3"], ["--data.augment_shift", "9"]], ids=["one-cycle", "bad-flag"]
)
@pytest.mark.parametrize("via", ["file", "symlink"])
def test_failed_fit_from_a_copied_checkpoint_keeps_its_folder(two_epoch_runs, tmp_path, capsys, bad, via):
    mine = tmp_path / "mine"
    mine.mkdir()
    shutil.copy(two_epoch_runs / "mnist" / "version_0" / "checkpoints" / "last.ckpt", mine / "last.ckpt")
    (mine / "thesis.txt").write_text("four years of work\n")
    if via == "symlink":  # the checkpoint reached through a link in another folder
        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "elsewhere" / "last.ckpt").symlink_to(mine / "last.ckpt")
        os.chdir(tmp_path / "elsewhere")
    else:
        os.chdir(mine)
    before = fingerprint(tmp_path)
    assert run_main("fit", *TINY[2:], "--ckpt_path", "last.ckpt", *bad) == 2
    one_error_line(capsys)
    assert fingerprint(tmp_path) == before  # the new run folder it made is gone again, nothing else


def test_failed_fit_removes_only_the_folders_it_made(tmp_path, capsys):
    (tmp_path / "runs").mkdir()  # the user's (empty) folder, made before the command
    assert run_main("fit", *TINY, "--data.augment_shift", "9") == 2
    one_error_line(capsys)
    assert (tmp_path / "runs").is_dir() and not any((tmp_path / "runs").iterdir())


# -- item 2: a resume appends to the run's history; a refused one changes nothing -------------------


def test_resume_keeps_the_earlier_epochs_once_each(run):
    (epoch0,) = (run / "checkpoints").glob("epoch00-*.ckpt")
    assert run_main("fit", *TWO_EPOCHS, "--ckpt_path", str(epoch0)) == 0  # re-trains epoch 1
    metrics = run / "metrics.csv"
    assert epochs_in(metrics, "train/loss") == [0, 1] and epochs_in(metrics, "val/acc") == [0, 1]
    assert len(epochs_in(metrics, "test/acc")) == 1
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "completed" and record["metrics"]["test/acc"] > 0.3
    assert [h["epoch"] for h in record["history"]] == [0, 1]
    (resume,) = record["resumes"]
    assert resume["from_epoch"] == 1 and resume["from_checkpoint"] == str(epoch0)
    assert record["command"].endswith("--trainer.max_epochs 2")  # the run's own command is kept

    assert run_main("fit", *TWO_EPOCHS, "--ckpt_path", "last") == 0  # nothing left to train: a no-op resume
    assert epochs_in(metrics, "train/loss") == [0, 1] and len(epochs_in(metrics, "test/acc")) == 1
    record = json.loads((run / "run.json").read_text())
    assert [h["epoch"] for h in record["history"]] == [0, 1] and len(record["resumes"]) == 2
    assert record["epochs_completed"] == 2


@pytest.mark.parametrize(
    "change",
    [["--trainer.max_epochs", "3"], ["--model.dropout_ratio", "0.5"], ["--data.augment_shift", "9"]],
    ids=["one-cycle-length", "model-setting", "bad-value"],
)
def test_refused_resume_changes_nothing_in_the_run(run, capsys, change):
    before = fingerprint(run.parent.parent)
    assert run_main("fit", *TWO_EPOCHS, "--ckpt_path", "last", *change) == 2
    line = one_error_line(capsys)
    assert change[0].removeprefix("--").split(".")[-1] in line or "one-cycle" in line, line
    assert fingerprint(run.parent.parent) == before


# -- item 7 / issue 16 item 3: settings that differ from the run are refused, or applied and recorded ----


def test_changed_settings_on_resume_are_named_with_the_flag_that_allows_them(run, capsys):
    args = ["--ckpt_path", "last", "--model.dropout_ratio", "0.5", "--optimizer.lr", "0.01"]
    assert run_main("fit", *TWO_EPOCHS, *args) == 2
    line = one_error_line(capsys)
    assert "model.dropout_ratio (0.25 -> 0.5)" in line and "optimizer.init_args.lr (0.003 -> 0.01)" in line
    assert "--allow_config_change true" in line


def test_allowed_model_change_is_applied_and_recorded(run):
    (epoch0,) = (run / "checkpoints").glob("epoch00-*.ckpt")
    args = ["--ckpt_path", str(epoch0), "--model.dropout_ratio", "0.5", "--allow_config_change", "true"]
    assert run_main("fit", *TWO_EPOCHS, *args) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["dropout_ratio"] == 0.5
    record = json.loads((run / "run.json").read_text())
    last = torch.load(run / record["checkpoints"]["last"], weights_only=True)  # Lightning may name it last-v1
    assert last["hyper_parameters"]["dropout_ratio"] == 0.5 and last["epoch"] == 1
    (resume,) = record["resumes"]
    assert resume["config_changes"] == {"model.dropout_ratio": {"run": 0.25, "now": 0.5}}
    assert resume["optimizer_state"] == "restored"


def test_allowed_optimizer_change_starts_optimizer_and_schedule_afresh(run):
    (epoch0,) = (run / "checkpoints").glob("epoch00-*.ckpt")
    args = ["--ckpt_path", str(epoch0), "--optimizer.lr", "0.01", "--allow_config_change", "true"]
    assert run_main("fit", *TWO_EPOCHS, *args) == 0
    record = json.loads((run / "run.json").read_text())
    last = torch.load(run / record["checkpoints"]["last"], weights_only=True)
    (schedule,) = last["lr_schedulers"]
    # The new one-cycle peaks at the new rate and spans the 8 steps still to run, not the whole 16.
    assert last["optimizer_states"][0]["param_groups"][0]["max_lr"] == 0.01 and schedule["total_steps"] == 8
    (resume,) = record["resumes"]
    assert resume["optimizer_state"] == "restarted"
    assert resume["config_changes"] == {"optimizer.init_args.lr": {"run": 0.003, "now": 0.01}}


def test_evaluation_uses_the_checkpoints_model_and_says_so(run, capsys):
    args = ["--ckpt_path", "last", "--model.dropout_ratio", "0.5", *TINY[2:]]
    assert run_main("test", *args) == 0
    err = capsys.readouterr().err
    (warning,) = [line for line in err.splitlines() if "warning:" in line and "dropout_ratio" in line]
    assert "dropout_ratio 0.25 (not 0.5)" in warning
    assert yaml.safe_load((run / "test" / "config.yaml").read_text())["model"]["dropout_ratio"] == 0.25


# -- last and best are the newest run's or nothing ---------------------------------------------------


def test_last_and_best_never_fall_back_to_an_older_run(run, tmp_path, monkeypatch):
    """The bug: a fit stopped by Ctrl-C in its first epoch has interrupted.ckpt but no last.ckpt, and the
    interrupt told the user to run `fit --ckpt_path last`; `last` then fell through to the older run, which
    that command trained on in place (its last.ckpt, metrics.csv, run.json rewritten); `test --ckpt_path
    best` likewise tested the older run as if it were the newest."""
    stop = ["--trainer.callbacks+=probes.InterruptAt", "--trainer.callbacks.epoch=0"]
    stopped = run_cli("fit", *TINY, *stop, cwd=tmp_path, env=PROBES_ON_PATH)
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    newest = tmp_path / "runs" / "mnist" / "version_1"
    assert [p.name for p in (newest / "checkpoints").iterdir()] == ["interrupted.ckpt"]
    assert "--ckpt_path last" not in stopped.stderr and "no epoch to resume from" in stopped.stderr
    before = fingerprint(tmp_path / "runs")
    for command in (
        ["fit", *TWO_EPOCHS, "--ckpt_path", "last"],
        ["test", *TINY, "--ckpt_path", "best"],
        ["test", *TINY],
    ):
        done = run_cli(*command, cwd=tmp_path)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
        assert "the newest fit run, runs/mnist/version_1, has no loadable" in lines[-1], lines[-1]
        assert (
            "its checkpoints: interrupted.ckpt); it stopped in its first epoch: remove runs/mnist/version_1"
            in lines[-1]
        )
    older = next(p.name for p in (run / "checkpoints").iterdir() if p.name.startswith("epoch"))
    done = run_cli("test", *TINY, "--ckpt_path", older, cwd=tmp_path)  # a bare name only the older run has
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"an older run holds one: give --ckpt_path runs/mnist/version_0/checkpoints/{older}" in done.stderr
    assert fingerprint(tmp_path / "runs") == before  # the older run was neither trained on nor tested
    assert run.name == "version_0" and (run / "checkpoints" / "last.ckpt").is_file()


def test_a_folder_whose_run_json_is_not_a_fits_record_is_not_taken_for_a_run(run, tmp_path, monkeypatch):
    """The bug: any folder holding a file named run.json counted as a mnistctl run folder. `test` of a checkpoint
    kept there replaced the user's test/metrics.csv and test/config.yaml, and `fit` "resumed in place",
    rewriting the user's run.json and config.yaml and appending to their metrics.csv."""
    mine = tmp_path / "mine"
    (mine / "test").mkdir(parents=True)
    shutil.copy(run / "checkpoints" / "last.ckpt", mine / "model.ckpt")
    for name, text in {
        "run.json": '{"notes": "mine"}\n',
        "config.yaml": "my: cfg\n",
        "metrics.csv": "a,b\n",
        "test/metrics.csv": "my,own\n",
        "test/config.yaml": "mine\n",
    }.items():
        (mine / name).write_text(text)
    before = fingerprint(mine)
    monkeypatch.chdir(tmp_path)
    refused = run_cli("test", *TINY, "--ckpt_path", "mine/model.ckpt", cwd=tmp_path)
    assert refused.returncode == 2 and "already holds other files" in refused.stderr, refused.stderr[-2000:]
    done = run_cli("fit", *TWO_EPOCHS, "--ckpt_path", "mine/model.ckpt", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert fingerprint(mine) == before
    record = json.loads((tmp_path / "runs" / "mnist" / "version_1" / "run.json").read_text())  # a new run folder
    assert record["subcommand"] == "fit" and record["ckpt_path"] == str(mine / "model.ckpt")
