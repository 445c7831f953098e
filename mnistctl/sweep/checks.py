"""Friendly checks of one job's override keys, before Hydra composes it: unknown keys (with a suggestion),
group options, classes and their init_args.

    mnistctl sweep --dry-run trainer.max_epoch=2 optimizer.init_args.momentum=0.5

Hydra would refuse most of these too ("Key 'max_epoch' is not in struct"); these messages say what to
type instead. What composes fine is then checked for real: compose.py composes the job with Hydra and
checks the values of the config it gives.
"""

from __future__ import annotations

import functools
from pathlib import Path

import yaml

from mnistctl.sweep.keys import CLASS_SECTIONS, DEFAULTS_NAME, GROUP_SECTIONS, Keys

CONFIG_NAME = "sweep"


@functools.cache
def read_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def default_choices(tree: Path) -> dict[str, str | None]:
    defaults = read_yaml(tree / f"{CONFIG_NAME}.yaml")["defaults"]
    return {k: v for entry in defaults if isinstance(entry, dict) for k, v in entry.items()}


def job_problems(job: list[str], keys: Keys, options, tree: Path) -> list[str]:
    """What is wrong with one job's overrides: unknown keys, group options, classes or init_args."""
    pairs = [(s.split("=", 1)[0], s.split("=", 1)[1] if "=" in s else "") for s in job]
    problems: list[str] = []
    choices = default_choices(tree)
    for key, value in pairs:
        group = key.lstrip("+~")
        if (group in choices or "/" in group) and key.startswith("~"):
            choices[group] = None  # deleting a group from the defaults: Hydra checks it when composing
        elif group in choices or "/" in group:
            known = options(group)
            if not known:
                problems.append(f"{key}={value}: there is no config group {group}")
            elif value not in known and value != "null":
                problems.append(f"{key}={value}: {group} has no option {value} (options: {', '.join(known)})")
            else:
                choices[group] = value
    scheduler = read_yaml(tree / DEFAULTS_NAME)["lr_scheduler"]
    classes = {"lr_scheduler": scheduler["class_path"]}
    section_args = {"lr_scheduler": list(scheduler["init_args"])}
    for group, section in GROUP_SECTIONS.items():
        if choices.get(group) in options(group):
            option = read_yaml(tree / group / f"{choices[group]}.yaml")
            classes[section], section_args[section] = option["class_path"], list(option["init_args"])
    # class_path overrides first: they decide which init_args the other overrides may name
    for key, value in sorted(pairs, key=lambda pair: not pair[0].endswith(".class_path")):
        bare = key.lstrip("+~")
        if bare in choices or "/" in bare:
            continue
        section = bare.removesuffix(".class_path")
        if bare.endswith(".class_path") and section in CLASS_SECTIONS:
            problem = keys.class_problem(section, value)
            if problem is None:
                wrong = [a for a in section_args.get(section, []) if a not in keys.init_args[value]]
                if wrong:
                    problem = (
                        f"{bare}={value}: the sweep's {section}.init_args ({', '.join(wrong)}) are not "
                        f"arguments of {value}; switch classes with a group option instead"
                    )
                classes[section] = value
        else:
            problem = keys.problem(bare, classes, value)
        if problem:
            problems.append(problem)
    return problems
