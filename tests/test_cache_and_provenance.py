"""The tests' own isolation, and what a run records about where it came from.

    .venv/bin/python -m pytest tests/test_cache_and_provenance.py

conftest points MNISTCTL_CACHE_DIR at a session folder, so no test writes into ~/.cache; here one command
starts from an empty cache. run.json names the git commit of the checkout that ran (README, "run.json").
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from torchvision.datasets import MNIST

import mnistctl
from conftest import REPO, TINY_RUN_MIN_ACC, last_metric, run_main

SHIPPED = Path(mnistctl.__file__).parent / "data" / "mnist"


def test_the_session_cache_is_not_the_users(tmp_path_factory):
    cache = Path(os.environ["MNISTCTL_CACHE_DIR"]).resolve()
    assert cache.is_relative_to(tmp_path_factory.getbasetemp().resolve())


def test_the_first_command_unpacks_mnist_into_an_empty_cache(tiny_run, tmp_path, monkeypatch):
    cache, default = tmp_path / "cache", tmp_path / "xdg"
    monkeypatch.setenv("MNISTCTL_CACHE_DIR", str(cache))
    monkeypatch.setenv("XDG_CACHE_HOME", str(default))  # where it would go without MNISTCTL_CACHE_DIR
    shutil.copytree(tiny_run / "checkpoints", tmp_path / "run" / "checkpoints")
    args = ["--ckpt_path", str(tmp_path / "run" / "checkpoints" / "last.ckpt"), "--trainer.limit_test_batches", "2"]
    assert run_main("test", *args, "--trainer.enable_progress_bar", "false") == 0
    assert last_metric(tmp_path / "run" / "test" / "metrics.csv", "test/acc") >= TINY_RUN_MIN_ACC
    # The four files, as shipped (SHA256SUMS), where torchvision's reader finds them; nothing elsewhere.
    sums = dict(line.split()[::-1] for line in (SHIPPED / "SHA256SUMS").read_text().splitlines())
    raw = cache / "MNIST" / "raw"
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in raw.iterdir()} == sums
    assert len(MNIST(str(cache), train=True)) == 60_000 and len(MNIST(str(cache), train=False)) == 10_000
    assert not default.exists()


def test_run_json_names_the_commit_of_the_checkout_that_ran(tiny_run):
    if not (REPO / ".git").exists():
        pytest.skip(f"{REPO} is not a git checkout")  # e.g. an unpacked sdist; under CI a skip fails
    assert Path(mnistctl.__file__).resolve().is_relative_to(REPO)  # this checkout's mnistctl ran

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True).stdout

    dirty = bool(git("status", "--porcelain", "--untracked-files=no").strip())
    assert json.loads((tiny_run / "run.json").read_text())["git"] == {
        "commit": git("rev-parse", "HEAD").strip(),
        "dirty": dirty,
    }
