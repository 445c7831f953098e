"""scripts/fake_cuda, behind `make gpu-audit`: torch reports one CUDA GPU, Lightning's `auto` picks it, and any
real CUDA work fails, so a test that forgets to pin the CPU fails on a machine without a GPU too.

    .venv/bin/python -m pytest tests/test_fake_cuda.py
"""

from __future__ import annotations

import os

import torch

from conftest import REPO, run_python

FAKE_CUDA = REPO / "scripts" / "fake_cuda"
PROBE = """
import torch
from pytorch_lightning import Trainer
print(torch.cuda.is_available(), torch.cuda.device_count(), end=" ")
if torch.cuda.is_available():
    print(torch.cuda.get_device_name(0), type(Trainer(accelerator="auto", logger=False).accelerator).__name__, end=" ")
print(type(Trainer(accelerator="cpu", logger=False).accelerator).__name__, end=" ")
try:
    torch.zeros(1, device="cuda")
    print("cuda work ran")
except (RuntimeError, AssertionError):  # AssertionError: a torch built without CUDA
    print("cuda work failed")
"""


def under_fake(**env: str) -> str:
    path = os.pathsep.join([str(FAKE_CUDA), str(REPO)])
    return run_python(PROBE, env={"PYTHONPATH": path, **env}).strip().splitlines()[-1]


def test_torch_and_lightning_see_one_gpu_that_cannot_run_anything():
    # On a machine with a GPU the real one still works. Asked of torch's C side: under `make gpu-audit` this
    # process's torch.cuda is the stand-in.
    real = "ran" if getattr(torch._C, "_cuda_getDeviceCount", lambda: 0)() else "failed"
    assert under_fake() == f"True 1 FAKE GPU CUDAAccelerator CPUAccelerator cuda work {real}"


def test_an_empty_cuda_visible_devices_hides_it_as_it_hides_a_real_gpu():
    assert under_fake(CUDA_VISIBLE_DEVICES="") == "False 0 CPUAccelerator cuda work failed"
