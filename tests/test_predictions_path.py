"""mnistctl/cli/predictions_path.py: predict never writes over a user's file, whatever kind of file it is.

.venv/bin/python -m pytest tests/test_predictions_path.py
"""

from __future__ import annotations

import os
import threading
from types import SimpleNamespace

import pytest
import torch

from mnistctl.cli import predictions
from mnistctl.cli.predictions import PredictionsCSV, write_csv
from mnistctl.cli.predictions_path import check_predictions_path, may_replace
from mnistctl.errors import UsageError

TRAINER = SimpleNamespace(world_size=1, is_global_zero=True, datamodule=None)
BATCH = {"ids": torch.arange(2), "probs": torch.full((2, 10), 0.1)}


def ours(path) -> None:
    write_csv(path, BATCH["ids"], BATCH["probs"])  # a predictions CSV as predict writes it


def test_a_fifo_is_refused_without_being_opened(tmp_path):
    # The bug: reading the first line of a FIFO to see whether predict wrote it blocked forever.
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    outcome = []

    def check() -> None:
        try:
            check_predictions_path(str(fifo))
        except UsageError as err:
            outcome.append(str(err))

    worker = threading.Thread(target=check, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "the check blocked on the FIFO"
    assert outcome == [
        f"--predictions.path {fifo} already exists and is not a predictions CSV; give another path, or add "
        "--predictions.overwrite true to replace it"
    ]


def test_a_link_to_a_predictions_csv_is_a_users_link(tmp_path):
    # Replacing the link would leave its target stale and the user's link gone: only with overwrite.
    ours(tmp_path / "real.csv")
    (tmp_path / "link.csv").symlink_to(tmp_path / "real.csv")
    with pytest.raises(UsageError, match="link.csv already exists and is not a predictions CSV"):
        may_replace(str(tmp_path / "link.csv"), overwrite=False, skip_list=False)
    assert may_replace(str(tmp_path / "link.csv"), overwrite=True, skip_list=False)
    ours(tmp_path / "again.csv")
    assert may_replace(str(tmp_path / "again.csv"), overwrite=False, skip_list=False)  # a regular one of ours
    assert not may_replace(str(tmp_path / "new.csv"), overwrite=False, skip_list=False)  # nothing to replace


def test_a_users_skip_list_beside_a_new_csv_is_refused_with_predict_dir(tmp_path):
    # With --data.predict_dir predict writes (or removes) <stem>.skipped.txt beside the CSV.
    (tmp_path / "results.skipped.txt").write_text("my notes\n")
    with pytest.raises(UsageError, match="results.skipped.txt already exists beside it and is not a list"):
        may_replace(str(tmp_path / "results.csv"), overwrite=False, skip_list=True)
    assert not may_replace(str(tmp_path / "results.csv"), overwrite=False, skip_list=False)  # test set: untouched
    ours(tmp_path / "results.csv")  # beside a CSV an earlier predict wrote, the list is that predict's
    assert may_replace(str(tmp_path / "results.csv"), overwrite=False, skip_list=True)
    assert (tmp_path / "results.skipped.txt").read_text() == "my notes\n"


def test_a_file_that_appears_after_the_last_check_is_not_replaced(tmp_path, monkeypatch):
    # The last check saw nothing at the path; a user's file created before the rename must survive it.
    target = tmp_path / "late.csv"

    def nothing_there_yet(path, overwrite, skip_list) -> bool:
        target.write_text("my notes\n")  # appears right after the check
        return False

    monkeypatch.setattr(predictions, "may_replace", nothing_there_yet)
    with pytest.raises(UsageError, match="late.csv appeared while predicting; give another path, or add"):
        PredictionsCSV(str(target)).write_on_epoch_end(TRAINER, None, [BATCH], [])
    assert target.read_text() == "my notes\n" and [p.name for p in tmp_path.iterdir()] == ["late.csv"]
