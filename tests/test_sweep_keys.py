"""The sweep's generated LightningCLI files stay in sync with the parser, and the groups fit them.

    .venv/bin/python -m mnistctl.sweep.keys     # what to run when a test here fails

configs/sweep/lightning.yaml (defaults) and lightning_keys.yaml (keys, init_args per class) are what
`mnistctl sweep` composes from and what --dry-run checks against without torch; they are regenerated
here from `mnistctl fit --print_config` and compared byte for byte.
"""

from __future__ import annotations

import itertools

import pytest
import yaml

from mnistctl.sweep.keys import DEFAULTS_FILE, KEYS_FILE, SWEEP_DIR, flatten, generate, load_keys

GROUPS = {"criterion": "model.criterion", "optimizer": "optimizer"}


def test_generated_files_match_the_lightning_cli_parser():
    for path, text in generate().items():
        assert path.read_text() == text, f"{path.name} is stale: run 'python -m mnistctl.sweep.keys'"


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (SWEEP_DIR / group).glob("*.yaml"))


def test_groups_have_the_options_the_issue_names():
    assert _options("criterion") == ["ce", "ce_smooth", "mse", "nll"]
    assert _options("optimizer") == ["adam", "adamw", "sgd"]
    sgd = yaml.safe_load((SWEEP_DIR / "optimizer" / "sgd.yaml").read_text())
    assert sgd["init_args"]["momentum"] == 0.9
    smooth = yaml.safe_load((SWEEP_DIR / "criterion" / "ce_smooth.yaml").read_text())
    assert smooth["init_args"]["label_smoothing"] > 0


@pytest.mark.parametrize("group", list(GROUPS))
def test_every_group_option_gives_its_class_every_init_arg(group):
    keys = load_keys()
    for option in _options(group):
        config = yaml.safe_load((SWEEP_DIR / group / f"{option}.yaml").read_text())
        assert list(config["init_args"]) == keys.init_args[config["class_path"]], f"{group}/{option}.yaml"


def test_composed_sweep_config_covers_exactly_the_lightning_keys():
    from hydra import compose
    from omegaconf import OmegaConf

    from mnistctl.sweep.plan import hydra_session

    keys = load_keys()
    expected = sorted([*keys.leaves, *(f"{k}[]" for k in keys.lists)])
    with hydra_session():
        for criterion, optimizer in itertools.product(_options("criterion"), _options("optimizer")):
            cfg = compose("sweep", overrides=[f"criterion={criterion}", f"optimizer={optimizer}", "seed=7"])
            tree = OmegaConf.to_container(cfg, resolve=True)
            assert tree.pop("seed") == 7 and tree["seed_everything"] == 7
            found, classes = flatten(tree)
            assert sorted(found) == expected
            for class_path, args in classes.items():
                assert args == keys.init_args[class_path]
    assert "seed" in yaml.safe_load(DEFAULTS_FILE.read_text()) and KEYS_FILE.is_file()
