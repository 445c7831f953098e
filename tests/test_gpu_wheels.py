"""scripts/gpu-wheels.sh: the wheels carried to a GPU machine are the versions this environment tests with.

.venv/bin/python -m pytest tests/test_gpu_wheels.py
"""

from __future__ import annotations

import re
from importlib.metadata import version

from conftest import REPO

SCRIPT = REPO / "scripts" / "gpu-wheels.sh"


def pins() -> dict[str, str]:
    return dict(re.findall(r"\b([A-Za-z][\w.-]*)==([\w.]+)", SCRIPT.read_text()))


def test_every_wheel_is_the_version_installed_here():
    # The bug: the project moves to a new jsonargparse (or Hydra, Optuna, ONNX) and the GPU check runs the old one.
    pinned = pins()
    assert {"jsonargparse", "hydra-core", "omegaconf", "optuna", "onnx", "antlr4-python3-runtime"} <= set(pinned)
    assert {name: version(name) for name in pinned} == pinned


def test_nothing_the_gpu_machine_already_has_is_carried():
    # A second torch, numpy or Lightning on PYTHONPATH there would shadow the ones its CUDA torch was built with.
    carried = {name.lower().replace("_", "-") for name in pins()}
    assert not carried & {"torch", "torchvision", "numpy", "pytorch-lightning", "torchmetrics", "pytest", "pillow"}
