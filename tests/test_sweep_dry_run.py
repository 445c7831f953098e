"""`mnistctl sweep --dry-run` tells the truth (issues 12.2, 9.13): it composes every job with Hydra as the real
sweep will and checks the values of each job.yaml; the real sweep runs the same plan first, so the two agree
on every bad override the suite knows, and the range rules are the CLI's own.

    .venv/bin/python -m pytest tests/test_sweep_dry_run.py     # fast: nothing trains

A bad override that the plan missed would start a real sweep here (a few batches): the test then fails on
the exit code instead of hanging.
"""

from __future__ import annotations

import os

import pytest
import yaml

from conftest import SWEEP_TINY, run_main
from mnistctl.ranges import RULES, flag
from test_bad_input import BAD_SWEEP_OVERRIDES

pytestmark = pytest.mark.usefixtures("sweep_tree")
CORES = len(os.sched_getaffinity(0))


def error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("mnistctl: error:")]


@pytest.mark.parametrize(("override", "message"), BAD_SWEEP_OVERRIDES)
def test_dry_run_and_real_sweep_agree_on_every_bad_override(tmp_path, capsys, override, message):
    (tmp_path / "afile").write_text("a user's file\n")
    args = [*SWEEP_TINY, *override.split(" ")]
    dry = run_main("sweep", "--dry-run", *args), error_lines(capsys)
    real = run_main("sweep", *args), error_lines(capsys)
    assert dry == real
    assert dry[0] == 2 and len(dry[1]) == 1 and message in dry[1][0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def jobs_listed(out: str) -> list[tuple[str, list[str]]]:
    """(job line, its errors) from the dry run's listing."""
    jobs: list[tuple[str, list[str]]] = []
    for line in out.splitlines()[1:]:
        if line.strip().startswith("#"):
            jobs.append((line.strip().split(None, 1)[1], []))
        elif line.strip().startswith("error:") and jobs:
            jobs[-1][1].append(line.strip().removeprefix("error: "))
    return jobs


def test_each_job_is_composed_and_checked_on_its_own(capsys):
    # Only job 1's dict has a misspelt key and only job 2's dropout is out of range: Hydra and the value
    # checks see them when they compose each job, as the real sweep's sweeper and launcher do.
    assert run_main("sweep", "--dry-run", "trainer={max_epochs:2},{max_epoch:2}", "model.dropout_ratio=0.1,1.5") == 2
    jobs = jobs_listed(capsys.readouterr().out)
    assert [len(errors) for _, errors in jobs] == [0, 1, 1, 1]  # a job that does not compose has no values
    assert jobs[1][1] == ["model.dropout_ratio must be in [0, 1), got 1.5"]
    assert all("Key 'max_epoch' is not in struct" in errors[0] for _, errors in jobs[2:])


# Forms of Hydra 1.3's override grammar (docs: advanced/override_grammar/basic and extended): each one is
# accepted, and the job's config holds the value Hydra gives it.
GOOD_FORMS = [
    (["trainer.max_epochs=3"], 1, ("trainer", "max_epochs"), 3),
    (["++trainer.max_epochs=3"], 1, ("trainer", "max_epochs"), 3),
    (["trainer.max_epochs=null"], 1, ("trainer", "max_epochs"), None),
    (["trainer.gradient_clip_val=1e-3"], 1, ("trainer", "gradient_clip_val"), 0.001),
    (["trainer.deterministic=TRUE"], 1, ("trainer", "deterministic"), True),
    (["trainer.devices=[0]"], 1, ("trainer", "devices"), [0]),
    (["trainer.max_time={hours:1}"], 1, ("trainer", "max_time"), {"hours": 1}),
    (['trainer.default_root_dir="a,b"'], 1, ("trainer", "default_root_dir"), "a,b"),  # quoted: not a sweep
    (["trainer.default_root_dir='my dir'"], 1, ("trainer", "default_root_dir"), "my dir"),
    (["data.data_dir=mnist"], 1, ("data", "data_dir"), "<cwd>/mnist"),  # where the sweep ran
    (["data.batch_size=int(64.0)"], 1, ("data", "batch_size"), 64),
    (["model.dropout_ratio=float(0)"], 1, ("model", "dropout_ratio"), 0.0),
    (["data.val_size=${data.batch_size}"], 1, ("data", "val_size"), 128),
    (["trainer.max_epochs=${oc.env:MNISTCTL_TEST_EPOCHS,2}"], 1, ("trainer", "max_epochs"), "2"),  # a string
    (["~trainer.max_epochs=8"], 1, ("trainer", "max_epochs"), "deleted"),
    (["seed=range(1,3)"], 2, ("seed_everything",), 1),
    (["seed=sort(3,1,2)"], 3, ("seed_everything",), 1),
    (["seed=shuffle(1,2,3)"], 3, None, None),
    (["model.dropout_ratio=range(0,0.6,0.25)"], 3, ("model", "dropout_ratio"), 0.0),
    (["criterion=choice(ce,mse)"], 2, ("model", "criterion", "class_path"), "torch.nn.CrossEntropyLoss"),
    (["criterion=glob(*,exclude=ce*)"], 2, ("model", "criterion", "class_path"), "torch.nn.MSELoss"),
    (["optimizer=sgd", "optimizer.init_args.momentum=0.5"], 1, ("optimizer", "init_args", "momentum"), 0.5),
    (["model.criterion.init_args.label_smoothing=0.2"], 1, ("model", "criterion", "init_args", "label_smoothing"), 0.2),
    (["trainer.logger=false"], 1, ("trainer", "logger"), False),
    (["trainer.logger.0.init_args.name=x"], 1, ("trainer", "logger", 0, "init_args", "name"), "x"),
    (["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=1,2"], 2, ("num_threads",), max(1, CORES // 2)),
    (["~search"], 1, None, None),
    (["hydra.job.chdir=true"], 1, None, None),
    (["-m", "criterion=ce,mse"], 2, None, None),
    (["--multirun", "criterion=ce,mse"], 2, None, None),
]


@pytest.mark.parametrize(("overrides", "jobs", "path", "value"), GOOD_FORMS, ids=[" ".join(f[0]) for f in GOOD_FORMS])
def test_hydra_override_forms_are_accepted_and_compose_to_their_value(tmp_path, capsys, overrides, jobs, path, value):
    assert run_main("sweep", "--dry-run", *overrides) == 0, capsys.readouterr().err
    assert len(jobs_listed(capsys.readouterr().out)) == jobs
    assert run_main("sweep", "--cfg", "job", *overrides) == 0
    configs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert len(configs) == jobs
    if path is not None:
        node = configs[0]
        for part in path[:-1]:
            node = node[part]
        if isinstance(value, str) and value.startswith("<cwd>"):
            value = value.replace("<cwd>", str(tmp_path))
        assert node.get(path[-1], "deleted") == value
    assert list(tmp_path.iterdir()) == []  # neither command creates anything


# One bad value per range rule, as a sweep override and as a `mnistctl fit` flag.
BAD_VALUES = {
    "num_threads": "0",
    "trainer.max_epochs": "-2",
    "model.dropout_ratio": "1.5",
    "data.batch_size": "0",
    "data.eval_batch_size": "0",
    "data.val_size": "60000",
    "data.std": "-1.0",
    "data.augment_shift": "9",
    "optimizer.init_args.lr": "-0.1",
    "lr_scheduler.init_args.max_lr": "-1.0",
    "lr_scheduler.init_args.pct_start": "1.5",
}


def test_every_range_rule_is_checked_by_both_and_fit_says_the_same(tmp_path, capsys):
    assert sorted(BAD_VALUES) == sorted(RULES)
    for key, value in BAD_VALUES.items():
        assert run_main("sweep", "--dry-run", f"{key}={value}") == 2
        (swept,) = error_lines(capsys)
        assert swept.startswith(f"mnistctl: error: bad override: {key} must be ") and swept.endswith(f", got {value}")
        assert run_main("fit", flag(key), value) == 2
        (fitted,) = error_lines(capsys)
        # The same rule, the same words; the CLI names the flag.
        assert fitted == "mnistctl: error: " + flag(key) + swept.removeprefix(f"mnistctl: error: bad override: {key}")
    assert list(tmp_path.iterdir()) == []  # fit checked before building anything: no run folder


def test_constructors_guard_with_the_same_words():
    from mnistctl.data import MNISTDataModule
    from mnistctl.errors import UsageError
    from mnistctl.model import MNISTClassifier

    with pytest.raises(UsageError, match=r"^--model\.dropout_ratio must be in \[0, 1\), got 1\.5$"):
        MNISTClassifier(dropout_ratio=1.5)
    with pytest.raises(UsageError, match=r"^--data\.eval_batch_size must be at least 1, got 0$"):
        MNISTDataModule(eval_batch_size=0)
