"""The generated key list of the sweep tree (lightning_keys.yaml): every LightningCLI key, its type, and
the init_args of the classes the groups select. Read without torch.

    python -m mnistctl.sweep.generate     # build (or find) the tree, this file included; print where it is

lightning_keys.yaml is written by generate.py from the installed LightningCLI parser and cached with the
rest of the tree (tree.py). `mnistctl sweep --dry-run` checks override keys against it (this module) and
values against its types (values.py), without importing torch.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

GROUP_SECTIONS = {"criterion": "model.criterion", "optimizer": "optimizer"}  # group -> the section it fills
CLASS_SECTIONS = ("model.criterion", "optimizer", "lr_scheduler")  # class_path + init_args sections
SWEEP_ONLY_KEYS = ("seed", "pruner")  # sweep.yaml keys that are not LightningCLI keys (seed -> seed_everything)
KEYS_NAME = "lightning_keys.yaml"
DEFAULTS_NAME = "lightning.yaml"


@dataclass
class Keys:
    leaves: list[str] = field(default_factory=list)
    lists: list[str] = field(default_factory=list)
    init_args: dict[str, list[str]] = field(default_factory=dict)
    # The kinds of value each key accepts (see values.py); keys whose type is a class or unknown are absent.
    types: dict[str, list] = field(default_factory=dict)
    init_arg_types: dict[str, dict[str, list]] = field(default_factory=dict)

    def problem(self, key: str, classes: dict[str, str], value: str = "") -> str | None:
        """Why `key` is not a config key for a job whose class sections hold `classes`, or None."""
        key = key.lstrip("+~")
        if key.split(".")[0] in (*SWEEP_ONLY_KEYS, "hydra"):
            return None
        for section in CLASS_SECTIONS:
            prefix = f"{section}.init_args."
            if key.startswith(prefix):
                return self.init_arg_problem(section, classes.get(section, "?"), key[len(prefix) :].split(".")[0])
        known = [*self.leaves, *self.lists]
        if key in known:
            return None
        if any(k.startswith(key + ".") for k in known):
            if value.startswith("{") or value == "":
                return None
            inner = next(k for k in known if k.startswith(key + "."))
            return f"{key} is a section, not a value: set its keys, e.g. {inner}=..."
        if any(key.startswith(lst + ".") for lst in self.lists):
            return None  # an item of a list such as trainer.logger.0.init_args.name: LightningCLI checks it
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else "; see 'mnistctl fit --print_config' for the keys"
        return f"unknown key {key}{hint}"

    def init_arg_problem(self, section: str, class_path: str, arg: str) -> str | None:
        known = self.init_args.get(class_path)
        if known is None:
            return self.class_problem(section, class_path)
        if arg in known:
            return None
        return f"{section}.init_args.{arg}: {class_path} has no argument {arg} (it takes {', '.join(known)})"

    def class_problem(self, section: str, class_path: str) -> str | None:
        if class_path in self.init_args:
            return None
        group = {"model.criterion": "criterion=...", "optimizer": "optimizer=..."}.get(section)
        how = f"pick one with {group} or add a" if group else "add a"
        return (
            f"{section}.class_path={class_path}: its init_args are unknown to the sweep; {how} group option "
            f"under configs/sweep/ (see 'mnistctl sweep --info')"
        )


def load_keys(path: Path) -> Keys:
    data = yaml.safe_load(path.read_text())
    keys = [str(k) for k in data["keys"]]
    return Keys(
        leaves=[k for k in keys if not k.endswith("[]")],
        lists=[k[:-2] for k in keys if k.endswith("[]")],
        init_args={cls: list(args) for cls, args in data["init_args"].items()},
        types=data.get("types") or {},
        init_arg_types=data.get("init_arg_types") or {},
    )


def flatten(tree: dict, prefix: str = "") -> tuple[list[str], dict[str, list[str]]]:
    """Keys of a LightningCLI config tree, and the init_args of each class section in it."""
    keys: list[str] = []
    classes: dict[str, list[str]] = {}
    for name, value in tree.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict) and "class_path" in value:
            keys += [f"{key}.class_path", f"{key}.init_args"]
            classes[value["class_path"]] = list((value.get("init_args") or {}).keys())
        elif isinstance(value, dict) and value:
            sub_keys, sub_classes = flatten(value, f"{key}.")
            keys += sub_keys
            classes.update(sub_classes)
        else:
            keys.append(f"{key}[]" if isinstance(value, list) else key)
    return keys, classes
