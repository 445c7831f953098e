"""Carry the random number generators through checkpoints, so a resumed fit equals an uninterrupted one.

    mnistctl fit --ckpt_path last      # continues with the RNG states saved at the last epoch end

Lightning restores weights, optimizer, schedule and loop counters, but not the torch, numpy and
python RNGs that drive dropout and augmentation. This callback stores them in every checkpoint and
puts them back when the first training epoch after a resume starts. On a GPU, dropout and augmentation
draw from the device's own generator: its state is stored too (`cuda`), and restored when the resumed
run trains on a CUDA device (a checkpoint from the CPU has none; the GPU then starts from the seed).
The data order needs no state: each epoch's permutation is drawn from `shuffle_seed + epoch` (see batches.py).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from pytorch_lightning import Callback, LightningModule, Trainer


class RNGStateCallback(Callback):
    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None
        self._cuda: torch.device | None = None  # the CUDA device this run trains on, if any

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        device = trainer.strategy.root_device
        self._cuda = device if device.type == "cuda" else None

    def state_dict(self) -> dict[str, Any]:
        # Plain tensors, ints and lists only: checkpoints load with torch.load(weights_only=True).
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        version, internal, gauss_next = random.getstate()
        # Only the device this run trains on: asking for another would start CUDA there (or on a CPU run).
        cuda = {"cuda": torch.cuda.get_rng_state(self._cuda)} if self._cuda is not None else {}
        return {
            **cuda,
            "torch": torch.get_rng_state(),
            "numpy": {
                "kind": kind,
                "keys": torch.from_numpy(keys.astype(np.int64)),
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "cached": float(cached),
            },
            "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Restored later: seeding and model set-up between loading and training would consume them.
        self._pending = state_dict

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        torch.set_rng_state(state["torch"])
        if "cuda" in state and pl_module.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda"].cpu(), pl_module.device)  # a CPU ByteTensor, wherever it loaded
        n = state["numpy"]
        np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
        p = state["python"]
        random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))
