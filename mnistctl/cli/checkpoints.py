"""Checkpoints: load one safely, once, and resolve `--ckpt_path last|best|NAME` to a file.

    mnistctl test --ckpt_path best      # best checkpoint of the newest fit run under runs/

A command reads each checkpoint file from disk once: `load_checkpoint` keeps what it read, keyed by
the file's resolved path, size and modification time, and `AtomicCheckpointIO.load_checkpoint` (what
Lightning's own restore calls) is served from the same cache. `READS` counts the reads from disk.
Where runs and their checkpoints live is `mnistctl.layout`'s business; this module reads them.
"""

from __future__ import annotations

import copy
import logging
import os
from collections import Counter
from pathlib import Path

from mnistctl.console import shown
from mnistctl.data.checksums import kind_of
from mnistctl.errors import UsageError
from mnistctl.layout import INTERRUPTED, checkpoints_dir, fit_runs, last_checkpoint

log = logging.getLogger(__name__)
READS: Counter[Path] = Counter()  # resolved path -> reads from disk in this process
_cache: dict[tuple[Path, int, int], dict | UsageError] = {}
CACHED_FILES = 4  # `--ckpt_path best` reads a run's last.ckpt, then its best one; a fit adds its own best


def load_checkpoint(path: str | os.PathLike) -> dict:
    """torch.load a checkpoint (weights only), turning every failure into one line that names the file.

    Returns a private copy: callers (Lightning's restore among them) may change what they get.
    """
    return copy.deepcopy(_cached(Path(path)))


def _cached(path: Path) -> dict:
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise UsageError(
            f"checkpoint {path} does not exist; give an existing .ckpt file, or 'last' or 'best'"
        ) from None
    except OSError as err:
        raise UsageError(f"cannot read checkpoint {path} ({err.strerror})") from None
    if not path.is_dir() and (kind := kind_of(path)) is not None:  # a FIFO would block torch.load for ever
        raise UsageError(f"checkpoint {path} is {kind}, not a file; give a .ckpt file, or 'last' or 'best'")
    key = (path.resolve(), stat.st_size, stat.st_mtime_ns)
    if key not in _cache:
        while len(_cache) >= CACHED_FILES:
            del _cache[next(iter(_cache))]  # the oldest first
        _cache[key] = _read(path, key[0])
    found = _cache[key]
    if isinstance(found, UsageError):
        raise UsageError(str(found))
    return found


def _read(path: Path, resolved: Path) -> dict | UsageError:
    import torch

    READS[resolved] += 1
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises many types for a file that is not a checkpoint
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return UsageError(
            f"{path} is not a readable checkpoint ({first_line[:160]}); it may be truncated or not a .ckpt file"
        )
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        return UsageError(f"{path} is not a Lightning checkpoint (no state_dict in it)")
    return ckpt


def _loads(path: Path) -> bool:
    try:
        _cached(path)
        return True
    except UsageError:
        return False


def best_checkpoint(run: Path) -> Path | None:
    """The best checkpoint ModelCheckpoint recorded in the run's last.ckpt, if it still loads."""
    last = last_checkpoint(run)
    if not last.is_file() or not _loads(last):
        return None
    for key, state in _cached(last).get("callbacks", {}).items():
        if key.startswith("ModelCheckpoint") and isinstance(state, dict) and state.get("best_model_path"):
            best = checkpoints_dir(run) / Path(str(state["best_model_path"])).name
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
        run = _newest_run(value, save_dir)
        candidate = best_checkpoint(run) if value == "best" else last_checkpoint(run)
        if candidate is not None and candidate.is_file() and _loads(candidate):
            return candidate
        raise _not_in_newest_run(f"loadable {value} checkpoint", value, run, candidate or last_checkpoint(run))
    if path.exists():
        _cached(path)
        return path.resolve()
    if path.parent == Path(".") and path.suffix == ".ckpt":
        run = _newest_run(
            value, save_dir, f"not in the current folder, nor in any fit run under {Path(save_dir).resolve()}"
        )
        candidate = checkpoints_dir(run) / path.name
        if candidate.is_file() and _loads(candidate):
            return candidate
        older = next((c for r in fit_runs(save_dir)[1:] if (c := checkpoints_dir(r) / path.name).is_file()), None)
        raise _not_in_newest_run(f"loadable {path.name}", value, run, candidate, older)
    raise UsageError(f"--ckpt_path {value} does not exist; give an existing .ckpt file, or 'last' or 'best'")


def _newest_run(value: str, save_dir: str | os.PathLike, missing: str | None = None) -> Path:
    """The newest fit run under save_dir: the one holding the newest checkpoint."""
    runs = fit_runs(save_dir)
    if not runs:
        raise UsageError(
            f"--ckpt_path {value}: "
            + (missing or f"no fit run with checkpoints under {Path(save_dir).resolve()}")
            + "; run 'mnistctl fit' first or give a checkpoint file"
        )
    return runs[0]


def _not_in_newest_run(what: str, value: str, run: Path, candidate: Path, older: Path | None = None) -> UsageError:
    """Never an older run instead: `fit --ckpt_path last` would train on in a run the user did not mean, and
    `test`/`predict` would report on it as if it were the newest. The line says where else to look."""
    names = sorted(p.name for p in checkpoints_dir(run).glob("*.ckpt"))
    broken = candidate.is_file() and not _loads(candidate)  # truncated, or not a checkpoint of ours
    detail = f"its {candidate.name} is not a readable checkpoint; " if broken else ""
    fix = "give a checkpoint file, e.g. one that 'mnistctl runs' lists"
    if older is not None:  # a bare file name an older run holds
        fix = f"an older run holds one: give --ckpt_path {shown(older)}"
    elif names == [INTERRUPTED]:
        fix = f"it stopped in its first epoch: remove {shown(run)} to make the run before it the newest, or {fix}"
    return UsageError(
        f"--ckpt_path {value}: the newest fit run, {shown(run)}, has no {what} "
        f"({detail}its checkpoints: {', '.join(names) or 'none'}); {fix}"
    )


def newest_best(subcommand: str, save_dir: str | os.PathLike) -> Path:
    """validate/test/predict without --ckpt_path: the best checkpoint of the newest fit run, said on stderr."""
    try:
        ckpt = resolve_ckpt_path("best", save_dir)
    except UsageError:
        if fit_runs(save_dir):
            raise  # the newest run has no loadable best checkpoint: the message says which run and what it holds
        raise UsageError(
            f"'mnistctl {subcommand}' needs --ckpt_path: a .ckpt file, 'last' or 'best' (the newest fit run); "
            f"there is no fit run with a best checkpoint under {shown(save_dir)}"
        ) from None
    log.info("%s: using %s, the best checkpoint of the newest fit run (--ckpt_path to choose)", subcommand, shown(ckpt))
    return ckpt
