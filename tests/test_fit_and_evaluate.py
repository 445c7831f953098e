"""A tiny real fit, then validate/test/predict on its checkpoint, in-process and in a fresh process."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import TINY, TINY_RUN_MIN_ACC, last_metric, read_csv, run_cli, run_main


def test_tiny_fit_writes_config_checkpoints_and_metrics(tiny_run):
    assert (tiny_run / "config.yaml").is_file()
    config = yaml.safe_load((tiny_run / "config.yaml").read_text())
    assert config["seed_everything"] == 42
    assert config["trainer"]["logger"][0]["init_args"]["version"] == tiny_run.name
    ckpts = {p.name for p in (tiny_run / "checkpoints").glob("*.ckpt")}
    assert "last.ckpt" in ckpts and any(re.fullmatch(r"epoch00-val_acc0\.\d{4}\.ckpt", n) for n in ckpts)
    assert list(tiny_run.glob("events.out.tfevents.*"))
    header = read_csv(tiny_run / "metrics.csv")[0].keys()
    for name in ["train/loss", "train/acc", "val/loss", "val/acc", "test/loss", "test/acc"]:
        assert name in header
    assert last_metric(tiny_run / "metrics.csv", "test/acc") >= TINY_RUN_MIN_ACC


def test_test_in_a_new_process_reproduces_fit_accuracy(tiny_run):
    fit_acc = last_metric(tiny_run / "metrics.csv", "test/acc")
    best = next(p for p in (tiny_run / "checkpoints").glob("epoch*.ckpt"))
    done = run_cli(
        "test",
        "--ckpt_path",
        str(best),
        "--trainer.limit_test_batches",
        "2",
        "--trainer.enable_progress_bar",
        "false",
        cwd=tiny_run.parent.parent.parent,
    )
    assert done.returncode == 0, done.stderr
    assert last_metric(tiny_run / "test" / "metrics.csv", "test/acc") == pytest.approx(fit_acc, abs=1e-6)
    # Nothing new under runs/: the output went into the run that made the checkpoint.
    assert [p.name for p in tiny_run.parent.iterdir()] == [tiny_run.name]


def test_predict_writes_one_row_per_test_image(tiny_run, tmp_path):
    out = tmp_path / "preds.csv"
    assert (
        run_main(
            "predict",
            "--ckpt_path",
            str(tiny_run / "checkpoints" / "last.ckpt"),
            "--predictions.path",
            str(out),
            "--trainer.enable_progress_bar",
            "false",
        )
        == 0
    )
    rows = read_csv(out)
    assert list(rows[0].keys()) == ["id", "pred", "prob", *(f"p{k}" for k in range(10))]
    assert len(rows) == 10_000
    assert [int(r["id"]) for r in rows] == list(range(10_000))
    for row in rows[:50]:
        probs = [float(row[f"p{k}"]) for k in range(10)]
        assert sum(probs) == pytest.approx(1.0, abs=1e-4)
        assert int(row["pred"]) == max(range(10), key=probs.__getitem__)
        assert float(row["prob"]) == pytest.approx(max(probs), abs=1e-6)
    assert not list(tmp_path.glob(".preds.csv.*"))  # no temporary left behind


def test_predict_default_path_is_in_the_run_folder(tiny_run, tmp_path):
    shutil.copytree(tiny_run.parent.parent.parent / "runs", tmp_path / "runs")
    assert (
        run_main(
            "predict",
            "--ckpt_path",
            "last",
            "--trainer.limit_predict_batches",
            "1",
            "--trainer.enable_progress_bar",
            "false",
        )
        == 0
    )
    (run,) = (tmp_path / "runs" / "mnist").iterdir()
    assert len(read_csv(run / "predictions.csv")) == 256  # one batch of data.eval_batch_size


@pytest.mark.parametrize("name", ["last", "best", "last.ckpt"])
def test_named_checkpoints_resolve_to_the_newest_run(name, tiny_run, tmp_path):
    shutil.copytree(tiny_run.parent.parent.parent / "runs", tmp_path / "runs")
    assert (
        run_main(
            "validate",
            "--ckpt_path",
            name,
            "--trainer.limit_val_batches",
            "1",
            "--trainer.enable_progress_bar",
            "false",
        )
        == 0
    )
    (run,) = (tmp_path / "runs" / "mnist").iterdir()
    assert last_metric(run / "validate" / "metrics.csv", "val/acc") >= TINY_RUN_MIN_ACC


def test_checkpoint_keeps_the_data_settings(tmp_path):
    args = [*TINY, "--data.split_seed", "7", "--data.val_size", "1000", "--test_after_fit", "false"]
    assert run_main("fit", *args) == 0
    (run,) = (tmp_path / "runs" / "mnist").iterdir()
    assert not (run / "test").exists()  # test_after_fit false: no test ran
    assert (
        run_main(
            "validate",
            "--ckpt_path",
            "last",
            "--trainer.limit_val_batches",
            "1",
            "--trainer.enable_progress_bar",
            "false",
        )
        == 0
    )
    config = yaml.safe_load((run / "validate" / "config.yaml").read_text())
    assert config["data"]["split_seed"] == 7 and config["data"]["val_size"] == 1000


def test_two_fits_get_two_run_folders(tmp_path):
    for _ in range(2):
        assert run_main("fit", *TINY, "--test_after_fit", "false", "--trainer.limit_val_batches", "1") == 0
    assert sorted(p.name for p in (tmp_path / "runs" / "mnist").iterdir()) == ["version_0", "version_1"]


def test_same_command_twice_gives_the_same_metrics(tmp_path):
    args = [*TINY, "--test_after_fit", "false", "--data.augment_shift", "2"]
    for _ in range(2):
        assert run_main("fit", *args) == 0
    first, second = (tmp_path / "runs" / "mnist" / v / "metrics.csv" for v in ("version_0", "version_1"))
    for name in ("train/loss", "val/loss", "val/acc"):
        assert last_metric(first, name) == last_metric(second, name)
    config = yaml.safe_load((tmp_path / "runs" / "mnist" / "version_0" / "config.yaml").read_text())
    assert config["seed_everything"] == 42


@pytest.mark.parametrize("batches", ["1", "4"])
def test_one_cycle_schedule_fits_a_run_of_a_few_batches(batches):
    # 4 steps at pct_start 0.25 is a one-step warm-up: torch's OneCycleLR divides by zero on it.
    assert run_main("fit", *TINY, "--trainer.limit_train_batches", batches, "--test_after_fit", "false") == 0
    (run,) = Path("runs/mnist").iterdir()
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert last_metric(run / "metrics.csv", "train/loss") > 0
