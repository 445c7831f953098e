"""A run's config as one flat {dotted key: value} dict: what `mnistctl runs` compares and TensorBoard shows.

    python -c "import yaml; from mnistctl.flat_config import flatten; \
print(flatten(yaml.safe_load(open('runs/mnist/version_0/config.yaml'))))"

A `class_path`/`init_args` pair becomes the short class name under its key plus one key per argument
(`optimizer: Adam`, `optimizer.lr: 0.003`). A list of them (callbacks, loggers) becomes the class names,
in order, under its key plus one key per class and argument (`trainer.callbacks.EarlyStopping.patience: 3`;
a second instance of a class is `EarlyStopping_1`), so runs compare by class, not by list position.
Other lists stay values. Only the standard library: `mnistctl runs` must not import torch.
"""

from __future__ import annotations

from typing import Any


def short_name(class_path: str) -> str:
    """`torch.optim.Adam` -> `Adam`."""
    return str(class_path).rsplit(".", 1)[-1]


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    _flatten(tree, prefix, flat)
    return flat


def _is_class(value: Any) -> bool:
    return isinstance(value, dict) and "class_path" in value


def _arguments(component: dict) -> dict:
    return {**(component.get("init_args") or {}), **(component.get("dict_kwargs") or {})}


def _flatten(value: Any, key: str, out: dict[str, Any]) -> None:
    if _is_class(value):
        out[key] = short_name(value["class_path"])
        _flatten(_arguments(value), key, out)
    elif isinstance(value, dict):
        for name, item in value.items():
            _flatten(item, f"{key}.{name}" if key else str(name), out)
    elif isinstance(value, list) and value and all(_is_class(item) for item in value):
        names = [short_name(item["class_path"]) for item in value]
        out[key] = ",".join(names)
        seen: dict[str, int] = {}
        for item, name in zip(value, names, strict=True):
            label = name if name not in seen else f"{name}_{seen[name]}"
            seen[name] = seen.get(name, 0) + 1
            _flatten(_arguments(item), f"{key}.{label}", out)
    else:
        out[key] = value
