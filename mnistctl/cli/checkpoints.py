"""Checkpoints: load one safely, and resolve `--ckpt_path last|best|NAME` to a file.

    mnistctl test --ckpt_path best      # best checkpoint of the newest fit run under runs/

Where runs and their checkpoints live is `mnistctl.layout`'s business; this module reads them.
"""

from __future__ import annotations

import os
from pathlib import Path

from mnistctl.errors import UsageError
from mnistctl.layout import checkpoints_dir, fit_runs, last_checkpoint


def load_checkpoint(path: Path) -> dict:
    """torch.load a checkpoint, turning every failure into one line that names the file."""
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UsageError(
            f"checkpoint {path} does not exist; give an existing .ckpt file, or 'last' or 'best'"
        ) from None
    except Exception as err:  # torch.load raises many types for a file that is not a checkpoint
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(
            f"{path} is not a readable checkpoint ({first_line[:160]}); it may be truncated or not a .ckpt file"
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise UsageError(f"{path} is not a Lightning checkpoint (no state_dict in it)")
    return ckpt


def _loads(path: Path) -> bool:
    try:
        load_checkpoint(path)
        return True
    except UsageError:
        return False


def best_checkpoint(run: Path) -> Path | None:
    """The best checkpoint ModelCheckpoint recorded in the run's last.ckpt, if it still loads."""
    last = last_checkpoint(run)
    if not last.is_file() or not _loads(last):
        return None
    for key, state in load_checkpoint(last).get("callbacks", {}).items():
        if key.startswith("ModelCheckpoint") and state.get("best_model_path"):
            best = checkpoints_dir(run) / Path(state["best_model_path"]).name
            if best.is_file() and _loads(best):
                return best
    return None


def resolve_ckpt_path(value: str, save_dir: str | os.PathLike) -> Path:
    """Turn the user's --ckpt_path into an existing, loadable checkpoint file.

    `last`/`best`: the newest fit run under save_dir. A bare file name (no folder part) that is not in
    the current folder: that file in the newest run's checkpoints/. Anything else must exist.
    """
    path = Path(value).expanduser()
    if value in ("last", "best"):
        for run in fit_runs(save_dir):
            candidate = best_checkpoint(run) if value == "best" else last_checkpoint(run)
            if candidate is not None and candidate.is_file() and _loads(candidate):
                return candidate
        raise UsageError(
            f"--ckpt_path {value}: no fit run with a loadable {value} checkpoint under {Path(save_dir).resolve()}; "
            "run 'mnistctl fit' first or give a checkpoint file"
        )
    if path.exists():
        load_checkpoint(path)
        return path.resolve()
    if path.parent == Path(".") and path.suffix == ".ckpt":
        for run in fit_runs(save_dir):
            candidate = checkpoints_dir(run) / path.name
            if candidate.is_file() and _loads(candidate):
                return candidate
        raise UsageError(
            f"--ckpt_path {value}: not in the current folder, nor in any fit run under {Path(save_dir).resolve()}"
        )
    raise UsageError(f"--ckpt_path {value} does not exist; give an existing .ckpt file, or 'last' or 'best'")
