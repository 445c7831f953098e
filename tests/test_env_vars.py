"""Every option can be set as MNISTCTL_<SUBCOMMAND>__<KEY>__<KEY>; the command line wins over it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from conftest import TINY, TINY_RUN_MIN_ACC, last_metric, run_main


def test_env_vars_reach_the_config(monkeypatch, capsys):
    monkeypatch.setenv("MNISTCTL_FIT__TRAINER__MAX_EPOCHS", "3")
    monkeypatch.setenv("MNISTCTL_FIT__DATA__BATCH_SIZE", "64")
    monkeypatch.setenv("MNISTCTL_FIT__MODEL__DROPOUT_RATIO", "0.1")
    # Class-typed options take the same YAML/JSON as in a config file.
    monkeypatch.setenv("MNISTCTL_FIT__OPTIMIZER", json.dumps({"class_path": "SGD", "init_args": {"lr": 0.05}}))
    assert run_main("fit", "--print_config") == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["trainer"]["max_epochs"] == 3
    assert config["data"]["batch_size"] == 64
    assert config["model"]["dropout_ratio"] == 0.1
    assert config["optimizer"] == {"class_path": "torch.optim.SGD", "init_args": config["optimizer"]["init_args"]}
    assert config["optimizer"]["init_args"]["lr"] == 0.05


def test_command_line_and_config_files_beat_env_vars(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("MNISTCTL_FIT__TRAINER__MAX_EPOCHS", "3")
    assert run_main("fit", "--trainer.max_epochs", "5", "--print_config") == 0
    assert yaml.safe_load(capsys.readouterr().out)["trainer"]["max_epochs"] == 5
    (tmp_path / "four.yaml").write_text("trainer:\n  max_epochs: 4\n")
    assert run_main("fit", "--config", "four.yaml", "--print_config") == 0
    assert yaml.safe_load(capsys.readouterr().out)["trainer"]["max_epochs"] == 4


def test_env_var_names_are_in_help(capsys):
    assert run_main("fit", "--help") == 0
    out = capsys.readouterr().out
    assert "ENV:   MNISTCTL_FIT__TRAINER__MAX_EPOCHS" in out and "ENV:   MNISTCTL_FIT__DATA__BATCH_SIZE" in out


def test_env_vars_drive_a_real_evaluation(tiny_run, tmp_path, monkeypatch):
    shutil.copytree(tiny_run.parent.parent.parent / "runs", tmp_path / "runs")
    monkeypatch.setenv("MNISTCTL_VALIDATE__CKPT_PATH", "last")
    monkeypatch.setenv("MNISTCTL_VALIDATE__TRAINER__LIMIT_VAL_BATCHES", "1")
    monkeypatch.setenv("MNISTCTL_VALIDATE__TRAINER__ENABLE_PROGRESS_BAR", "false")
    assert run_main("validate") == 0
    (run,) = (tmp_path / "runs" / "mnist").iterdir()
    config = yaml.safe_load((run / "validate" / "config.yaml").read_text())
    assert config["trainer"]["limit_val_batches"] == 1
    assert Path(config["ckpt_path"]).resolve() == (run / "checkpoints" / "last.ckpt").resolve()
    assert last_metric(run / "validate" / "metrics.csv", "val/acc") >= TINY_RUN_MIN_ACC


def test_an_env_var_that_names_no_option_is_refused(monkeypatch, capsys, tmp_path):
    """The bug: jsonargparse reads only its options' variables and skips any other name, so
    MNISTCTL_FIT__OPTIMIZER__LR=-1 (an init arg of the class-typed --optimizer, which has one variable for
    the whole value) trained with lr 0.003 and exit 0, as did a misspelt MNISTCTL_FIT__TRAINER__MAX_EPOCH."""
    monkeypatch.setenv("MNISTCTL_FIT__OPTIMIZER__LR", "-1")
    assert run_main("fit", *TINY) == 2
    assert capsys.readouterr().err == (
        "mnistctl: error: environment variable MNISTCTL_FIT__OPTIMIZER__LR names no option: --optimizer is set "
        "from the environment only as a whole, class and arguments, e.g. MNISTCTL_FIT__OPTIMIZER="
        '\'{"class_path": "torch.optim.Adam", "init_args": {"lr": -1}}\'; or pass --optimizer.lr on the command line\n'
    )
    assert list(tmp_path.iterdir()) == []  # no run folder: nothing trained
    monkeypatch.delenv("MNISTCTL_FIT__OPTIMIZER__LR")
    cases = {
        "MNISTCTL_FIT__OPTIMIZER__INIT_ARGS__LR": "--optimizer is set from the environment only as a whole",
        "MNISTCTL_FIT__LR_SCHEDULER__PCT_START": "--lr_scheduler is set from the environment only as a whole",
        "MNISTCTL_FIT__TRAINER__MAX_EPOCH": "did you mean MNISTCTL_FIT__TRAINER__MAX_EPOCHS?",
    }
    for name, message in cases.items():
        with monkeypatch.context() as patch:
            patch.setenv(name, "0.5")
            assert run_main("fit", "--print_config") == 2
            err = capsys.readouterr().err
            assert err.startswith(f"mnistctl: error: environment variable {name} names no option") and message in err
            assert len(err.splitlines()) == 1
    # The form the message advises is read, and its value checked like the flag's.
    monkeypatch.setenv(
        "MNISTCTL_FIT__OPTIMIZER", json.dumps({"class_path": "torch.optim.Adam", "init_args": {"lr": -1}})
    )
    assert run_main("fit", *TINY) == 2
    assert "--optimizer.lr must be a positive finite number" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
