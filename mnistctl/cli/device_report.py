"""One line naming the device a command runs on, and float32 matmul precision on tensor-core GPUs.

    mnistctl fit --config configs/fast.yaml                                     # "device: cuda:0 (NVIDIA H200, ...)"
    mnistctl fit --config configs/fast.yaml --float32_matmul_precision highest  # full-float32 matmuls on a GPU
    MNISTCTL_FIT__FLOAT32_MATMUL_PRECISION=highest mnistctl fit                  # the same, from the environment

On a CUDA GPU with tensor cores (compute capability 8.0 and later: A100, H100, H200, RTX 30xx/40xx),
fit, validate and test let float32 matrix multiplications run in TF32 (`high`), as Lightning's own
warning advises; float32 convolutions already do (torch.backends.cudnn.allow_tf32 is on by default).
`predict` keeps `highest`, so its probabilities are those of full float32, as the exported model computes
them; an explicit --float32_matmul_precision always wins. The choice is recorded in run.json as
`float32_matmul_precision` (beside `precision`), like the automatic `--trainer.precision` (precision.py).
"""

from __future__ import annotations

import logging

import torch
from pytorch_lightning import Callback, LightningModule, Trainer

from mnistctl import console

log = logging.getLogger(__name__)

TENSOR_CORES = (8, 0)  # Ampere and later: TF32 matmuls (the capability Lightning's own warning checks)
MATMUL_PRECISIONS = ("highest", "high", "medium")


def choose_matmul_precision(
    choice: str | None, subcommand: str, device: torch.device, capability: tuple[int, int] | None
) -> dict:
    """The float32 matmul precision for a run on `device` (CUDA compute `capability`, None elsewhere)."""
    if choice is not None:
        return {"value": choice, "chosen": "config"}
    if device.type == "cuda" and capability is not None and tuple(capability) >= TENSOR_CORES:
        if subcommand == "predict":
            return {"value": "highest", "chosen": "auto", "reason": "predict computes what the exported model does"}
        major, minor = capability
        return {"value": "high", "chosen": "auto", "reason": f"tensor cores (compute capability {major}.{minor})"}
    return {"value": "highest", "chosen": "default"}  # torch's default; reset, in case an earlier run changed it


def device_line(trainer: Trainer, matmul: dict) -> str:
    """`device: cuda:0 (NVIDIA H200, compute capability 9.0), precision 32-true, float32 matmuls high (auto: ...)`."""
    device = trainer.strategy.root_device
    count = trainer.num_devices
    head = "device" if count == 1 else f"devices: {count} x"
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        what = f"{device} ({torch.cuda.get_device_name(device)}, compute capability {major}.{minor})"
    elif device.type == "cpu":
        what = f"cpu ({torch.get_num_threads()} threads)"
    else:
        what = str(device)
    line = f"{head}: {what}, precision {trainer.precision}"
    if matmul["chosen"] != "default":
        line += f", float32 matmuls {matmul['value']} ({matmul['chosen']}"
        line += f": {matmul['reason']}; --float32_matmul_precision to override)" if "reason" in matmul else ")"
    return line


class DeviceReport(Callback):
    """At set-up, once per command: applies the float32 matmul precision, records it, says the device in one line.

    Args:
        subcommand: fit, validate, test or predict.
        choice: --float32_matmul_precision (None: automatic).
        record: run.json's record (RunManifest.record), which gets `float32_matmul_precision`.
    """

    def __init__(self, subcommand: str, choice: str | None, record: dict) -> None:
        self.subcommand, self.choice, self.record = subcommand, choice, record
        self.done = False

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.done:  # fit's own test of the best checkpoint sets up again: one line per command
            return
        self.done = True
        console.single_device(trainer.num_devices == 1)  # Lightning's per-rank lines only when there are ranks
        device = trainer.strategy.root_device
        capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
        matmul = choose_matmul_precision(self.choice, self.subcommand, device, capability)
        torch.set_float32_matmul_precision(matmul["value"])
        self.record["float32_matmul_precision"] = matmul
        log.info(device_line(trainer, matmul))
