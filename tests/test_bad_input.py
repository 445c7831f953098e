"""Every bad input a user can give, in one place: one clear line on stderr naming the bad value and the fix,
a non-zero exit, no traceback, and no run folder, CSV or sweep folder left behind as if complete.

    .venv/bin/python -m pytest tests/test_bad_input.py      # about a minute; no training

Bad inputs found only while a run is going (unreadable images among good ones, a crashing sweep job) are
tested with the runs: test_images.py (exit 3 and skipped.txt) and test_sweep.py (a failed job).
"""

from __future__ import annotations

import gzip
import json
import shutil

import pytest

from conftest import SWEEP_TINY, TINY, run_main
from mnistctl.data.mnist_files import bundled_dir


def assert_one_line_error(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def assert_no_run_folder(tmp_path):
    assert not (tmp_path / "runs").exists(), "a failed command left a run folder (or an empty runs/ tree)"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["fit", "--nope"], ["unrecognized arguments", "--nope"]),
        (["fit", "--trainer.max_epoch", "3"], ["--trainer.max_epoch"]),  # typo: no prefix matching
        (["fit", "--data.batch_size", "abc"], ["data.batch_size", "abc"]),
        (["fit", "--config", "missing.yaml"], ["missing.yaml", "does not exist"]),
        (["fit", "--model.criterion", "torch.nn.Nope"], ["torch.nn.Nope"]),
        (["fit", "--model.dropout_ratio", "1.5"], ["--model.dropout_ratio", "1.5"]),
        (["fit", "--data.batch_size", "-3"], ["--data.batch_size", "-3"]),
        (["test", "--ckpt_path", "nothere/x.ckpt"], ["nothere/x.ckpt", "does not exist"]),
        (["test", "--ckpt_path", "best"], ["--ckpt_path best", "no fit run"]),
        (["predict", "--ckpt_path", "last"], ["--ckpt_path last", "no fit run"]),
        (["test", "--ckpt_path", "last.ckpt"], ["last.ckpt", "not in the current folder"]),
        (["test"], ["needs --ckpt_path"]),
        (["fit", "--data.data_dir", "."], ["no MNIST files", "--data.download"]),
        # out of range: the right type, a meaningless value
        (["fit", "--optimizer.lr", "-0.1"], ["--optimizer.lr must be a positive finite number", "-0.1"]),
        (["fit", "--trainer.max_epochs", "0"], ["--trainer.max_epochs must be at least 1", "got 0"]),
        (["fit", "--data.val_size", "70000"], ["--data.val_size must be between 1 and 59999", "70000"]),
        (["fit", "--data.eval_batch_size", "0"], ["--data.eval_batch_size must be at least 1"]),
        (["fit", "--model.dropout_ratio", "-0.1"], ["--model.dropout_ratio must be in [0, 1)", "-0.1"]),
        (["fit", "--num_threads", "0"], ["--num_threads must be at least 1"]),
        (["fit", *TINY, "--lr_scheduler.pct_start", "1.5"], ["--lr_scheduler.pct_start must be between 0 and 1"]),
        (["fit", "--optimizer", "torch.optim.Nope"], ["optimizer", "torch.optim.Nope"]),
        (["fit", "--config", "."], ["config", "is not a file"]),
        (["predict", "--ckpt_path", "nothere.ckpt"], ["nothere.ckpt"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) and v and v[0] in ("fit", "test", "predict") else None,
)
def test_bad_input_exits_with_one_line(args, fragments, capsys, tmp_path):
    assert run_main(*args) == 2
    assert_one_line_error(capsys, *fragments)
    assert_no_run_folder(tmp_path)


def test_unknown_key_in_config_file(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("trainer:\n  max_epoch: 3\n")
    assert run_main("fit", "--config", "bad.yaml") == 2
    assert_one_line_error(capsys, "max_epoch")


def test_yaml_syntax_error_in_config_file(tmp_path, capsys):
    (tmp_path / "syntax.yaml").write_text("trainer: [unclosed\n")
    assert run_main("fit", "--config", "syntax.yaml") == 2
    assert_one_line_error(capsys, "syntax.yaml")


def test_file_that_is_not_a_checkpoint(tmp_path, capsys):
    (tmp_path / "notes.ckpt").write_text("not a checkpoint")
    assert run_main("test", "--ckpt_path", "notes.ckpt") == 2
    assert_one_line_error(capsys, "notes.ckpt", "not a readable checkpoint")


def test_corrupted_data_file_is_named_and_training_does_not_start(tmp_path, capsys):
    copy = tmp_path / "mnist"
    shutil.copytree(bundled_dir(), copy)
    labels = copy / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[100] ^= 0xFF  # flip one label byte: still a valid gzip, wrong content
    labels.write_bytes(gzip.compress(bytes(raw)))
    assert run_main("fit", *TINY, "--data.data_dir", str(copy)) == 2
    assert_one_line_error(capsys, "t10k-labels-idx1-ubyte", "SHA-256", "does not match")
    assert_no_run_folder(tmp_path)


def test_truncated_archive_is_reported(tmp_path, capsys, monkeypatch):
    copy = tmp_path / "mnist"
    shutil.copytree(bundled_dir(), copy)
    images = copy / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:5000])
    monkeypatch.setenv("MNISTCTL_CACHE_DIR", str(tmp_path / "cache"))
    assert run_main("fit", *TINY, "--data.data_dir", str(copy)) == 2
    assert_one_line_error(capsys, "train-images-idx3-ubyte")
    assert_no_run_folder(tmp_path)


def test_predict_dir_that_does_not_exist(tiny_run, tmp_path, capsys):
    shutil.copy(tiny_run / "checkpoints" / "last.ckpt", tmp_path / "model.ckpt")
    rc = run_main(
        "predict", "--ckpt_path", "model.ckpt", "--data.predict_dir", "nowhere", "--predictions.path", "p.csv"
    )
    assert rc == 2
    assert_one_line_error(capsys, "nowhere")
    assert not (tmp_path / "p.csv").exists()


# -- sweep: bad overrides and bad sweep folders; nothing trains and no sweep folder is made ------------


# Every bad sweep override the suite knows, with the message it gets. test_sweep_agreement.py runs each one
# both as `sweep --dry-run` and as a real sweep and asserts the same exit code and the same line.
BAD_SWEEP_OVERRIDES = [
    ("model.dropout_ratio=0.1,", "malformed override 'model.dropout_ratio=0.1,'"),
    ("model.dropout_ratio=range(1,", "malformed override 'model.dropout_ratio=range(1,'"),
    ("optimizer=rmsprop", "optimizer has no option rmsprop (options: adam, adamw, sgd)"),
    ("criterion=glob(zz*)", "criterion=glob(zz*) expands to no jobs"),
    ("seed=range(3,1)", "seed=range(3,1) expands to no jobs"),
    ("trainer.max_epoch=2", "unknown key trainer.max_epoch; did you mean trainer.max_epochs?"),
    ("hydra/launcher=ray", "hydra/launcher has no option ray (options: basic, joblib, submitit_local"),
    ("optimizer.init_args.momentum=0.5", "torch.optim.Adam has no argument momentum"),
    ("hydra.launcher.n_job=2", "Could not override 'hydra.launcher.n_job': Key 'n_job' not in 'BasicLauncherConf'"),
    ("data=3", "data is a section, not a value"),
    ("model.criterion.class_path=torch.nn.L1Loss", "pick one with criterion=..."),
    ("seed=1,2,1", "the same overrides as job #0 (seed=1"),
    # Hydra refuses these when it composes: the dry run composes every job as the real sweep does.
    ("+trainer.max_epochs=2", "Could not append to config. An item is already at 'trainer.max_epochs'"),
    ("trainer={max_epoch:2}", "Could not override 'trainer': Key 'max_epoch' is not in struct"),
    ("~trainer.max_time", "Could not delete from config. 'trainer.max_time' does not exist"),
    ("hydra.sweeper.params.model.dropout_ratio=interval(0.1,0.5)", "Sweeping over Hydra's configuration"),
    ("hydra.sweep.dir=a,b", "Sweeping over Hydra's configuration is not supported"),
    # Values: types from the LightningCLI parser, ranges from mnistctl/ranges.py.
    ("model.dropout_ratio=1.5", "model.dropout_ratio must be in [0, 1), got 1.5"),
    ("data.batch_size=-1", "data.batch_size must be at least 1, got -1"),
    ("trainer.max_epochs=abc", "trainer.max_epochs must be an integer or null, got 'abc'"),
    ("trainer.max_epochs=0", "trainer.max_epochs must be at least 1 (or -1 for no limit), got 0"),
    (
        "optimizer.init_args.lr=nan",
        "optimizer.init_args.lr must be a positive finite number (at most 3.4e38, a float32), got nan",
    ),  # noqa: E501
    ("data.data_dir=123", "data.data_dir must be a string or null, got 123"),
    ("data.batch_size=64.0", "data.batch_size must be an integer, got 64.0"),
    ("model.dropout_ratio=0.1,1.0", "model.dropout_ratio must be in [0, 1), got 1.0"),
    ("hydra/sweeper=optuna model.dropout_ratio=interval(0.1,1.5)", "model.dropout_ratio must be in [0, 1), got 1.5"),
    ("hydra.sweeper.params={model.dropout_ratio:[0.1]}", "must be a string of sweep values"),
    ("hydra/launcher=joblib hydra.launcher.n_jobs=0", "hydra.launcher.n_jobs=0 runs no job at a time"),
    # A sweep job is one fit: submitit would run the job function once per task, every fit in one job folder.
    ("hydra/launcher=submitit_slurm hydra.launcher.tasks_per_node=2", "would start 2 fits of every job"),
    ("hydra/launcher=submitit_local hydra.launcher.nodes=2", "hydra.launcher.nodes=2 would start 2 fits"),
    ("search=lr_dropout hydra.sweeper.n_trials=0", "hydra.sweeper.n_trials=0 runs no trial"),
    # The sweeper's and the launcher's own settings, which Optuna and joblib check only once they run.
    ("search=lr_dropout pruner.n_startup_trials=-3", "Number of startup trials cannot be negative but got -3"),
    ("search=lr_dropout hydra.sweeper.direction=sideways", "hydra.sweeper.direction=sideways is not one direction"),
    ("search=lr_dropout hydra.sweeper.direction=[maximize,minimize]", "is not one direction; give maximize"),
    (
        "search=lr_dropout hydra.sweeper.storage=bogus://x",
        "hydra.sweeper.storage=bogus://x cannot be opened (Can't load plugin: sqlalchemy.dialects:bogus)",
    ),
    ("search=lr_dropout hydra.sweeper.storage=sqlite:///nodir/x.db", "cannot be opened (there is no folder"),
    ("hydra/launcher=joblib hydra.launcher.prefer=xyz", "hydra.launcher.prefer=xyz is not a valid backend hint"),
    ("hydra/launcher=joblib hydra.launcher.batch_size=0", "hydra.launcher.batch_size must be 'auto' or a positive"),
    ("hydra/launcher=joblib hydra.launcher.pre_dispatch=abc", "pre_dispatch=abc is not a number or an expression"),
    ("hydra/launcher=joblib hydra.launcher.pre_dispatch=0", "hydra.launcher.pre_dispatch=0 dispatches no job"),
    ("hydra/launcher=joblib hydra.launcher.max_nbytes=zz", "hydra.launcher.max_nbytes=zz: Invalid literal for size"),
    # Hydra appends each job's job.log in sweep.dir/subdir: never outside the sweep folder (an absolute
    # subdir: test_sweep_folder.py, inside tmp_path).
    ("hydra.sweep.subdir=../victim", "hydra.sweep.subdir=../victim puts the job's folder outside the sweep folder"),
    # The sweep folder: new or empty (a file, or a folder with a user's files, is refused).
    ("hydra.sweep.dir=afile", "hydra.sweep.dir="),
    ("++hydra.sweep.dir=afile/sub", "which is a file"),
]


@pytest.mark.parametrize(("override", "message"), BAD_SWEEP_OVERRIDES)
def test_bad_sweep_override_is_one_line_exit_2_and_nothing_runs(sweep_tree, tmp_path, capsys, override, message):
    (tmp_path / "afile").write_text("a user's file\n")
    assert run_main("sweep", *SWEEP_TINY, *override.split(" ")) == 2  # last: it wins over the budget
    err = capsys.readouterr().err
    assert err.startswith("mnistctl: error: ") and err.count("\n") == 1, err
    assert message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # no sweep folder, nothing else
    assert (tmp_path / "afile").read_text() == "a user's file\n"


def test_summary_and_resume_need_a_sweep_folder(sweep_tree, tmp_path, capsys):
    assert run_main("sweep", "--summary", "nowhere") == 2
    assert "sweep folder nowhere does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert run_main("sweep", "--summary", "empty") == 2
    assert "holds no sweep jobs" in capsys.readouterr().err
    assert run_main("sweep", "--resume", "empty") == 2
    assert "has no readable sweep.json" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"name": "train", "status": "done"}, "no job number"),
        ({"job": 0}, "no list of overrides"),
        ({"job": 0, "overrides": ["lr=0.1"]}, "no status"),
        ({"job": 0, "overrides": [], "status": "done"}, "status 'done' is none of running, completed"),
    ],
)
def test_summary_and_status_of_a_folder_whose_job_json_is_another_tools(sweep_tree, tmp_path, capsys, record, problem):
    """The bug: any */job.json made a folder a sweep and its keys were trusted: --summary crashed with
    KeyError: 'job' (or 'status'), --status printed a table of job "None" with exit 0."""
    other = tmp_path / "other"
    for job in ("0", "1"):
        (other / job).mkdir(parents=True)
        (other / job / "job.json").write_text(json.dumps(record))
    before = {p: p.read_bytes() for p in other.rglob("*") if p.is_file()}
    for flag in ("--summary", "--status"):
        assert run_main("sweep", flag, "other") == 2
        line = assert_one_line_error(capsys, f"{other / '0' / 'job.json'} is not a mnistctl sweep job record")
        assert f"({problem}" in line and f"{other} is not a sweep folder" in line
        assert {p: p.read_bytes() for p in other.rglob("*") if p.is_file()} == before  # nothing written


@pytest.mark.parametrize("saved", ["[1, 2]", '{"overrides": [1]}', '{"overrides": "criterion=ce"}', '"text"'])
def test_resume_of_a_sweep_json_that_is_not_a_record(sweep_tree, tmp_path, capsys, saved):
    """The bug: a sweep.json holding a JSON list or non-string overrides gave TypeError/AttributeError, exit 1."""
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "sweep.json").write_text(saved)
    assert run_main("sweep", "--resume", "s") == 2
    assert_one_line_error(capsys, f"{tmp_path / 's'} has no readable sweep.json")
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["sweep.json"]


def test_resume_of_a_folder_from_another_tool_changes_nothing(sweep_tree, tmp_path, capsys):
    # A plain Hydra multirun folder: it has jobs, but not the sweep.json that mnistctl writes.
    other = tmp_path / "multirun"
    (other / "0" / ".hydra").mkdir(parents=True)
    (other / "multirun.yaml").write_text("hydra:\n  mode: MULTIRUN\n")
    (other / "0" / ".hydra" / "config.yaml").write_text("lr: 0.1\n")
    before = sorted(p.relative_to(other) for p in other.rglob("*"))
    assert run_main("sweep", "--resume", str(other)) == 2
    assert_one_line_error(capsys, str(other), "no readable sweep.json", "made by 'mnistctl sweep'")
    assert sorted(p.relative_to(other) for p in other.rglob("*")) == before


def test_predict_dir_of_non_image_files_exits_2_with_one_line(tiny_run, tmp_path, capsys):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.bmp").write_bytes(b"BM not really")
    shutil.copy(tiny_run / "checkpoints" / "last.ckpt", tmp_path / "model.ckpt")
    rc = run_main(
        "predict",
        "--ckpt_path",
        str(tmp_path / "model.ckpt"),
        "--data.predict_dir",
        str(tmp_path / "bad"),
        "--predictions.path",
        str(tmp_path / "p.csv"),
    )
    assert rc == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mnistctl: error")]
    assert len(errors) == 1 and "none of its 1 image files is usable" in errors[0] and "a.bmp" in errors[0]
    assert not (tmp_path / "p.csv").exists()
    assert not (tmp_path / "predict").exists()  # refused before it started: no record, no folder of its own
