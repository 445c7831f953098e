"""--trainer.deterministic true sets what cuDNN and cuBLAS need before CUDA starts (issue 18.2); the GPU half
(a bit-identical resume) is tests/test_gpu_device.py."""

from __future__ import annotations

import json
import os

import pytest
import torch
from jsonargparse import Namespace

from conftest import TINY, run_cli
from mnistctl.cli.determinism import apply_determinism


@pytest.fixture
def cudnn_flags():
    saved = torch.backends.cudnn.deterministic
    yield
    torch.backends.cudnn.deterministic = saved


@pytest.mark.parametrize(("given", "kept"), [(None, ":4096:8"), (":16:8", ":16:8"), (":0:0", ":4096:8")])
def test_deterministic_sets_the_cublas_workspace_and_cudnn(monkeypatch, cudnn_flags, given, kept):
    if given is None:
        monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    else:
        monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", given)
    record = apply_determinism(Namespace(deterministic=True, benchmark=None))
    assert torch.backends.cudnn.deterministic is True
    assert record["CUBLAS_WORKSPACE_CONFIG"] == kept
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == kept


def test_a_later_run_without_it_turns_cudnn_determinism_off(monkeypatch, cudnn_flags):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    apply_determinism(Namespace(deterministic="warn", benchmark=None))
    assert torch.backends.cudnn.deterministic is True
    assert apply_determinism(Namespace(deterministic=None, benchmark=None)) == {"deterministic": None}
    assert torch.backends.cudnn.deterministic is False


def test_a_deterministic_fit_records_the_cublas_workspace_it_set(tmp_path, monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)  # the child starts without it
    done = run_cli("fit", *TINY, "--trainer.deterministic", "true", "--test_after_fit", "false", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (record,) = [json.loads(p.read_text()) for p in tmp_path.glob("runs/*/*/run.json")]
    assert record["determinism"] == {
        "deterministic": True,
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
        "cudnn.deterministic": True,
        "cudnn.benchmark": False,
    }
