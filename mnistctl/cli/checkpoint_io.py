"""Checkpoint writes that are atomic and fail with one clear line (e.g. a full disk); reads that happen once.

    mnistctl fit            # every checkpoint goes through AtomicCheckpointIO

A checkpoint is serialised to a temporary file beside its target, fsynced, then renamed over it, so a
kill or a full disk at any moment leaves the previous complete checkpoint under the real name.
Lightning's restore reads through `load_checkpoint`, served from the file `mnistctl.cli.checkpoints`
already read for this command (always with weights_only: a checkpoint is data, not code).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from mnistctl.atomic import atomic_write
from mnistctl.cli.checkpoints import load_checkpoint
from mnistctl.errors import UsageError


class CheckpointWriteError(UsageError):
    """A checkpoint could not be written (disk full, file too large, permissions)."""

    exit_code = 1


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        try:
            with atomic_write(Path(path), "wb") as f:
                torch.save(checkpoint, f)
        except (OSError, RuntimeError) as err:
            # torch.save reports a failed write (disk full, file size limit) as a RuntimeError from its zip writer.
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err).splitlines()[0][:160]
            raise CheckpointWriteError(
                f"could not write checkpoint {path} ({reason}); the previous checkpoint is intact - "
                "free disk space and continue with 'mnistctl fit --ckpt_path last' and the same config"
            ) from None

    def load_checkpoint(self, path, map_location: Any | None = None, weights_only: bool | None = None) -> dict:
        # Tensors come back on the CPU; Lightning moves the restored model and optimizer state to the device.
        return load_checkpoint(Path(path))
