"""Shared fixtures: every test runs in its own empty folder, with a tiny, CPU-only training budget."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mnistctl.__main__ import main

REPO = Path(__file__).resolve().parents[1]
# A few batches of real MNIST: enough to write checkpoints and metrics, seconds to run.
TINY = [
    "--trainer.max_epochs",
    "1",
    "--trainer.limit_train_batches",
    "8",
    "--trainer.limit_val_batches",
    "2",
    "--trainer.limit_test_batches",
    "2",
    "--trainer.enable_progress_bar",
    "false",
    "--num_threads",
    "2",
]
# The same budget as sweep overrides (Hydra's syntax): each job writes checkpoints, metrics and a test result.
SWEEP_TINY = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=5",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
]


@pytest.fixture(autouse=True, scope="session")
def user_cache(tmp_path_factory):
    """mnistctl's user cache (unpacked MNIST, generated sweep configs) in one folder for the whole session,
    never ~/.cache; subprocesses inherit it. A cache set from outside (MNISTCTL_CACHE_DIR) is kept."""
    if not os.environ.get("MNISTCTL_CACHE_DIR"):
        os.environ["MNISTCTL_CACHE_DIR"] = str(tmp_path_factory.mktemp("mnistctl-cache"))
    return Path(os.environ["MNISTCTL_CACHE_DIR"])


@pytest.fixture(scope="session")
def sweep_tree(user_cache) -> Path:
    """The sweep's Hydra tree, generated once per session (seconds), so sweep commands print only their own lines."""
    from mnistctl.sweep.tree import config_dir

    return config_dir()


@pytest.fixture(autouse=True)
def in_tmp_folder(tmp_path, monkeypatch):
    """Each test works in its own folder: runs/ and outputs land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_main(*args: str) -> int:
    """Call the entry function in-process, as the console script would."""
    return main(list(args))


def run_cli(
    *args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    """Run `python -m mnistctl` in a fresh process (for what must not share state with the tests)."""
    return subprocess.run(
        [sys.executable, "-m", "mnistctl", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def last_metric(metrics_csv: Path, name: str) -> float:
    values = [row[name] for row in read_csv(metrics_csv) if row.get(name)]
    assert values, f"{name} not logged in {metrics_csv}"
    return float(values[-1])


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One tiny fit shared by the read-only tests: returns its run folder."""
    folder = tmp_path_factory.mktemp("tiny_run")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        assert main(["fit", *TINY]) == 0
    finally:
        os.chdir(cwd)
    (run,) = (folder / "runs" / "mnist").glob("version_*")
    return run


@pytest.fixture(scope="session")
def adam_and_sgd(tmp_path_factory) -> Path:
    """Two tiny fits shared by the read-only tests of `mnistctl runs` and HParams: returns the folder holding
    runs/. version_0: Adam (the default), tested after fit, then `mnistctl test` of its last.ckpt;
    version_1: SGD with lr 0.05, 2 epochs, `--test_after_fit false`."""
    folder = tmp_path_factory.mktemp("adam_and_sgd")
    sgd = ["--optimizer", "SGD", "--optimizer.lr", "0.05", "--trainer.max_epochs", "2", "--test_after_fit", "false"]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        assert main(["fit", *TINY]) == 0
        assert main(["fit", *TINY, *sgd]) == 0
        assert main(["test", "--ckpt_path", "runs/mnist/version_0/checkpoints/last.ckpt", *TINY[4:6]]) == 0
    return folder
