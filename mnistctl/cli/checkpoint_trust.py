"""A checkpoint is data from anywhere: what in it may reach the config, checked before anything uses it.

    mnistctl predict --ckpt_path model.ckpt   # a class_path in it outside the allow-list: one line, exit 2

LightningCLI merges a checkpoint's `hyper_parameters` into the parsed config, and jsonargparse imports
every `class_path` it meets: a crafted checkpoint could name a module beside it (`helpers.Loss`, run by
`python -m`) or any installed one. Here every dotted name in the hyper-parameters must be on an
allow-list (torch.nn losses, torch.optim optimizers and schedules, mnistctl's own classes), checked
without importing anything; values are range-checked and blamed on the checkpoint, not on a flag.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from mnistctl.errors import UsageError

# mnistctl's own classes that a config may name (the model, its data, schedules, callbacks, the CSV writer).
MNISTCTL_CLASSES = {
    "mnistctl.model.MNISTClassifier",
    "mnistctl.data.MNISTDataModule",
    "mnistctl.data.datamodule.MNISTDataModule",
    "mnistctl.schedules.OneCycle",
    "mnistctl.plot_callbacks.LearningCurves",
    "mnistctl.plot_callbacks.TestPlots",
    "mnistctl.cli.predictions.PredictionsCSV",
}
# What a checkpoint's hyper_parameters may set: MNISTClassifier's arguments (mnistctl/model.py).
MODEL_HPARAMS = ("dropout_ratio", "criterion", "num_classes")
# Lightning's own keys in saved hyper-parameters: where LightningCLI rebuilds them from, never needed here.
LIGHTNING_KEYS = ("_instantiator", "_class_path")


def allowed_class_path(name: str) -> bool:
    """A torch.nn loss, a torch.optim optimizer or schedule, or a mnistctl class: looked up, not imported."""
    if name in MNISTCTL_CLASSES:
        return True
    module, _, attr = name.rpartition(".")
    bases = {
        "torch.nn": "torch.nn.modules.loss._Loss",
        "torch.nn.modules.loss": "torch.nn.modules.loss._Loss",
        "torch.optim": "torch.optim.Optimizer",
        "torch.optim.lr_scheduler": "torch.optim.lr_scheduler.LRScheduler",
    }
    if module not in bases or not attr.isidentifier() or attr.startswith("_"):
        return False
    import torch  # noqa: F401  (already loaded by every command that reads a checkpoint)

    found = getattr(sys.modules.get(module), attr, None)
    base_module, _, base_name = bases[module].rpartition(".")
    base = getattr(sys.modules.get(base_module), base_name, None)
    ok = isinstance(found, type) and base is not None and issubclass(found, base)
    plateau = getattr(sys.modules.get("torch.optim.lr_scheduler"), "ReduceLROnPlateau", None)
    return ok or (found is not None and found is plateau)


def _dotted_names(value: Any, key: str = "") -> list[tuple[str, Any]]:
    """(key, value) of every class_path, whatever its value (jsonargparse resolves a bare `Identity` against
    the classes already imported), and of every other string that reads as an import path, at any depth."""
    found = []
    if isinstance(value, dict):
        for k, v in value.items():
            inner = f"{key}.{k}" if key else str(k)
            found += [(inner, v)] if k == "class_path" else _dotted_names(v, inner)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found += _dotted_names(v, f"{key}[{i}]")
    elif isinstance(value, str) and "." in value and all(part.isidentifier() for part in value.split(".")):
        found.append((key, value))
    return found


def trusted_model_hparams(ckpt: dict, path: Path) -> dict:
    """The model hyper-parameters of a checkpoint, refused in one line when they name code or bad values."""
    hparams = ckpt.get("hyper_parameters") or {}
    if not isinstance(hparams, dict):
        raise UsageError(f"checkpoint {path}: hyper_parameters is not a mapping; it was not written by mnistctl")
    hparams = {k: v for k, v in hparams.items() if k not in LIGHTNING_KEYS}
    if unknown := sorted(set(hparams) - set(MODEL_HPARAMS), key=str):
        raise UsageError(
            f"checkpoint {path} holds hyper_parameters.{unknown[0]}, which MNISTClassifier does not take (it takes "
            f"{', '.join(MODEL_HPARAMS)}): the file was altered or not written by mnistctl; use another checkpoint"
        )
    class_specs = [("criterion", hparams["criterion"])] if isinstance(hparams.get("criterion"), str) else []
    for key, name in [*class_specs, *_dotted_names(hparams)]:  # a class-typed value given as a bare string too
        if not isinstance(name, str) or not allowed_class_path(name):
            raise UsageError(
                f"checkpoint {path} names class {name!r} at hyper_parameters.{key}, which is not a torch loss, "
                "optimizer or schedule nor a mnistctl class; refusing to import code a checkpoint names"
            )
    dropout = hparams.get("dropout_ratio", 0.25)
    if not _number(dropout) or not 0 <= dropout < 1:
        raise _bad_value(path, "hyper_parameters.dropout_ratio", dropout, "a number in [0, 1)")
    classes = hparams.get("num_classes", 10)
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 2:
        raise _bad_value(path, "hyper_parameters.num_classes", classes, "an integer of at least 2")
    return hparams


def trusted_data_hparams(ckpt: dict, path: Path, keys: tuple[str, ...]) -> dict:
    """The data settings evaluation takes from a checkpoint, range-checked and blamed on the checkpoint."""
    saved = ckpt.get("datamodule_hyper_parameters") or {}
    saved = {k: saved[k] for k in keys if isinstance(saved, dict) and k in saved}
    checks = {
        "val_size": (lambda v: isinstance(v, int) and 0 < v < 60_000, "an integer between 1 and 59999"),
        "split_seed": (lambda v: isinstance(v, int), "an integer"),
        "mean": (lambda v: _number(v) and math.isfinite(v), "a finite number"),
        "std": (lambda v: _number(v) and math.isfinite(v) and v > 0, "a positive number"),
    }
    for key, value in saved.items():
        ok, wanted = checks.get(key, (lambda v: True, ""))
        if isinstance(value, bool) or not ok(value):
            raise _bad_value(path, f"datamodule_hyper_parameters.{key}", value, wanted)
    return saved


def check_state_dict(ckpt: dict, path: Path, expected: dict[str, Any], prefix: str = "") -> None:
    """The checkpoint's weights must fit the model: same names, same shapes (else one line, not a RuntimeError)."""
    weights = {k.removeprefix(prefix): v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    missing = sorted(expected.keys() - weights.keys())
    unexpected = sorted(weights.keys() - expected.keys())
    shapes = [
        k
        for k in expected.keys() & weights.keys()
        if tuple(getattr(weights[k], "shape", ())) != tuple(getattr(expected[k], "shape", ()))
    ]
    if not (missing or unexpected or shapes):
        return
    if not weights:
        problem = "its state_dict holds no weights"
    elif missing:
        problem = f"its state_dict lacks {len(missing)} weights of the model, e.g. {prefix}{missing[0]}"
    elif unexpected:
        problem = f"its state_dict has {len(unexpected)} weights the model does not, e.g. {prefix}{unexpected[0]}"
    else:
        key = sorted(shapes)[0]
        problem = f"{prefix}{key} has shape {tuple(weights[key].shape)}, the model needs {tuple(expected[key].shape)}"
    raise UsageError(f"{path} is not a readable checkpoint of this model: {problem}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _bad_value(path: Path, key: str, value: Any, wanted: str) -> UsageError:
    return UsageError(
        f"checkpoint {path} holds {key} = {value!r}, which must be {wanted}: the file was altered or not "
        "written by mnistctl; use another checkpoint"
    )
