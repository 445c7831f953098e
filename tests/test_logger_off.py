"""`--trainer.logger false` (a Lightning docs example) just works; `null` and `true` mean the default loggers.

Bug each test catches: the default config's LearningRateMonitor crashing a documented flag; `null` putting
the checkpoints into <run>/lightning_logs/version_0 (Lightning's own default logger), out of --ckpt_path's reach.

    .venv/bin/python -m pytest tests/test_logger_off.py     # three tiny fits, about 20 s
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import TINY, run_main


@pytest.mark.parametrize("value", ["False", "false"])
def test_logger_off_drops_what_needs_a_logger_and_keeps_the_run(value, capsys):
    assert run_main("fit", *TINY, "--trainer.logger", value) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "logging is off" in line]
    assert lines == [
        "logging is off (--trainer.logger false): LearningRateMonitor, LearningCurves off too; "
        "run.json still records every epoch"
    ]
    assert "Traceback" not in err and "error" not in err
    (run,) = Path("runs/mnist").glob("version_*")
    assert not (run / "metrics.csv").exists() and not list(run.glob("events.out.tfevents.*"))
    assert not (run / "learning_curves.png").exists()
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "completed" and [h["epoch"] for h in record["history"]] == [0]
    assert 0 < record["history"][0]["val/acc"] <= 1 and 0 < record["metrics"]["test/acc"] <= 1
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["trainer"]["logger"] is False
    assert [c["class_path"].rsplit(".", 1)[-1] for c in config["trainer"]["callbacks"]] == [
        "ModelCheckpoint",
        "EarlyStopping",
        "TestPlots",
    ]
    # The run keeps mnistctl's layout: its checkpoints are where --ckpt_path last looks.
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert run_main("test", "--ckpt_path", "last", *TINY[4:6]) == 0
    assert (run / "test" / "metrics.csv").is_file()


@pytest.mark.parametrize("value", ["null"])  # `true` takes the same branch
def test_null_and_true_mean_the_default_loggers_in_the_run_folder(value, capsys):
    assert run_main("fit", *TINY, "--trainer.logger", value) == 0
    (run,) = Path("runs/mnist").glob("version_*")
    assert (run / "metrics.csv").is_file() and list(run.glob("events.out.tfevents.*"))
    assert (run / "learning_curves.png").is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()  # not in <run>/lightning_logs/version_0/checkpoints
    assert not (run / "lightning_logs").exists()
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert [lg["class_path"] for lg in config["trainer"]["logger"]] == [
        "pytorch_lightning.loggers.CSVLogger",
        "pytorch_lightning.loggers.TensorBoardLogger",
    ]
    assert "logging is off" not in capsys.readouterr().err
