"""Check the values of a sweep job's config, as `mnistctl fit --config job.yaml` would, without torch.

    mnistctl sweep --dry-run model.dropout_ratio=1.5 trainer.max_epochs=abc    # both reported, nothing runs

Types come from the generated key list (lightning_keys.yaml: the kinds of value each key and each
init_arg accepts, read off the LightningCLI parser); ranges from mnistctl/ranges.py, the rules the CLI
itself applies before building anything. Like jsonargparse, a string given where no string is accepted
is read as YAML first ('3' is the integer 3), so what passes here passes there.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from mnistctl.ranges import tree_problems
from mnistctl.sweep.keys import CLASS_SECTIONS, Keys

NAMES = {
    "null": "null",
    "bool": "true/false",
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "list": "a list",
    "dict": "a mapping",
}


def _matches(kind, value: Any) -> bool:
    if isinstance(kind, dict):  # jsonargparse compares with ==: 64.0 is the Literal 64
        return value in kind["literal"]
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return {
        "null": value is None,
        "bool": isinstance(value, bool),
        "int": number and isinstance(value, int),
        "float": number,
        "str": isinstance(value, str),
        "list": isinstance(value, (list, tuple)),
        "dict": isinstance(value, dict),
    }.get(kind, True)


def accepted(kinds: list, value: Any) -> tuple[bool, Any]:
    """Whether `value` is of one of `kinds`, and the value as the parser would take it."""
    if any(_matches(kind, value) for kind in kinds):
        return True, value
    if isinstance(value, str):  # jsonargparse reads a string as YAML when the type is not a string
        try:
            loaded = yaml.safe_load(value)
        except yaml.YAMLError:
            return False, value
        if not isinstance(loaded, str) and any(_matches(kind, loaded) for kind in kinds):
            return True, loaded
    return False, value


def describe(kinds: list) -> str:
    names = []
    for kind in kinds:
        if isinstance(kind, dict):
            names += [repr(choice) for choice in kind["literal"]]
        else:
            names.append(NAMES.get(kind, kind))
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


def _node(tree: dict, key: str) -> tuple[dict | None, str]:
    """The mapping that holds `key` (dotted) and the last part of the key, or None when it is absent."""
    *parents, last = key.split(".")
    node: Any = tree
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) and last in node else None), last


def value_problems(tree: dict, keys: Keys) -> list[str]:
    """Every value of a job's LightningCLI config of the wrong type or out of range, one line each."""
    tree = copy.deepcopy(tree)  # values are replaced by what the parser would make of them
    checks = list(keys.types.items())
    for section in CLASS_SECTIONS:
        holder, last = _node(tree, section)
        class_path = holder[last].get("class_path") if holder and isinstance(holder[last], dict) else None
        for arg, kinds in keys.init_arg_types.get(class_path, {}).items():
            checks.append((f"{section}.init_args.{arg}", kinds))
    problems = []
    for key, kinds in checks:
        holder, last = _node(tree, key)
        if holder is None:
            continue  # deleted with ~key: the parser's default applies
        ok, holder[last] = accepted(kinds, holder[last])
        if not ok:
            problems.append(f"{key} must be {describe(kinds)}, got {holder[last]!r}")
    return problems + tree_problems(tree)
