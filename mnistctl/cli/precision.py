"""The automatic precision: bf16-mixed on a CPU that computes BF16 natively, float32 everywhere else.

    mnistctl fit --config configs/fast.yaml                              # says which one it chose
    mnistctl fit --config configs/fast.yaml --trainer.precision 32-true  # an explicit precision wins

A CPU with AVX512-BF16 or AMX-BF16 trains this CNN faster under bf16 autocast than in float32; one
without them emulates BF16 and is much slower (README, "Performance", has the measurements). The
choice is made when the config leaves `trainer.precision` unset (null) and the run is on the CPU,
for fit, validate and test (so a test of a checkpoint computes what the fit's own test did); it is
written into the run's config.yaml, so a re-run with that file repeats it, and into run.json
(`precision`). `predict` stays float32: its probabilities are those the exported model computes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the benchmark's plain loop asks native_bf16() without jsonargparse
    from jsonargparse import Namespace

log = logging.getLogger(__name__)

NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
# ONEDNN_MAX_CPU_ISA values that still let oneDNN use BF16 instructions (AVX2 or AVX512_CORE do not).
BF16_ISA_MARKS = ("BF16", "AMX", "AVX10", "FP16", "ALL", "DEFAULT")


def native_bf16(cpuinfo: str | None = None) -> str | None:
    """The CPU flag that gives native BF16 (e.g. `amx_bf16`), or None; `cpuinfo` defaults to /proc/cpuinfo."""
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").upper()
    if cap and not any(mark in cap for mark in BF16_ISA_MARKS):
        return None  # oneDNN is held below BF16 instructions (e.g. the benchmark's AVX2 rows)
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:  # not Linux: no reliable way to ask, keep float32
            return None
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    return next((flag for flag in NATIVE_BF16_FLAGS if flag in flags), None)


def _runs_on_cpu(trainer: Namespace) -> bool:
    accelerator = str(trainer.get("accelerator") or "auto")
    if accelerator == "cpu":
        return True
    if accelerator != "auto":
        return False
    import torch

    return not (torch.cuda.is_available() or torch.backends.mps.is_available())


def choose_precision(config: Namespace, subcommand: str) -> dict:
    """Fill in `trainer.precision` when it is unset and the run is on the CPU, and say so; return what was chosen."""
    trainer = config.trainer
    if trainer.get("precision") is not None or subcommand == "predict" or not _runs_on_cpu(trainer):
        # Lightning's own default (32-true) applies when it stays unset, e.g. on a GPU.
        return {"value": str(trainer.get("precision") or "32-true"), "chosen": "config"}
    flag = native_bf16()
    trainer.precision = "bf16-mixed" if flag else "32-true"
    reason = f"this CPU has native BF16 ({flag})" if flag else "this CPU has no native BF16"
    other = "32-true" if flag else "bf16-mixed"
    log.info(f"precision {trainer.precision}: {reason}; --trainer.precision {other} to override")
    return {"value": trainer.precision, "chosen": "auto", "reason": reason}
