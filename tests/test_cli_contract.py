"""Contract tests: help, version, print_config and every shipped config, all in-process."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from conftest import REPO, run_main
from mnistctl import __version__

SUBCOMMANDS = ["fit", "validate", "test", "predict"]


def test_top_level_help_lists_every_subcommand(capsys):
    assert run_main("--help") == 0
    out = capsys.readouterr().out
    for name in [*SUBCOMMANDS, "sweep", "runs"]:
        assert f"  {name}" in out


def test_version(capsys):
    assert run_main("--version") == 0
    assert capsys.readouterr().out.strip() == f"mnistctl {__version__}"


def test_python_dash_m_matches_console_script():
    done = subprocess.run([sys.executable, "-m", "mnistctl", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == f"mnistctl {__version__}"


@pytest.mark.parametrize("subcommand", SUBCOMMANDS)
def test_subcommand_help_shows_documented_options(subcommand, capsys):
    assert run_main(subcommand, "--help") == 0
    out = capsys.readouterr().out
    assert "--model.dropout_ratio" in out and "--data.batch_size" in out and "--ckpt_path" in out
    # The constructor docstrings are the option help.
    assert "seed of the train/validation split" in out


@pytest.mark.parametrize("subcommand", SUBCOMMANDS)
def test_print_config_is_loadable_yaml(subcommand, capsys):
    assert run_main(subcommand, "--print_config") == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["seed_everything"] == 42
    assert config["model"]["criterion"]["class_path"] == "torch.nn.CrossEntropyLoss"
    assert config["data"]["val_size"] == 5000


def test_print_config_reflects_command_line_swaps(capsys):
    args = [
        "--optimizer",
        "SGD",
        "--optimizer.lr",
        "0.05",
        "--model.criterion",
        "torch.nn.MSELoss",
        "--trainer.max_epochs",
        "3",
        "--data.batch_size",
        "256",
    ]
    assert run_main("fit", *args, "--print_config") == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["optimizer"]["class_path"] == "torch.optim.SGD"
    assert config["optimizer"]["init_args"]["lr"] == 0.05
    assert config["model"]["criterion"]["class_path"] == "torch.nn.MSELoss"
    assert config["trainer"]["max_epochs"] == 3 and config["data"]["batch_size"] == 256


def test_reduce_lr_on_plateau_has_a_default_monitor(capsys):
    assert run_main("fit", "--lr_scheduler", "ReduceLROnPlateau", "--print_config") == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["lr_scheduler"]["class_path"].endswith("ReduceLROnPlateau")


LIGHTNING_CONFIGS = sorted(p for p in (REPO / "configs").glob("*.yaml"))


@pytest.mark.parametrize("config", LIGHTNING_CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_validates(config, capsys):
    assert run_main("fit", "--config", str(config), "--print_config") == 0
    assert yaml.safe_load(capsys.readouterr().out)["model"]
