"""The sweep's Hydra tree cannot drift from the installed libraries (issue 11.7): it is generated from them
once per set of versions and cached, its group options set only arguments their classes take, and its
key list's types say what the real LightningCLI parser accepts.

    .venv/bin/python -m pytest tests/test_sweep_tree.py     # fast: about half a minute (one generation)

The packaged configs/sweep/ holds what mnistctl chooses; generate.py completes it from the installed
torch, Lightning and jsonargparse into <cache>/sweep-configs/<key>/ (tree.py), which Hydra composes from.
"""

from __future__ import annotations

import filecmp
import itertools

import pytest
import yaml

from mnistctl.sweep import tree as tree_module
from mnistctl.sweep.generate import _completed_option, build, fit_parser, kinds
from mnistctl.sweep.keys import DEFAULTS_NAME, GROUP_SECTIONS, KEYS_NAME, flatten, load_keys
from mnistctl.sweep.tree import PACKAGED_TREE, cache_key, config_dir
from mnistctl.sweep.values import accepted


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (PACKAGED_TREE / group).glob("*.yaml"))


def test_the_cached_tree_is_what_the_installed_libraries_generate(sweep_tree, tmp_path):
    # A fresh build from the installed libraries, compared file by file with what the sweep composes from.
    build(tmp_path / "fresh")
    fresh = sorted(p.relative_to(tmp_path / "fresh") for p in (tmp_path / "fresh").rglob("*.yaml"))
    assert fresh == sorted(p.relative_to(sweep_tree) for p in sweep_tree.rglob("*.yaml"))
    for name in fresh:
        assert filecmp.cmp(tmp_path / "fresh" / name, sweep_tree / name, shallow=False), f"{name} differs"
    stamp = yaml.safe_load((sweep_tree / KEYS_NAME).read_text())["versions"]
    assert stamp == tree_module.versions()


def test_another_torch_or_an_edited_config_gets_its_own_tree(sweep_tree, monkeypatch):
    assert config_dir() == sweep_tree and sweep_tree.name == cache_key()
    real = tree_module.versions()
    monkeypatch.setattr(tree_module, "versions", lambda: {**real, "torch": "2.4.0"})
    assert cache_key() != sweep_tree.name  # a sweep under torch 2.4 builds and uses another folder
    monkeypatch.setattr(tree_module, "versions", lambda: real)
    assert cache_key() == sweep_tree.name
    # Found in the cache: nothing is generated again (no child process).
    monkeypatch.setattr(tree_module.subprocess, "run", lambda *a, **k: pytest.fail("regenerated a cached tree"))
    assert config_dir() == sweep_tree


def test_packaged_options_set_only_arguments_their_installed_class_takes(sweep_tree):
    keys = load_keys(sweep_tree / KEYS_NAME)
    for group in GROUP_SECTIONS:
        for option in _options(group):
            packaged = yaml.safe_load((PACKAGED_TREE / group / f"{option}.yaml").read_text())
            given = list(packaged.get("init_args") or {})
            assert set(given) <= set(keys.init_args[packaged["class_path"]]), f"{group}/{option}.yaml"
            generated = yaml.safe_load((sweep_tree / group / f"{option}.yaml").read_text())
            # Every init_arg of the class, so each is a plain override; the option's own values kept.
            assert list(generated["init_args"]) == keys.init_args[packaged["class_path"]]
            assert {k: generated["init_args"][k] for k in given} == packaged.get("init_args", {})
            assert (sweep_tree / group / f"{option}.yaml").read_text().startswith(f"# @package {GROUP_SECTIONS[group]}")


def test_an_option_setting_an_argument_its_class_lacks_is_refused(sweep_tree, tmp_path):
    # What happens under an older torch whose SGD has no `momentum`, simulated by an option naming `nope`.
    option = tmp_path / "sgd.yaml"
    option.write_text("# @package optimizer\nclass_path: torch.optim.SGD\ninit_args:\n  lr: 0.05\n  nope: 1\n")
    defaults = {"torch.optim.SGD": {"lr": 0.001, "momentum": 0.0}}
    with pytest.raises(SystemExit, match=r"sets init_args nope, which torch.optim.SGD does not take"):
        _completed_option(option, yaml.safe_load(option.read_text()), defaults)


def test_groups_have_the_options_the_readme_names(sweep_tree):
    assert _options("criterion") == ["ce", "ce_smooth", "mse", "nll"]
    assert _options("optimizer") == ["adam", "adamw", "sgd"]
    sgd = yaml.safe_load((sweep_tree / "optimizer" / "sgd.yaml").read_text())
    assert sgd["init_args"]["momentum"] == 0.9 and sgd["init_args"]["nesterov"] is False
    smooth = yaml.safe_load((sweep_tree / "criterion" / "ce_smooth.yaml").read_text())
    assert smooth["init_args"]["label_smoothing"] == 0.1


def test_composed_sweep_config_covers_exactly_the_lightning_keys(sweep_tree):
    from hydra import compose
    from omegaconf import OmegaConf

    from mnistctl.sweep.compose import hydra_session

    keys = load_keys(sweep_tree / KEYS_NAME)
    expected = sorted([*keys.leaves, *(f"{k}[]" for k in keys.lists)])
    with hydra_session(sweep_tree):
        for criterion, optimizer in itertools.product(_options("criterion"), _options("optimizer")):
            cfg = compose("sweep", overrides=[f"criterion={criterion}", f"optimizer={optimizer}", "seed=7"])
            tree = OmegaConf.to_container(cfg, resolve=True)
            assert tree.pop("seed") == 7 and tree["seed_everything"] == 7
            assert "pruner" in tree.pop("pruner")["_target_"]  # the search's pruner, a sweep key (job.py drops it)
            found, classes = flatten(tree)
            assert sorted(found) == expected
            for class_path, args in classes.items():
                assert args == keys.init_args[class_path]
    assert "seed" in yaml.safe_load((sweep_tree / DEFAULTS_NAME).read_text())


# The oracle: the real `mnistctl fit` parser. What the key list's types accept, it accepts, and back.
PROBES = [1, 2.5, 64.0, -3, "abc", "3", "0.5", "true", True, None, [1], {"a": 1}, "16-mixed", 16, 17]
KEYS = [
    "trainer.max_epochs",
    "trainer.precision",
    "trainer.limit_train_batches",
    "trainer.enable_checkpointing",
    "trainer.deterministic",
    "trainer.max_time",
    "model.dropout_ratio",
    "data.batch_size",
    "data.data_dir",
    "data.mean",
    "seed_everything",
    "num_threads",
]


def test_types_in_the_key_list_agree_with_the_lightning_cli_parser(sweep_tree):
    keys = load_keys(sweep_tree / KEYS_NAME)
    parser = fit_parser()
    disagreements = []
    for key, value in itertools.product(KEYS, PROBES):
        tree: dict = {}
        *parents, last = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
        try:
            parser.parse_object(tree, defaults=False)
            real = True
        except SystemExit:  # mnistctl's parser prints the error and exits 2
            real = False
        if value is None and "null" not in keys.types[key]:
            # jsonargparse reads null as "unset" for any type, but MNISTClassifier(dropout_ratio=None) and
            # friends fail when built: the key list refuses null unless the type has it.
            real = False
        if accepted(keys.types[key], value)[0] != real:
            disagreements.append((key, value, real))
    assert disagreements == [], disagreements


def test_kinds_of_type_hints():
    import datetime
    from pathlib import Path
    from typing import Literal, Optional, Union

    assert kinds(Optional[int]) == ["int", "null"]  # noqa: UP045 - the spelling Lightning's signatures use
    assert kinds(int | float | None) == ["int", "float", "null"]
    assert kinds(Union[str, datetime.timedelta, dict[str, int], None]) == ["str", "dict", "null"]  # noqa: UP007
    assert kinds(Literal["a", 1] | None) == [{"literal": ["a", 1]}, "null"]
    assert kinds(str | Path | None) == ["str", "null"]
    assert kinds(list[int] | str) == ["list", "str"]
    assert kinds(object) is None and kinds(int | object) is None  # a class: not checked
