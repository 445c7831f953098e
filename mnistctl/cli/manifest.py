"""`run.json`: what ran, how, with which versions, what it wrote and how it ended; kept current as it runs.

    python -c "import json; print(json.load(open('runs/mnist/version_0/run.json'))['status'])"

`fit` writes `<run>/run.json`; validate, test and predict write `<run>/<subcommand>/run.json`, beside
their metrics.csv. Paths inside the manifest's folder are relative to it, others absolute. The file is
replaced atomically at start, after each epoch, after each evaluation and at the end; `status` is
running, then completed, failed or interrupted. The CLI adds this callback to every run.

A fit resumed from a checkpoint (`--ckpt_path`) lists itself under `resumes` (when, the command, the
checkpoint, the first epoch it trains, the setting changes it was allowed). Resumed in the run's own
folder, the record is held (`held`) until the checkpoint is restored, then continues the run's record:
its history up to the resumed epoch, its start time, its command; wall_time_s adds up.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import platform
import shlex
import subprocess
import time
from importlib import metadata
from pathlib import Path

from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.utilities.exceptions import SIGTERMException
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from mnistctl import __version__
from mnistctl.atomic import atomic_write
from mnistctl.cli.progress import format_duration
from mnistctl.console import shown
from mnistctl.layout import RUN_RECORD, read_record
from mnistctl.process_alive import process_record

log = logging.getLogger(__name__)


class RunManifest(Callback):
    """Writes and updates `run.json` in `folder`.

    Args:
        folder: where run.json goes (the run folder for fit, `<run>/<subcommand>` otherwise).
        subcommand: fit, validate, test or predict.
        argv: the command line after `mnistctl`.
        config: the subcommand's parsed config (seed_everything, ckpt_path, config files).
        resume: for a fit from a checkpoint, its entry in `resumes` (checkpoint, allowed changes, ...).
    """

    held = False  # a resume in the run's own folder: nothing is written until `release`
    on_disk = False  # this command has written run.json: before that, a failure is a refusal and leaves it alone

    def __init__(self, folder: Path, subcommand: str, argv: list[str], config, resume: dict | None = None) -> None:
        self.folder = Path(folder)
        self.path = self.folder / RUN_RECORD
        self._t0 = time.monotonic()
        self._earlier_wall_time = 0.0
        config_files = [str(Path(str(p)).resolve()) for p in (config.get("config") or [])]
        self.record: dict = {
            "status": "running",
            "subcommand": subcommand,
            "command": shlex.join(["mnistctl", *argv]),
            "argv": list(argv),
            "cwd": os.getcwd(),
            # Who writes it, and since when (a resume keeps the run's `started`): a reader on this host can tell
            # a run killed without a word (SIGKILL, a stopped machine) from one still running (process_alive).
            "process": process_record(),
            "config": "config.yaml",  # the fully resolved config, saved by LightningCLI beside this file
            "config_files": config_files,
            "seed": config.get("seed_everything"),
            "ckpt_path": str(Path(config.ckpt_path).resolve()) if config.get("ckpt_path") else None,
            "versions": versions(),
            "git": git_commit(),
            "started": _now(),
            "finished": None,
            "wall_time_s": None,
            "epochs_completed": 0,
            "checkpoints": {},
            "metrics": {},
            "history": [],  # fit: one entry per completed epoch, {"epoch": e, "train/loss": ..., "val/acc": ...}
            "outputs": [],
            "error": None,
            "device": None,
        }
        if resume is not None:
            self.record["resumes"] = [{"started": self.record["started"], "command": self.record["command"], **resume}]

    def release(self, trainer: Trainer, recovered: dict | None = None) -> None:
        """The checkpoint is restored: continue the run's own record from the epoch the resume starts with.
        `recovered`: the record of the epoch the checkpoint ended (epoch_record.py), for a history without it."""
        self.held = False
        epoch = trainer.current_epoch
        self.record["resumes"][-1]["from_epoch"] = epoch
        self.record["epochs_completed"] = epoch
        old = read_record(self.folder)
        if old is not None:
            kept = {k: old[k] for k in ("started", "command", "argv", "cwd", "config_files") if k in old}
            history = [h for h in old.get("history") or [] if isinstance(h, dict) and h.get("epoch", epoch) < epoch]
            # The epoch the checkpoint ended, if a kill came before run.json had it (or the resume restarts at its
            # end, from a checkpoint saved at its last validation: no batch of it runs again).
            if recovered is not None and all(h.get("epoch") != recovered["epoch"] for h in history):
                entry = {k: v for k, v in recovered.items() if k == "epoch" or "/" in k}
                history = sorted([*history, entry], key=lambda h: h.get("epoch", 0))
            earlier = old.get("resumes") if isinstance(old.get("resumes"), list) else []
            wall = old.get("wall_time_s")
            self._earlier_wall_time = float(wall) if isinstance(wall, int | float) else 0.0
            self.record.update(kept, history=history, resumes=[*earlier, *self.record["resumes"]])
            checkpoints = old.get("checkpoints")
            self.record["checkpoints"] = checkpoints if isinstance(checkpoints, dict) else {}
        self._write()

    # -- updates while it runs ---------------------------------------------------------------------

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.trainer = trainer
        self.record["device"] = {
            "accelerator": type(trainer.accelerator).__name__.replace("Accelerator", "").lower(),
            "devices": trainer.num_devices,
            "world_size": trainer.world_size,
            "precision": str(trainer.precision),
        }
        self._write()

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        resumes = self.record.get("resumes")
        if resumes and resumes[-1].get("from_epoch") is None:
            resumes[-1]["from_epoch"] = trainer.current_epoch

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Validation at the end of an epoch runs before this hook: its val/* are this epoch's.
        self.record["epochs_completed"] = trainer.current_epoch + 1
        # On top of what was recorded for this epoch before: a resume at an epoch's end (its batches all done
        # before the checkpoint) logs no figure for it, and keeps those of the checkpoint's record.
        history = self.record["history"]
        earlier = next((h for h in history if h["epoch"] == trainer.current_epoch), {})
        epoch = {**earlier, "epoch": trainer.current_epoch, **stage_metrics(trainer, ("train", "val"))}
        self.record["history"] = [h for h in history if h["epoch"] != trainer.current_epoch] + [epoch]
        self._update(trainer)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._update(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == "validate":
            self._update(trainer)

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._update(trainer)

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        skipped = getattr(trainer.datamodule, "predict_skipped", None) or []
        self.record["skipped"] = [{"path": path, "reason": reason} for path, reason in skipped]
        self._update(trainer)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        self._set_error(exception)
        if self.on_disk:  # else refused in the DataModule's setup (bad --data.predict_dir, ...), before ours
            self._update(trainer)

    def _update(self, trainer: Trainer) -> None:
        self.record["metrics"].update(stage_metrics(trainer))
        callback = trainer.checkpoint_callback
        # Only while fitting: testing a checkpoint restores the callback state saved in it, which is older.
        if trainer.state.fn == "fit" and callback is not None and getattr(callback, "best_model_path", None):
            score = callback.best_model_score
            self.record["checkpoints"] = {
                "monitor": callback.monitor,
                "best": self._rel(callback.best_model_path),
                "best_score": float(score) if score is not None else None,
                "last": self._rel(callback.last_model_path) if callback.last_model_path else None,
            }
        self._write()

    def _set_error(self, error: BaseException) -> None:
        if self.record["status"] != "running":
            return
        interrupted = isinstance(error, KeyboardInterrupt | SIGTERMException)
        self.record["status"] = "interrupted" if interrupted else "failed"
        self.record["error"] = f"{type(error).__name__}: {error}".rstrip(": ")

    # -- the end ----------------------------------------------------------------------------------

    def finish(self, error: BaseException | None = None) -> None:
        """Called by the CLI when the subcommand (for fit: including its test) returns or raises."""
        if error is None:
            self.record["status"] = "completed"
        else:
            self._set_error(error)
            if not self.on_disk:  # refused before it started: an earlier evaluation's run.json there stays as it was
                return
        self.record["finished"] = _now()
        self.record["wall_time_s"] = round(self._earlier_wall_time + time.monotonic() - self._t0, 3)
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            self.record["outputs"] = self._outputs(trainer)
        self._write()
        if self.record["subcommand"] == "fit" and self.record["status"] == "completed":
            log.info(self.summary())

    def summary(self) -> str:
        """A few lines for the end of fit: best validation metric and checkpoint, test accuracy, folder, time."""
        r = self.record
        ckpt = r["checkpoints"]
        lines = [f"fit completed in {format_duration(r['wall_time_s'])}, {r['epochs_completed']} epochs"]
        if ckpt.get("best"):
            score = f"{ckpt['best_score']:.4f}" if ckpt.get("best_score") is not None else "?"
            lines.append(f"  best {ckpt['monitor']:<9} {score}  {shown(self.folder / ckpt['best'])}")
        test = r["metrics"].get("test/acc")
        lines.append(f"  test/acc       {test:.4f}" if test is not None else "  test/acc       not run")
        lines.append(f"  run folder     {shown(self.folder)}  (run.json, config.yaml, metrics.csv, pictures)")
        return "\n".join(lines)

    def _outputs(self, trainer: Trainer) -> list[str]:
        files = [
            p for p in self.folder.rglob("*") if p.is_file() and p.name != RUN_RECORD and not p.name.startswith(".")
        ]
        for callback in trainer.callbacks:  # files written outside the folder, e.g. --predictions.path
            for attr in ("written", "skipped_file"):
                value = getattr(callback, attr, None)
                files += [Path(p) for p in (value if isinstance(value, list) else [value]) if p and Path(p).is_file()]
        return sorted({self._rel(p) for p in files})

    def _rel(self, path: str | os.PathLike) -> str:
        path = Path(path).resolve()
        try:
            return str(path.relative_to(self.folder.resolve()))
        except ValueError:
            return str(path)

    def _write(self) -> None:
        if rank_zero_only.rank != 0 or self.held:
            return
        with atomic_write(self.path) as f:
            json.dump(self.record, f, indent=2)
            f.write("\n")
        self.on_disk = True


def stage_metrics(trainer: Trainer, stages: tuple[str, ...] | None = None) -> dict[str, float]:
    """The logged `stage/name` scalars (train/loss, val/acc, ...), optionally of some stages only."""
    return {
        k: float(v)
        for k, v in trainer.callback_metrics.items()
        if "/" in k and v.numel() == 1 and (stages is None or k.split("/", 1)[0] in stages)
    }


def versions() -> dict[str, str]:
    import torch

    found = {"python": platform.python_version(), "mnistctl": __version__, "torch": torch.__version__}
    for package in ("torchvision", "pytorch-lightning", "jsonargparse"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return found


def git_commit(timeout: float = 2.0) -> dict | None:
    """The commit of the mnistctl checkout that is running, if it runs from one (best effort)."""
    package = Path(__file__).resolve().parent

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(package), *args], capture_output=True, text=True, timeout=timeout)

    try:
        # An installed copy inside some other repository's folder is not that repository's code.
        if git("ls-files", "--error-unmatch", "__init__.py").returncode != 0:
            return None
        commit = git("rev-parse", "HEAD").stdout.strip()
        dirty = bool(git("status", "--porcelain", "--untracked-files=no").stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty} if commit else None


def _now() -> str:
    # Milliseconds: `mnistctl runs` orders runs by it, and a fit and a test can start in the same second.
    return datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="milliseconds")
