"""Where validate/test/predict write: a skip list per CSV, --output_dir for a read-only run folder, a bad
--predictions.path refused before predicting, and the newest fit's best checkpoint when none is given.

    .venv/bin/python -m pytest tests/test_predict_outputs.py
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from file_state import fingerprint, read_only, run_obeying_permissions, writable
from PIL import Image

from conftest import TINY, read_csv, run_main
from mnistctl.cli.predictions import PredictionsCSV
from mnistctl.errors import UsageError


def digit_folder(folder: Path, broken: str) -> Path:
    """One drawn digit (a white bar on black: a '1') and one file that is not an image."""
    folder.mkdir(parents=True)
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[4:24, 12:16] = 255
    Image.fromarray(pixels).save(folder / "one.png")
    (folder / broken).write_bytes(b"not an image")
    return folder


def test_each_csv_gets_its_own_skip_list_and_a_users_skipped_txt_is_left_alone(tiny_run, tmp_path):
    ckpt = str(shutil.copy(tiny_run / "checkpoints" / "last.ckpt", tmp_path / "model.ckpt"))  # records: ./predict/
    results = tmp_path / "results"
    results.mkdir()
    (results / "skipped.txt").write_text("my own notes\n")
    for name in ("a", "b"):
        images = digit_folder(tmp_path / f"in_{name}", f"broken_{name}.png")
        args = [
            "--ckpt_path",
            str(ckpt),
            "--data.predict_dir",
            str(images),
            "--predictions.path",
            f"results/{name}.csv",
        ]
        assert run_main("predict", *args, *TINY[8:]) == 3
    for name in ("a", "b"):
        assert [r["id"] for r in read_csv(results / f"{name}.csv")] == [str(tmp_path / f"in_{name}" / "one.png")]
        (line,) = (results / f"{name}.skipped.txt").read_text().splitlines()
        assert line.startswith(str(tmp_path / f"in_{name}" / f"broken_{name}.png") + "\t")
    assert (results / "skipped.txt").read_text() == "my own notes\n"


FIX = "give another path, or add --predictions.overwrite true to replace it"


def test_a_users_file_at_predictions_path_is_refused_and_left_as_it_was(tiny_run, tmp_path, capsys):
    # The bug: predict wrote its CSV over whatever file --predictions.path named, e.g. a user's own data.
    shutil.copy(tiny_run / "checkpoints" / "last.ckpt", tmp_path / "model.ckpt")
    (tmp_path / "mine.csv").write_text("id,label\n0,7\n")  # a CSV, but not one predict wrote
    args = [
        "predict",
        "--ckpt_path",
        "model.ckpt",
        "--predictions.path",
        "mine.csv",
        "--trainer.limit_predict_batches",
        "1",
    ]
    assert run_main(*args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"mnistctl: error: --predictions.path mine.csv already exists and is not a predictions CSV; {FIX}"
    assert (tmp_path / "mine.csv").read_text() == "id,label\n0,7\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.csv", "model.ckpt"]  # refused before predicting
    assert run_main(*args, "--predictions.overwrite", "true") == 0  # asked for: replaced
    first = read_csv(tmp_path / "mine.csv")
    assert list(first[0])[:4] == ["id", "pred", "prob", "p0"]
    assert run_main(*args[:-2], "--trainer.limit_predict_batches", "2") == 0  # an earlier predict's CSV: replaced
    assert len(read_csv(tmp_path / "mine.csv")) == 2 * len(first)
    # Refused after earlier predicts left their outputs: nothing is said to be replaced, since nothing is.
    (tmp_path / "other.csv").write_text("mine\n")
    capsys.readouterr()
    assert run_main(*args[:4], "other.csv") == 2
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith(("replacing", "mnistctl:"))]
    assert said == [f"mnistctl: error: --predictions.path other.csv already exists and is not a predictions CSV; {FIX}"]


def test_a_users_file_that_appears_while_predicting_is_not_written_over(tmp_path):
    # Checked before predicting, and again when the CSV is written: predicting may take minutes.
    (tmp_path / "late.csv").write_text("my notes\n")
    trainer = SimpleNamespace(world_size=1, is_global_zero=True, datamodule=None)
    batch = {"ids": torch.arange(2), "probs": torch.full((2, 10), 0.1)}
    with pytest.raises(UsageError, match="late.csv already exists and is not a predictions CSV"):
        PredictionsCSV(str(tmp_path / "late.csv")).write_on_epoch_end(trainer, None, [batch], [])
    assert (tmp_path / "late.csv").read_text() == "my notes\n"
    PredictionsCSV(str(tmp_path / "late.csv"), overwrite=True).write_on_epoch_end(trainer, None, [batch], [])
    assert [row["id"] for row in read_csv(tmp_path / "late.csv")] == ["0", "1"]


def test_a_second_test_of_a_run_says_in_one_line_that_it_replaces_the_first(tiny_run, tmp_path, capsys, recwarn):
    # Before: Lightning's CSVLogger warned that "previous log files in this directory will be deleted", a
    # multi-line warning, and nothing of mnistctl's said which outputs were replaced.
    run = tmp_path / "runs" / "mnist" / "version_0"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("test", "validate", "predict"))
    args = ["test", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--trainer.limit_test_batches", "1"]
    assert run_main(*args) == 0
    assert "replacing" not in capsys.readouterr().err  # nothing there yet
    assert run_main(*args) == 0
    replacing = [line for line in capsys.readouterr().err.splitlines() if line.startswith("replacing")]
    assert replacing == [f"replacing the outputs of an earlier test in {Path('runs/mnist/version_0/test')}"]
    assert not [w for w in recwarn if "exists and is not empty" in str(w.message)]
    assert len(read_csv(run / "test" / "metrics.csv")) == 1  # the second test's row, not both


def test_predictions_path_that_is_a_folder_is_refused_before_predicting(tiny_run, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    shutil.copy(tiny_run / "checkpoints" / "last.ckpt", tmp_path / "model.ckpt")
    assert run_main("predict", "--ckpt_path", "model.ckpt", "--predictions.path", "out") == 2
    err = capsys.readouterr().err
    assert "--predictions.path out is a folder" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.ckpt", "out"]  # refused before predicting


@pytest.mark.slow  # over 9 s: the fast tier stays under 5 minutes
def test_a_read_only_run_folder_is_left_alone_and_outputs_go_elsewhere(tiny_run, tmp_path):
    shutil.copytree(tiny_run.parent.parent, tmp_path / "runs")
    run = tmp_path / "runs" / "mnist" / tiny_run.name
    ckpt = str(run / "checkpoints" / "last.ckpt")
    read_only(tmp_path / "runs")
    before = fingerprint(tmp_path / "runs")
    try:
        refused = run_obeying_permissions("test", "--ckpt_path", ckpt, *TINY[6:], cwd=tmp_path)
        assert refused.returncode == 2, refused.stderr
        assert "read-only" in refused.stderr and "--output_dir" in refused.stderr
        for subcommand in ("test", "predict"):
            out = f"elsewhere_{subcommand}"
            args = ["--ckpt_path", ckpt, "--output_dir", out, *TINY[6:]]
            done = run_obeying_permissions(subcommand, *args, cwd=tmp_path)
            assert done.returncode == 0, done.stderr
            assert '"status": "completed"' in (tmp_path / out / "run.json").read_text()
        assert (tmp_path / "elsewhere_test" / "metrics.csv").is_file()
        assert (tmp_path / "elsewhere_test" / "confusion_matrix.png").is_file()
        assert len(read_csv(tmp_path / "elsewhere_predict" / "predictions.csv")) == 10_000
    finally:
        writable(tmp_path / "runs")
    assert fingerprint(tmp_path / "runs") == before


def test_output_dir_holding_other_files_is_refused(tiny_run, tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "metrics.csv").write_text("my,numbers\n")
    args = ["--ckpt_path", str(tiny_run / "checkpoints" / "last.ckpt"), "--output_dir", "mine"]
    assert run_main("test", *args) == 2
    assert "already holds other files" in capsys.readouterr().err
    assert (tmp_path / "mine" / "metrics.csv").read_text() == "my,numbers\n"


def test_without_ckpt_path_evaluation_takes_the_best_checkpoint_of_the_newest_fit(tiny_run, tmp_path, capsys):
    shutil.copytree(tiny_run.parent.parent, tmp_path / "runs")
    run = tmp_path / "runs" / "mnist" / tiny_run.name
    (best,) = (run / "checkpoints").glob("epoch*.ckpt")
    assert run_main("predict", *TINY[8:]) == 0
    err = capsys.readouterr().err
    assert f"using {best.relative_to(tmp_path)}, the best checkpoint of the newest fit run" in err
    assert len(read_csv(run / "predictions.csv")) == 10_000
    assert run_main("test", *TINY[6:]) == 0
    assert "the best checkpoint of the newest fit run" in capsys.readouterr().err
    assert (run / "test" / "metrics.csv").is_file()


def test_a_copied_checkpoint_never_clears_a_users_folder_beside_it(tiny_run, tmp_path, capsys):
    shutil.copy(tiny_run / "checkpoints" / "last.ckpt", tmp_path / "model.ckpt")
    (tmp_path / "test").mkdir()  # the user's own folder, where test's outputs would go by default
    (tmp_path / "test" / "metrics.csv").write_text("my,numbers\n")
    assert run_main("test", "--ckpt_path", "model.ckpt") == 2
    assert "--output_dir" in capsys.readouterr().err
    assert (tmp_path / "test" / "metrics.csv").read_text() == "my,numbers\n"


@pytest.mark.parametrize("images", ["missing", "empty", "unusable"])
def test_a_refused_predict_leaves_the_earlier_predicts_record_as_it_was(tiny_run, tmp_path, capsys, images):
    """The bug: --data.predict_dir is checked in the DataModule's setup, and the run record's exception hook then
    replaced the earlier predict's <run>/predict/run.json with a `failed` one (beside its config.yaml)."""
    run = tmp_path / "runs" / "mnist" / "version_0"
    shutil.copytree(tiny_run, run)
    ckpt = str(run / "checkpoints" / "last.ckpt")
    assert run_main("predict", "--ckpt_path", ckpt, "--trainer.limit_predict_batches", "1", *TINY[8:]) == 0
    before = fingerprint(run)
    given = tmp_path / images
    if images == "empty":
        given.mkdir()
    elif images == "unusable":
        given.mkdir()
        (given / "broken.png").write_bytes(b"not an image")
    capsys.readouterr()
    args = ["--ckpt_path", ckpt, "--data.predict_dir", str(given), "--predictions.path", str(tmp_path / "p.csv")]
    assert run_main("predict", *args, *TINY[8:]) == 2
    assert "--data.predict_dir" in capsys.readouterr().err
    assert fingerprint(run) == before
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("target", ["checkpoint", "image", "image-in-folder"])
def test_predict_never_writes_over_what_it_reads_even_with_overwrite(tiny_run, tmp_path, capsys, target):
    """The bug: `--predictions.path model.ckpt --predictions.overwrite true` replaced the checkpoint predict had
    just read with its CSV (export refuses the same); the same for an image given with --data.predict_dir."""
    ckpt = shutil.copy(tiny_run / "checkpoints" / "last.ckpt", tmp_path / "model.ckpt")
    images = digit_folder(tmp_path / "digits", "broken.png")
    given = {"checkpoint": (ckpt, []), "image": (images / "one.png", ["--data.predict_dir", str(images / "one.png")])}
    given["image-in-folder"] = (images / "one.png", ["--data.predict_dir", str(images)])
    path, more = given[target]
    before = fingerprint(tmp_path)
    args = ["--ckpt_path", str(ckpt), *more, "--predictions.path", str(path), "--predictions.overwrite", "true"]
    assert run_main("predict", *args, "--output_dir", str(tmp_path / "out"), *TINY[8:]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"--predictions.path {path} is" in line and "what predict reads" in line, line
    assert fingerprint(tmp_path) == before


def test_a_refused_predict_leaves_none_of_the_nested_output_folders_it_made(tiny_run, tmp_path, capsys):
    """The bug: a refused evaluation removed only the innermost folder of a new --output_dir a/b/c."""
    ckpt = str(shutil.copy(tiny_run / "checkpoints" / "last.ckpt", tmp_path / "model.ckpt"))
    (tmp_path / "empty").mkdir()
    args = ["--ckpt_path", ckpt, "--data.predict_dir", str(tmp_path / "empty"), "--output_dir", "new/nested/out"]
    before = fingerprint(tmp_path)
    assert run_main("predict", *args, "--predictions.path", str(tmp_path / "p.csv"), *TINY[8:]) == 2
    assert "--data.predict_dir" in capsys.readouterr().err
    assert fingerprint(tmp_path) == before
