"""`best` and `last` on a run whose best epoch is not its last, beside an older run, from new processes.

    .venv/bin/python -m pytest tests/test_best_and_last.py

The `two_runs` fixture (conftest) holds two fits in one folder; the newer one trained three epochs and
wrecked the last, so its best checkpoint, its last checkpoint and the older run's checkpoints are all
different weights. Every command below runs as a user runs it, in its own process, in that folder.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

from conftest import TwoRuns, last_metric, read_csv, run_cli

QUIET = ["--trainer.enable_progress_bar", "false"]


def run_ok(root: Path, *args: str) -> str:
    done = run_cli(*args, cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def record(root: Path, subcommand: str) -> dict:
    """The run.json that `subcommand` just wrote, in whichever run folder it chose."""
    written = max(root.glob(f"runs/*/*/{subcommand}/run.json"), key=lambda p: p.stat().st_mtime_ns)
    return json.loads(written.read_text())


@pytest.fixture(scope="module")
def evaluations(two_runs: TwoRuns) -> dict[str, dict]:
    """run.json of `test`, `validate` and `predict` given `best`, of `test` given `last`, and export's output."""
    root = two_runs.root
    found = {}
    run_ok(root, "test", "--ckpt_path", "best", "--trainer.limit_test_batches", "2", *QUIET)
    found["test best"] = record(root, "test")
    run_ok(root, "test", "--ckpt_path", "last", "--trainer.limit_test_batches", "2", *QUIET)
    found["test last"] = record(root, "test")
    run_ok(root, "validate", "--ckpt_path", "best", "--trainer.limit_val_batches", "2", *QUIET)
    found["validate best"] = record(root, "validate")
    run_ok(root, "predict", "--ckpt_path", "best", "--trainer.limit_predict_batches", "1", *QUIET)
    found["predict best"] = record(root, "predict")
    found["export best"] = {"stdout": run_ok(root, "export", "--ckpt_path", "best", "--output", "best.pt")}
    return found


def test_best_and_last_are_different_files_of_the_newest_run(two_runs, evaluations):
    assert Path(evaluations["test best"]["ckpt_path"]) == two_runs.best.resolve()
    assert Path(evaluations["test last"]["ckpt_path"]) == two_runs.last.resolve()
    assert two_runs.best != two_runs.last
    for name in ("test best", "test last"):  # the newer of the two runs, not the older
        assert Path(evaluations[name]["ckpt_path"]).is_relative_to(two_runs.newer.resolve()), name


def test_fit_tested_its_best_checkpoint_not_its_final_weights(two_runs, evaluations):
    fit = {name: last_metric(two_runs.newer / "metrics.csv", name) for name in ("test/acc", "test/loss")}
    best, last = evaluations["test best"]["metrics"], evaluations["test last"]["metrics"]
    assert best["test/acc"] == pytest.approx(fit["test/acc"], abs=1e-6)
    assert best["test/loss"] == pytest.approx(fit["test/loss"], rel=1e-5)
    # The last epoch was wrecked on purpose: its weights test far worse.
    assert fit["test/acc"] - last["test/acc"] > 0.05, (fit, last)


def test_validate_test_predict_and_export_given_best_use_one_file(two_runs, evaluations):
    best = two_runs.best.resolve()
    for name in ("test best", "validate best", "predict best"):
        assert Path(evaluations[name]["ckpt_path"]) == best, name
    # validate reproduces the val/acc that the fit logged for the best epoch (same two validation batches).
    assert evaluations["validate best"]["metrics"]["val/acc"] == pytest.approx(max(two_runs.val_acc), abs=1e-6)
    # --trainer.limit_predict_batches 1 means one batch of 256 (data.eval_batch_size).
    assert len(read_csv(two_runs.newer / "predictions.csv")) == 256
    exported_from = evaluations["export best"]["stdout"].rsplit(" from ", 1)[1].strip().removesuffix(")")
    assert (two_runs.root / exported_from).resolve() == best
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated in torch 2.14
        exported = torch.jit.load(str(two_runs.root / "best.pt")).state_dict()
    for ckpt, same in ((two_runs.best, True), (two_runs.last, False)):
        weights = torch.load(ckpt, weights_only=True)["state_dict"]
        equal = [torch.equal(exported[name], weights[name]) for name in weights if name.startswith("net.")]
        assert equal and all(equal) == same and any(equal) == same, ckpt.name
