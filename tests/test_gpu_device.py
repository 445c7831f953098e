"""On a CUDA GPU: one device line and no Lightning noise (issue 18.3), bit-identical resume under
--trainer.deterministic true and a close one without (18.2). `gpu` marker: skipped without CUDA.

    .venv/bin/python -m pytest -m gpu tests/test_gpu_device.py
"""

from __future__ import annotations

import json

import pytest
import torch

from conftest import TINY, run_cli

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
