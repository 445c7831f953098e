"""Progress output (bar on a terminal, lines elsewhere, --quiet), the end-of-fit summary, and run.json."""

from __future__ import annotations

import json
import re
import shutil
import signal
from pathlib import Path

import pytest

from conftest import TINY, last_metric, run_main
from mnistctl.model import MNISTClassifier

# TINY with the progress display left on (TINY turns it off for quiet test logs).
TINY_WITH_PROGRESS = [*TINY, "--trainer.enable_progress_bar", "true"]
# Rich's progress bar: batches done/total, then elapsed • remaining (the ETA).
BAR = re.compile(r"\d+/\d+ \d+:\d\d:\d\d • \d+:\d\d:\d\d")


def test_run_json_of_a_fit(tiny_run):
    record = json.loads((tiny_run / "run.json").read_text())
    assert record["status"] == "completed" and record["subcommand"] == "fit" and record["error"] is None
    assert record["command"].startswith("mnistctl fit --trainer.max_epochs 1 ") and record["argv"][0] == "fit"
    assert record["seed"] == 42 and record["epochs_completed"] == 1
    assert (tiny_run / record["config"]).is_file()
    assert {"python", "mnistctl", "torch", "pytorch-lightning"} <= set(record["versions"])
    assert record["git"] is None or re.fullmatch(r"[0-9a-f]{40}", record["git"]["commit"])
    ckpts = record["checkpoints"]
    assert ckpts["monitor"] == "val/acc" and (tiny_run / ckpts["best"]).is_file()
    assert ckpts["last"] == "checkpoints/last.ckpt"
    assert ckpts["best_score"] == pytest.approx(last_metric(tiny_run / "metrics.csv", "val/acc"))
    assert record["metrics"]["test/acc"] == pytest.approx(last_metric(tiny_run / "metrics.csv", "test/acc"))
    for name in ("learning_curves.png", "test/confusion_matrix.png", "test/misclassified.png", "metrics.csv"):
        assert name in record["outputs"]
    assert all((tiny_run / name).is_file() for name in record["outputs"])
    assert 0 < record["wall_time_s"] < 600 and record["device"]["accelerator"] == "cpu"


def test_lines_and_summary_when_output_is_not_a_terminal(capsys):
    assert run_main("fit", *TINY_WITH_PROGRESS) == 0  # stdout and stderr are captured here, not terminals
    out, err = capsys.readouterr()
    assert not BAR.search(out + err)  # no bar drawn into a log
    epoch_lines = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == 1
    assert re.fullmatch(
        r"epoch 1/1  train/acc \d\.\d{4}  train/loss \d+\.\d{4}  val/acc \d\.\d{4}  val/loss \d+\.\d{4}  \d+\.\ds",
        epoch_lines[0],
    )
    assert re.search(r"^test: 2 batches in \d+\.\ds  test/acc \d\.\d{4}", err, re.M)
    run = Path("runs/mnist/version_0")
    record = json.loads((run / "run.json").read_text())
    summary = err[err.index("fit completed in") :].splitlines()
    assert re.fullmatch(r"fit completed in \d+s, 1 epochs", summary[0])
    best = record["checkpoints"]["best"]
    assert summary[1].split() == ["best", "val/acc", f"{record['checkpoints']['best_score']:.4f}", str(run / best)]
    assert summary[2].split() == ["test/acc", f"{record['metrics']['test/acc']:.4f}"]
    assert summary[3].split()[:3] == ["run", "folder", str(run)]


def test_quiet_prints_no_progress_no_table_no_summary(capsys):
    assert run_main("fit", *TINY_WITH_PROGRESS, "--trainer.limit_train_batches", "2", "--quiet") == 0
    out, err = capsys.readouterr()
    assert "Test metric" not in out and not BAR.search(out)
    assert "epoch 1/1" not in err and "fit completed" not in err and "wrote" not in err
    # Quiet changes what is said, not what is written.
    run = Path("runs/mnist/version_0")
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "completed" and record["argv"][-2:] == ["--trainer.enable_progress_bar", "false"]
    assert (run / "learning_curves.png").is_file() and (run / "test" / "confusion_matrix.png").is_file()


def test_test_on_a_terminal_draws_a_bar_with_eta_and_writes_beside_the_run(tiny_run, monkeypatch, capsys):
    run = Path("runs/mnist/version_0")
    shutil.copytree(tiny_run / "checkpoints", run / "checkpoints")
    monkeypatch.setattr("mnistctl.cli.progress.is_terminal", lambda: True)
    assert run_main("test", "--ckpt_path", "last", "--trainer.limit_test_batches", "2", "--num_threads", "2") == 0
    out, err = capsys.readouterr()
    assert re.search(r"Testing .*" + BAR.pattern, out), out
    assert "test: 2 batches" not in err
    record = json.loads((run / "test" / "run.json").read_text())
    assert record["status"] == "completed" and record["subcommand"] == "test"
    assert record["ckpt_path"] == str((run / "checkpoints" / "last.ckpt").resolve())
    assert record["metrics"]["test/acc"] == pytest.approx(last_metric(run / "test" / "metrics.csv", "test/acc"))
    assert {"confusion_matrix.png", "misclassified.png", "metrics.csv", "config.yaml"} <= set(record["outputs"])
    assert all((run / "test" / name).is_file() for name in record["outputs"])


def test_an_interrupted_fit_says_so_and_keeps_its_curves(monkeypatch):
    step = MNISTClassifier.training_step

    def interrupt_in_second_epoch(self, batch, batch_idx):
        if self.current_epoch == 1 and batch_idx == 2:
            raise KeyboardInterrupt
        return step(self, batch, batch_idx)

    monkeypatch.setattr(MNISTClassifier, "training_step", interrupt_in_second_epoch)
    try:
        rc = run_main("fit", *TINY, "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "4")
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning ignores Ctrl-C while it shuts down
    assert rc == 130  # the shell convention for Ctrl-C
    run = Path("runs/mnist/version_0")
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "interrupted" and record["error"] == "KeyboardInterrupt"
    assert record["epochs_completed"] == 1 and record["finished"] is not None
    assert "test/acc" not in record["metrics"] and "val/acc" in record["metrics"]
    assert (run / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "learning_curves.png" in record["outputs"]
