"""What Hydra users type (issue 12.3-12.5): the Optuna form `sweep --help` recommends works, the sweeper's params
written inline sweep like plain overrides, `-m`/`--multirun` are accepted, `--cfg` prints the configs without
running and `--info` says where they come from.

    .venv/bin/python -m pytest tests/test_sweep_hydra_habits.py     # fast: nothing trains
"""

from __future__ import annotations

import pytest
import yaml

from conftest import SWEEP_TINY, run_cli, run_main

pytestmark = pytest.mark.usefixtures("sweep_tree")
OPTUNA_FORM = ["hydra/sweeper=optuna", "model.dropout_ratio=interval(0.1,0.5)"]


def test_help_recommends_the_optuna_form_that_works(capsys):
    done = run_cli("sweep", "--help")
    assert done.returncode == 0
    assert (
        "hydra/sweeper=optuna   with search dimensions as overrides, e.g. 'model.dropout_ratio=interval" in done.stdout
    )
    assert "hydra.sweeper.params.KEY=interval" not in done.stdout  # Hydra forbids sweeping hydra.* keys
    assert run_main("sweep", "--dry-run", *OPTUNA_FORM, "hydra.sweeper.n_trials=3", *SWEEP_TINY) == 0
    out = capsys.readouterr().out
    assert "optuna sweeper, 3 trials" in out and "search model.dropout_ratio: interval(0.1,0.5)" in out
    # The form the help used to recommend is refused by the dry run, as the real sweep refuses it.
    assert run_main("sweep", "--dry-run", "hydra/sweeper=optuna", "hydra.sweeper.params.x=interval(0.1,0.5)") == 2
    assert "Sweeping over Hydra's configuration is not supported" in capsys.readouterr().err


def listed(out: str) -> list[str]:
    return [line.split(None, 1)[1] for line in out.splitlines() if line.strip().startswith("#")]


def test_inline_sweeper_params_sweep_like_plain_overrides(tmp_path, capsys):
    assert run_main("sweep", "--dry-run", 'hydra.sweeper.params={model.dropout_ratio:"0.1,0.3",seed:"1,2"}') == 0
    assert listed(capsys.readouterr().out) == [
        "model.dropout_ratio=0.1 seed=1",
        "model.dropout_ratio=0.1 seed=2",
        "model.dropout_ratio=0.3 seed=1",
        "model.dropout_ratio=0.3 seed=2",
    ]
    # As in Hydra's sweepers: the params come first, and the command line wins on the same key.
    assert run_main("sweep", "--dry-run", "seed=7", 'hydra.sweeper.params={seed:"1,2",criterion:"ce,mse"}') == 0
    assert listed(capsys.readouterr().out) == ["seed=7 criterion=ce", "seed=7 criterion=mse"]
    assert run_main("sweep", "--cfg", "job", 'hydra.sweeper.params={model.dropout_ratio:"0.1,0.3"}') == 0
    configs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert [c["model"]["dropout_ratio"] for c in configs] == [0.1, 0.3]
    # With Optuna the params are its search space.
    assert run_main("sweep", "--dry-run", "hydra/sweeper=optuna", "hydra.sweeper.params={seed:'range(1,4)'}") == 0
    assert "search seed: range(1,4)" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("hydra.sweeper.params=3", "hydra.sweeper.params takes a mapping of KEY: VALUES"),
        ("hydra.sweeper.params={seed:[1,2]}", "the value of seed must be a string of sweep values"),
        ("hydra.sweeper.params={model.dropout_ratio:'0.1,1.5'}", "model.dropout_ratio must be in [0, 1), got 1.5"),
        ("hydra.sweeper.params={nope:'1,2'}", "unknown key nope"),
    ],
)
def test_bad_inline_params_are_one_line_exit_2(capsys, override, message):
    assert run_main("sweep", "--dry-run", override) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_dash_m_and_multirun_are_accepted_and_change_nothing(capsys):
    assert run_main("sweep", "--dry-run", "criterion=ce,mse") == 0
    plain = capsys.readouterr().out
    for flag in ("-m", "--multirun"):
        assert run_main("sweep", flag, "--dry-run", "criterion=ce,mse") == 0
        assert capsys.readouterr().out == plain


def test_cfg_prints_each_job_yaml_and_creates_nothing(tmp_path, capsys):
    assert run_main("sweep", "--cfg", "job", "criterion=ce,mse", "hydra.sweep.dir=s", *SWEEP_TINY) == 0
    out = capsys.readouterr().out
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert [d["model"]["criterion"]["class_path"] for d in docs] == ["torch.nn.CrossEntropyLoss", "torch.nn.MSELoss"]
    assert all(d["trainer"]["max_epochs"] == 1 and "seed" not in d and "hydra" not in d for d in docs)
    assert f"# mnistctl sweep job 1 of {tmp_path / 's'}: criterion=mse" in out
    assert f"# Re-run by hand: cd {tmp_path / 's' / '1'} && mnistctl fit --config job.yaml" in out
    assert run_main("sweep", "--cfg", "hydra", "hydra/launcher=joblib") == 0
    hydra = yaml.safe_load(capsys.readouterr().out)
    assert hydra["launcher"]["_target_"].endswith("JoblibLauncher") and hydra["sweep"]["subdir"] == "${hydra.job.num}"
    assert run_main("sweep", "--cfg", "job", "model.dropout_ratio=1.5") == 2  # a bad job: said, and exit 2
    assert "model.dropout_ratio must be in [0, 1)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_info_says_where_configs_and_plugins_come_from(sweep_tree, capsys):
    assert run_main("sweep", "--info") == 0
    out = capsys.readouterr().out
    assert f"generated tree Hydra composes from: {sweep_tree}" in out
    assert f"main       file://{sweep_tree}" in out  # Hydra's search path
    assert "packaged sweep configs: " in out and "torch 2." in out
    assert "criterion       ce, ce_smooth, mse, nll" in out
    for plugin in ("JoblibLauncher", "LocalLauncher", "SlurmLauncher", "BasicSweeper", "OptunaSweeper"):
        assert plugin in out
    assert run_main("sweep", "--info", "plugins") == 0  # Hydra's `--info plugins`, as plugin docs suggest
    plugins = capsys.readouterr().out
    assert plugins.startswith("plugins:\n") and "OptunaSweeper" in plugins and "search path" not in plugins
