"""One recipe, wherever the model trains: plain Python gets the optimizer and schedule `mnistctl fit` uses."""

from __future__ import annotations

import yaml
from pytorch_lightning import Trainer, seed_everything
from pytorch_lightning.callbacks import LearningRateMonitor
from pytorch_lightning.loggers import CSVLogger

from conftest import read_csv, run_main
from mnistctl.config_files import packaged_config
from mnistctl.data import MNISTDataModule
from mnistctl.model import MNISTClassifier
from mnistctl.optimization import RECIPE_LR_SCHEDULER, RECIPE_OPTIMIZER

STEPS = ["--trainer.max_epochs", "2", "--trainer.limit_train_batches", "6", "--trainer.limit_val_batches", "2"]


def lr_by_step(metrics_csv) -> dict[int, float]:
    return {int(row["step"]): float(row["lr-Adam"]) for row in read_csv(metrics_csv) if row.get("lr-Adam")}


def test_plain_python_model_trains_with_the_cli_learning_rate_curve(tmp_path):
    monitor = ["--trainer.callbacks+=LearningRateMonitor", "--trainer.callbacks.logging_interval", "step"]
    args = [*STEPS, "--trainer.log_every_n_steps", "1", *monitor, "--test_after_fit", "false"]
    assert run_main("fit", *args, "--trainer.enable_progress_bar", "false") == 0
    (cli_run,) = (tmp_path / "runs" / "mnist").glob("version_*")

    seed_everything(42)
    trainer = Trainer(
        accelerator="cpu",  # like the CLI run (the session pins it): a GPU machine compares like with like
        max_epochs=2,
        limit_train_batches=6,
        limit_val_batches=2,
        log_every_n_steps=1,
        logger=CSVLogger(tmp_path / "plain", name="", version=""),
        callbacks=[LearningRateMonitor(logging_interval="step")],
        enable_progress_bar=False,
        enable_checkpointing=False,
    )
    trainer.fit(MNISTClassifier(), datamodule=MNISTDataModule())

    cli_curve, plain_curve = lr_by_step(cli_run / "metrics.csv"), lr_by_step(tmp_path / "plain" / "metrics.csv")
    assert sorted(cli_curve) == list(range(12))  # every optimizer step of 2 epochs x 6 batches
    assert plain_curve == cli_curve
    # The recipe's one-cycle: warm-up from lr/25 to the peak, then down to far below the start.
    peak = max(cli_curve.values())
    assert abs(peak - 0.003) < 1e-3 and cli_curve[0] < peak / 10 and cli_curve[11] < cli_curve[0]


def test_the_recipe_is_what_the_default_config_sets():
    base = yaml.safe_load(packaged_config("base.yaml").read_text())
    assert base["optimizer"] == RECIPE_OPTIMIZER
    assert base["lr_scheduler"] == RECIPE_LR_SCHEDULER


def test_the_cli_hands_the_model_its_optimizer_and_schedule(tmp_path):
    """--optimizer SGD and --lr_scheduler StepLR reach the model's one configure_optimizers."""
    args = [*STEPS, "--optimizer", "SGD", "--optimizer.lr", "0.05", "--lr_scheduler", "StepLR"]
    args += ["--lr_scheduler.step_size", "1", "--lr_scheduler.gamma", "0.5", "--test_after_fit", "false"]
    assert run_main("fit", *args, "--trainer.enable_progress_bar", "false") == 0
    (run,) = (tmp_path / "runs" / "mnist").glob("version_*")
    lrs = [float(row["lr-SGD"]) for row in read_csv(run / "metrics.csv") if row.get("lr-SGD")]
    assert lrs == [0.05, 0.025]  # the base config's LearningRateMonitor, once per epoch: halved after epoch 0
