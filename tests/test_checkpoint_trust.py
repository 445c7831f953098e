"""A checkpoint is data from anywhere: it cannot make mnistctl import code, its bad values are blamed on it,
weights that do not fit are "not a readable checkpoint", and each file is read once per command.

    .venv/bin/python -m pytest tests/test_checkpoint_trust.py     # no training beyond the shared tiny fit
"""

from __future__ import annotations

import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from conftest import TINY, TINY_RUN, run_cli, run_main

# Imported, this file leaves a marker beside itself: proof that a checkpoint made mnistctl run it.
HELPERS = """
from pathlib import Path
Path(__file__).with_name("IMPORTED").write_text("helpers.py ran")
import torch
class Loss(torch.nn.CrossEntropyLoss):
    pass
"""


def crafted(tiny_run: Path, folder: Path, change) -> Path:
    """A copy of the tiny run's last.ckpt, changed by `change(ckpt)`, as folder/model.ckpt."""
    ckpt = torch.load(tiny_run / "checkpoints" / "last.ckpt", weights_only=True)
    change(ckpt)
    path = folder / "model.ckpt"
    torch.save(ckpt, path)
    return path


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def criterion(name: str):
    def change(ckpt: dict) -> None:
        ckpt["hyper_parameters"]["criterion"] = {"class_path": name, "init_args": {}}

    return change


def test_a_module_beside_the_checkpoint_is_not_imported(tiny_run, tmp_path):
    (tmp_path / "helpers.py").write_text(HELPERS)
    crafted(tiny_run, tmp_path, criterion("helpers.Loss"))
    # `python -m` puts the current folder first on sys.path: exactly how the attack reaches helpers.py.
    done = run_cli("predict", "--ckpt_path", "model.ckpt", *TINY[6:], cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    line = one_error_line(done.stderr)
    assert "helpers.Loss" in line and "hyper_parameters.criterion.class_path" in line
    assert not (tmp_path / "IMPORTED").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["helpers.py", "model.ckpt"]


@pytest.mark.parametrize("subcommand", ["fit", "validate", "test", "predict", "export"])
def test_an_installed_module_named_by_a_checkpoint_is_not_imported(subcommand, tiny_run, tmp_path, capsys):
    ckpt = crafted(tiny_run, tmp_path, criterion("this.Nope"))  # `import this` prints the Zen of Python
    assert "this" not in sys.modules
    assert run_main(subcommand, "--ckpt_path", str(ckpt)) == 2
    out, err = capsys.readouterr()
    assert "this.Nope" in one_error_line(err)
    assert "this" not in sys.modules and "Beautiful is better than ugly" not in out
    assert not (tmp_path / "runs").exists()


def a_big_layer(ckpt: dict) -> None:
    ckpt["hyper_parameters"]["criterion"] = {"class_path": "Bilinear", "init_args": {"in1_features": 4000,
        "in2_features": 4000, "out_features": 8}}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (criterion("Identity"), "'Identity'"),
        (a_big_layer, "'Bilinear'"),
        (criterion(5), "5"),
        (lambda c: c["hyper_parameters"].update(criterion="Identity"), "'Identity'"),
        (lambda c: c["hyper_parameters"].update(foo={"class_path": "torch.nn.MSELoss"}), "hyper_parameters.foo"),
    ],
    ids=["bare-name", "bare-name-big", "not-a-string", "bare-string", "unknown-key"],
)
def test_a_class_named_without_a_module_or_an_unknown_key_is_refused(change, named, tiny_run, tmp_path, capsys):
    """The bug: only strings with a dot were checked, and jsonargparse resolved a bare `class_path: Identity`
    (or `Bilinear`, built at 512 MB before the weights check) against the nn.Module classes already imported:
    predict ran with Identity as its "loss". A non-string class_path or a key the model does not take got
    jsonargparse's message, which blames the user's flags."""
    ckpt = crafted(tiny_run, tmp_path, change)
    for subcommand in ("predict", "test"):
        assert run_main(subcommand, "--ckpt_path", str(ckpt), *TINY[6:]) == 2
        line = one_error_line(capsys.readouterr().err)
        assert f"checkpoint {ckpt}" in line and named in line and "flag" not in line, line
    assert not (tmp_path / "runs").exists() and not (tmp_path / "predict").exists()


def test_allowed_classes_still_load(tiny_run, tmp_path):
    ckpt = crafted(tiny_run, tmp_path, criterion("torch.nn.NLLLoss"))
    assert run_main("validate", "--ckpt_path", str(ckpt), *TINY[6:]) == 0


def empty_weights(ckpt: dict) -> None:
    ckpt["state_dict"] = {}


def wrong_shape(ckpt: dict) -> None:
    ckpt["state_dict"]["net.features.0.weight"] = torch.zeros(3, 3)


@pytest.mark.parametrize("change", [empty_weights, wrong_shape], ids=["empty", "wrong-shape"])
@pytest.mark.parametrize("subcommand", ["test", "fit", "export"])
def test_weights_that_do_not_fit_are_not_a_readable_checkpoint(change, subcommand, tiny_run, tmp_path, capsys):
    ckpt = crafted(tiny_run, tmp_path, change)
    same_run = ["--data.batch_size", "64"] if subcommand == "fit" else []  # tiny_run's: the resume guard passes
    assert run_main(subcommand, "--ckpt_path", str(ckpt), *same_run) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"{ckpt} is not a readable checkpoint" in line
    assert "net.features.0.weight" in line or "no weights" in line
    assert not (tmp_path / "runs").exists() and not (tmp_path / "test").exists()


def test_a_tampered_value_is_blamed_on_the_checkpoint(tiny_run, tmp_path, capsys):
    ckpt = crafted(tiny_run, tmp_path, lambda c: c["hyper_parameters"].update(dropout_ratio=7))
    assert run_main("test", "--ckpt_path", str(ckpt)) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"checkpoint {ckpt}" in line and "dropout_ratio = 7" in line
    assert "--model.dropout_ratio" not in line  # the user typed no such flag


@pytest.fixture
def torch_loads(monkeypatch) -> Counter:
    """Every torch.load of a file, by resolved path: what reads a checkpoint from disk."""
    reads: Counter = Counter()
    real = torch.load

    def counting(f, *args, **kwargs):
        name = f if isinstance(f, str | Path) else getattr(f, "path", None) or getattr(f, "name", None)
        if name is not None:
            reads[Path(str(name)).resolve()] += 1
        return real(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counting)
    return reads


@pytest.mark.parametrize(
    ("args", "trains"),
    [(["test", "--ckpt_path", "best"], False), (["fit", "--ckpt_path", "last", *TINY_RUN], True)],
    ids=["test-best", "fit-resume"],
)
def test_each_checkpoint_file_is_read_once(args, trains, tiny_run, tmp_path, torch_loads):
    shutil.copytree(tiny_run.parent.parent, tmp_path / "runs")
    assert run_main(*args, *TINY[6:]) == 0
    assert torch_loads and max(torch_loads.values()) == 1, torch_loads
    if trains:  # the resumed checkpoint, then the best one this fit wrote, for its test
        assert (tmp_path / "runs" / "mnist" / "version_0" / "checkpoints" / "last.ckpt").resolve() in torch_loads


def test_the_hyper_parameters_a_checkpoint_may_set_are_the_models_arguments():
    # MODEL_HPARAMS copies MNISTClassifier's arguments: a new argument left out would refuse mnistctl's own
    # checkpoints; one kept after it is gone would let a checkpoint set what the model no longer takes.
    import inspect

    from mnistctl.cli.checkpoint_trust import MODEL_HPARAMS
    from mnistctl.model import MNISTClassifier

    assert list(MODEL_HPARAMS) == [p for p in inspect.signature(MNISTClassifier.__init__).parameters if p != "self"]
