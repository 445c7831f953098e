"""What cuDNN and cuBLAS need for bit-identical GPU runs under `--trainer.deterministic true`.

    mnistctl fit --config configs/fast.yaml --trainer.deterministic true   # a resume on a GPU is bit-identical

Lightning's `deterministic=True` calls `torch.use_deterministic_algorithms(True)` (which makes cuDNN's
convolutions pick deterministic algorithms) and turns cuDNN benchmarking off. mnistctl adds, before the
Trainer and before anything touches CUDA: `CUBLAS_WORKSPACE_CONFIG=:4096:8` (cuBLAS reads it when it
creates its workspace, at the first matmul; without it a deterministic run stops with a RuntimeError
naming the variable; `:16:8`, the other documented value, is kept if set) and
`torch.backends.cudnn.deterministic = True`. The CUDA random number generator (dropout on a GPU) is saved
in every checkpoint by `rng_state.py`. What is recorded: run.json `determinism`.
"""

from __future__ import annotations

import logging
import os

import torch
from jsonargparse import Namespace

log = logging.getLogger(__name__)

CUBLAS_WORKSPACE = "CUBLAS_WORKSPACE_CONFIG"
DETERMINISTIC_WORKSPACES = (":4096:8", ":16:8")  # NVIDIA's cuBLAS reproducibility notes


def apply_determinism(trainer: Namespace) -> dict:
    """Set what `trainer.deterministic` (true or "warn") needs on a GPU; undo it otherwise. Returns the record."""
    deterministic = trainer.get("deterministic")
    if not deterministic:
        # An earlier run in this process may have set it; Lightning resets only what it sets itself.
        torch.backends.cudnn.deterministic = False
        return {"deterministic": bool(deterministic) if deterministic is not None else None}
    if os.environ.get(CUBLAS_WORKSPACE) not in DETERMINISTIC_WORKSPACES:
        if torch.cuda.is_initialized():  # only in a process that already ran CUDA work (a notebook, a test)
            log.warning(f"{CUBLAS_WORKSPACE} set after CUDA started: cuBLAS may not be deterministic in this process")
        os.environ[CUBLAS_WORKSPACE] = DETERMINISTIC_WORKSPACES[0]
    torch.backends.cudnn.deterministic = True
    return {
        "deterministic": deterministic,
        CUBLAS_WORKSPACE: os.environ[CUBLAS_WORKSPACE],
        "cudnn.deterministic": True,
        "cudnn.benchmark": bool(trainer.get("benchmark")),
    }
