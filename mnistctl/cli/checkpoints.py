"""Run folders: allocate one per fit, find the newest, and resolve `--ckpt_path last|best|NAME`.

    mnistctl test --ckpt_path best      # best checkpoint of the newest fit run under runs/

A run folder is `<save_dir>/<name>/version_N/` with `config.yaml`, `checkpoints/`, `metrics.csv` and
TensorBoard events. Folders are created with an exclusive mkdir, so two fits started at the same
moment never share one.
"""

from __future__ import annotations

import os
from pathlib import Path

from mnistctl.errors import UsageError

CHECKPOINTS = "checkpoints"


def allocate_run_dir(save_dir: str | os.PathLike, name: str) -> Path:
    """Create and return the next free `<save_dir>/<name>/version_N`, as an absolute path.

    Absolute, because ModelCheckpoint compares its saved dirpath with the current one on resume:
    the same folder spelt differently would make it version `last.ckpt` as `last-v1.ckpt`.
    """
    parent = Path(save_dir).resolve() / name
    parent.mkdir(parents=True, exist_ok=True)
    taken = [int(p.name[8:]) for p in parent.glob("version_*") if p.name[8:].isdigit()]
    version = max(taken, default=-1) + 1
    while True:
        candidate = parent / f"version_{version}"
        try:
            candidate.mkdir(parents=True)  # parents: a failed fit may just have removed an empty <name>/
            return candidate
        except FileExistsError:  # another process took it between glob and mkdir
            version += 1


def run_dir_of(ckpt: Path) -> Path:
    """The run folder that made a checkpoint: `<run>/checkpoints/x.ckpt` -> `<run>`."""
    ckpt = ckpt.resolve()
    return ckpt.parent.parent if ckpt.parent.name == CHECKPOINTS else ckpt.parent


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


def fit_runs(save_dir: str | os.PathLike) -> list[Path]:
    """Run folders under save_dir that hold checkpoints, newest checkpoint first."""
    runs = {p.parent.parent for p in Path(save_dir).glob(f"*/*/{CHECKPOINTS}/*.ckpt")}
    return sorted(
        runs, key=lambda run: max(c.stat().st_mtime for c in (run / CHECKPOINTS).glob("*.ckpt")), reverse=True
    )


def best_checkpoint(run: Path) -> Path | None:
    """The best checkpoint ModelCheckpoint recorded in the run's last.ckpt, if it still loads."""
    last = run / CHECKPOINTS / "last.ckpt"
    if not last.is_file() or not _loads(last):
        return None
    for key, state in load_checkpoint(last).get("callbacks", {}).items():
        if key.startswith("ModelCheckpoint") and state.get("best_model_path"):
            best = run / CHECKPOINTS / Path(state["best_model_path"]).name
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
            candidate = best_checkpoint(run) if value == "best" else run / CHECKPOINTS / "last.ckpt"
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
            candidate = run / CHECKPOINTS / path.name
            if candidate.is_file() and _loads(candidate):
                return candidate
        raise UsageError(
            f"--ckpt_path {value}: not in the current folder, nor in any fit run under {Path(save_dir).resolve()}"
        )
    raise UsageError(f"--ckpt_path {value} does not exist; give an existing .ckpt file, or 'last' or 'best'")
