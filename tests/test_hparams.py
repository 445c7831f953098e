"""TensorBoard HParams: every completed fit writes its hyperparameters and final metrics into its events.

    .venv/bin/python -m pytest tests/test_hparams.py     # two tiny fits, about 20 s

Read back with TensorBoard's own event reader (EventAccumulator and the hparams plugin's metadata parser)
and with the HParams plugin's backend, as the dashboard asks it. The sweep side is in test_runs_sweep.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hparams_dashboard import columns, session_groups
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api_pb2, metadata


def read_events(run: Path) -> tuple[EventAccumulator, dict[str, bytes]]:
    events = EventAccumulator(str(run))
    events.Reload()
    return events, events.PluginTagToContent(metadata.PLUGIN_NAME)


def hparams_of(content: dict[str, bytes]) -> dict:
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    return {name: getattr(value, value.WhichOneof("kind")) for name, value in start.hparams.items()}


@pytest.fixture
def two_fits(adam_and_sgd) -> Path:
    """runs/mnist/version_0: Adam, tested after fit; version_1: SGD, 2 epochs, --test_after_fit false."""
    return adam_and_sgd / "runs"


def test_fit_writes_its_hyperparameters_and_final_metrics(two_fits):
    run = two_fits / "mnist" / "version_0"
    record = json.loads((run / "run.json").read_text())
    events, content = read_events(run)
    hparams = hparams_of(content)
    expected = {
        "seed": 42,
        "model.criterion": "CrossEntropyLoss",
        "model.dropout_ratio": 0.25,
        "optimizer": "Adam",
        "optimizer.lr": 0.003,
        "optimizer.amsgrad": False,  # a bool stays a bool (torch's own writer would make it 0.0)
        "lr_scheduler": "OneCycle",
        "lr_scheduler.pct_start": 0.25,
        "data.batch_size": 128,
        "trainer.max_epochs": 1,
        "trainer.limit_train_batches": 8,
    }
    assert {key: hparams.get(key) for key in expected} == expected
    assert type(hparams["optimizer.amsgrad"]) is bool
    # Paths, unset values and torch's implementation switches are not hyperparameters.
    assert not {"data.data_dir", "data.predict_dir", "optimizer.foreach"} & set(hparams)
    # The precision changes results: it is one, as the automatic choice filled it in (bf16-mixed or 32-true).
    assert hparams["trainer.precision"] == record["precision"]["value"]
    end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
    assert end.status == api_pb2.Status.Value("STATUS_SUCCESS")
    assert metadata.EXPERIMENT_TAG not in content  # the dashboard builds its columns from every run
    best = events.Scalars("val/acc_best")[-1].value
    assert best == pytest.approx(record["checkpoints"]["best_score"])
    assert events.Scalars("test/acc")[-1].value == pytest.approx(record["metrics"]["test/acc"])


def test_fit_without_test_writes_when_training_ends(two_fits):
    run = two_fits / "mnist" / "version_1"
    record = json.loads((run / "run.json").read_text())
    events, content = read_events(run)
    hparams = hparams_of(content)
    assert (hparams["optimizer"], hparams["optimizer.lr"], hparams["optimizer.momentum"]) == ("SGD", 0.05, 0.0)
    assert hparams["trainer.max_epochs"] == 2
    best = max(h["val/acc"] for h in record["history"])
    assert events.Scalars("val/acc_best")[-1].value == pytest.approx(best)
    assert "test/acc" not in events.Tags()["scalars"]


def test_dashboard_shows_both_fits_side_by_side(two_fits):
    hparam_columns, metric_columns = columns(two_fits)
    # Adam's and SGD's own arguments are both columns: no run's experiment summary decides them.
    assert {"optimizer", "optimizer.lr", "optimizer.betas", "optimizer.momentum", "seed"} <= set(hparam_columns)
    assert {"val/acc_best", "test/acc", "test/loss", "val/acc"} <= set(metric_columns)
    groups = {g["hparams"]["optimizer"]: g for g in session_groups(two_fits)}
    assert set(groups) == {"Adam", "SGD"}
    for name, version in (("Adam", "version_0"), ("SGD", "version_1")):
        record = json.loads((two_fits / "mnist" / version / "run.json").read_text())
        assert groups[name]["runs"] == [f"mnist/{version}"]
        assert groups[name]["status"] == ["STATUS_SUCCESS"]
        assert groups[name]["metrics"]["val/acc_best"] == pytest.approx(record["checkpoints"]["best_score"])
    assert groups["Adam"]["metrics"]["test/acc"] == pytest.approx(
        json.loads((two_fits / "mnist/version_0/run.json").read_text())["metrics"]["test/acc"]
    )
    assert groups["SGD"]["hparams"]["optimizer.lr"] == 0.05 and "test/acc" not in groups["SGD"]["metrics"]
