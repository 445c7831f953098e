"""On a CUDA GPU: one device line and no Lightning noise (issue 18.3), bit-identical resume under
--trainer.deterministic true and a close one without (18.2). `gpu` marker: skipped without CUDA.

    .venv/bin/python -m pytest -m gpu tests/test_gpu_device.py
"""

from __future__ import annotations

import json

import pytest
import torch

from conftest import PROBES_ON_PATH, TINY, run_cli

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

GPU = ["--trainer.accelerator", "gpu", "--trainer.devices", "1"]
BANNED = ("💡 Tip", "litlogger", "GPU available:", "TPU available:", "LOCAL_RANK:", "Tensor Cores")


def test_a_gpu_fit_says_its_device_once_and_sets_tf32_on_tensor_cores(tmp_path):
    done = run_cli("fit", *TINY, *GPU, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stderr.splitlines()
    (line,) = [line for line in lines if line.startswith("device")]
    assert line.startswith(f"device: cuda:0 ({torch.cuda.get_device_name(0)}, compute capability ")
    assert [line for line in lines if any(banned in line for banned in BANNED)] == []
    (record,) = [json.loads(p.read_text()) for p in tmp_path.glob("runs/*/*/run.json")]
    tensor_cores = torch.cuda.get_device_capability(0) >= (8, 0)
    assert record["float32_matmul_precision"]["value"] == ("high" if tensor_cores else "highest")


# Dropout and the random shift both draw from the GPU's generator: a resume must restore its state.
RESUMABLE = [*TINY, *GPU, "--trainer.max_epochs", "3", "--data.augment_shift", "2", "--test_after_fit", "false"]


def resumed_and_whole(tmp_path, *extra: str) -> tuple[dict, dict]:
    """Final weights of a fit stopped at epoch 1 and resumed, and of the same fit uninterrupted."""
    stopped, whole = tmp_path / "stopped", tmp_path / "whole"
    stopped.mkdir(), whole.mkdir()
    stop = ["--trainer.callbacks+=probes.InterruptAt", "--trainer.callbacks.epoch=1"]
    interrupted = run_cli("fit", *RESUMABLE, *extra, *stop, cwd=stopped, env=PROBES_ON_PATH)
    assert interrupted.returncode == 130, interrupted.stderr[-3000:]
    for folder, more in ((stopped, ["--ckpt_path", "last"]), (whole, [])):
        done = run_cli("fit", *RESUMABLE, *extra, *more, cwd=folder)
        assert done.returncode == 0, done.stderr[-3000:]
    last = "runs/mnist/version_0/checkpoints/last.ckpt"
    return tuple(torch.load(f / last, map_location="cpu", weights_only=True)["state_dict"] for f in (stopped, whole))


def test_a_deterministic_resume_on_the_gpu_is_bit_identical(tmp_path):
    resumed, whole = resumed_and_whole(tmp_path, "--trainer.deterministic", "true")
    assert resumed.keys() == whole.keys()
    for name in resumed:
        assert torch.equal(resumed[name], whole[name]), name
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "whole").glob("runs/*/*/run.json")]
    assert record["determinism"]["CUBLAS_WORKSPACE_CONFIG"] in (":4096:8", ":16:8")


def test_a_resume_on_the_gpu_without_determinism_is_the_same_run_up_to_rounding(tmp_path):
    # What the README promises without --trainer.deterministic: same data order and RNG streams, so the
    # weights differ only by the order of float sums in cuDNN's kernels, not by a different run.
    resumed, whole = resumed_and_whole(tmp_path)
    for name in resumed:
        assert torch.allclose(resumed[name], whole[name], rtol=1e-2, atol=1e-3), name
