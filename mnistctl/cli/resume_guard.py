"""The guard on resume: `fit --ckpt_path` with other model, data or optimizer settings than the run had.

    mnistctl fit --ckpt_path last --model.dropout_ratio 0.5          # one line naming the keys; nothing runs
    mnistctl fit --ckpt_path last --model.dropout_ratio 0.5 --allow_config_change true   # trains with 0.5

The run's settings come from the checkpoint itself: the model's and the data's saved hyper-parameters,
and the optimizer and schedule that `SettingsInCheckpoint` writes into every checkpoint. Trainer limits
(max_epochs, devices, limit_*) are not compared: a resume may change them. Evaluation (validate, test,
predict) takes the model's settings from the checkpoint and says so when the user asked for others.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from pytorch_lightning import Callback

from mnistctl import layout
from mnistctl.console import shown
from mnistctl.errors import UsageError

log = logging.getLogger(__name__)

SETTINGS_KEY = "mnistctl_settings"  # in a checkpoint: {"optimizer": {...}, "lr_scheduler": {...} or None}
# What is trained on, not where the files are: data_dir, download, eval_batch_size and predict_dir may change.
GUARDED_DATA_KEYS = ("batch_size", "val_size", "split_seed", "shuffle_seed", "mean", "std", "augment_shift")
OPTIMIZATION = ("optimizer", "lr_scheduler")


def plain(value: Any) -> Any:
    """A config value as JSON-like data (Namespaces to dicts, tuples to lists) to compare and to save."""
    if isinstance(value, Namespace):
        value = value.as_dict()
    return json.loads(json.dumps(value, default=str))


def optimization_settings(config: Namespace) -> dict:
    return {key: plain(config.get(key)) for key in OPTIMIZATION}


class SettingsInCheckpoint(Callback):
    """Writes the optimizer and lr_scheduler config into each checkpoint, for the guard on resume."""

    def __init__(self, settings: dict) -> None:
        self.settings = settings

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[SETTINGS_KEY] = self.settings


class RestartOptimization(Callback):
    """An allowed change of optimizer or lr_scheduler on resume: the weights, epochs and callbacks are restored,
    the optimizer and schedule start afresh from the new settings (their saved state belongs to the old ones)."""

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        # Lightning restores optimizers and schedulers after the callbacks, pairing them with these lists.
        checkpoint["optimizer_states"] = []
        checkpoint["lr_schedulers"] = []


def _flat(value: Any, key: str) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for k, v in value.items():
            flat.update(_flat(v, f"{key}.{k}"))
        return flat
    return {key: value}


def _differences(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    old, new = {}, {}
    for key in before:
        old.update(_flat(before[key], key))
        new.update(_flat(after.get(key), key))
    changed = {k: (old.get(k), new.get(k)) for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)}
    # A class swapped for another: name the class, not every init_arg that differs because of it.
    swapped = [k.removesuffix(".class_path") for k in changed if k.endswith(".class_path")]
    return {k: v for k, v in changed.items() if not any(k.startswith(f"{s}.init_args.") for s in swapped)}


def settings_changes(config: Namespace, ckpt: dict, model_hparams: dict) -> dict[str, tuple[Any, Any]]:
    """{dotted key: (the run's value, this command's value)} for every guarded setting that differs."""
    data_saved = ckpt.get("datamodule_hyper_parameters") or {}
    before = {
        "model": plain(model_hparams),
        "data": {k: plain(data_saved[k]) for k in GUARDED_DATA_KEYS if k in data_saved},
    }
    after = {
        "model": {k: plain(config.model.get(k)) for k in model_hparams},
        "data": {k: plain(config.data.get(k)) for k in before["data"]},
    }
    saved = ckpt.get(SETTINGS_KEY)
    if isinstance(saved, dict):  # checkpoints made before mnistctl recorded these are compared on model and data
        for key in OPTIMIZATION:
            before[key], after[key] = plain(saved.get(key)), plain(config.get(key))
    return _differences(before, after)


def guard_resume(config: Namespace, ckpt: dict, hparams: dict, path: Path) -> dict[str, tuple[Any, Any]]:
    """The settings that differ from the checkpoint's run; refused in one line unless --allow_config_change."""
    changes = settings_changes(config, ckpt, hparams)
    if changes and not config.get("allow_config_change"):
        saved = layout.run_dir_of(path) / layout.CONFIG
        hint = f"--config {shown(saved)} --ckpt_path ..." if saved.is_file() else "the run's settings"
        raise UsageError(
            f"--ckpt_path {shown(path)}: settings differ from the run that made it: {describe(changes)}; "
            f"resume with {hint}, or add --allow_config_change true to continue with yours"
        )
    return changes


def resume_entry(ckpt_path: Path, changes: dict[str, tuple[Any, Any]], restart_optimization: bool) -> dict:
    """What run.json records of a fit from a checkpoint (its first epoch is added once known)."""
    return {
        "from_checkpoint": str(ckpt_path.resolve()),
        "from_epoch": None,
        "config_changes": {k: {"run": old, "now": new} for k, (old, new) in changes.items()},
        "optimizer_state": "restarted" if restart_optimization else "restored",
    }


def describe(changes: dict[str, tuple[Any, Any]], limit: int = 4) -> str:
    shown = [f"{key} ({_short(old)} -> {_short(new)})" for key, (old, new) in list(changes.items())[:limit]]
    more = f" and {len(changes) - limit} more" if len(changes) > limit else ""
    return ", ".join(shown) + more


def _short(value: Any) -> str:
    text = "unset" if value is None else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def user_set_model_keys(config: Namespace, defaults: Namespace, argv: list[str]) -> set[str]:
    """Model keys this command sets: not the parser's default, or named on the command line."""
    named = {a.split("=", 1)[0].removeprefix("--model.").split(".")[0] for a in argv if a.startswith("--model.")}
    model, default = config.get("model") or Namespace(), defaults.get("model") or Namespace()
    return {k for k in model.keys() if "." not in k and plain(model.get(k)) != plain(default.get(k))} | named


def warn_model_overridden(subcommand: str, config: Namespace, hparams: dict, user_keys: set[str]) -> None:
    """validate/test/predict build the checkpoint's model: one warning when the user asked for other values."""
    changes = _differences(
        {"model": {k: plain(v) for k, v in hparams.items() if k in user_keys}},
        {"model": {k: plain(config.model.get(k)) for k in hparams if k in user_keys}},
    )
    if changes:
        used = ", ".join(f"{k} {_short(old)} (not {_short(new)})" for k, (old, new) in changes.items())
        log.warning("%s uses the checkpoint's model settings: %s", subcommand, used)
