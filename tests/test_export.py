"""`mnistctl export`: the exported file, loaded by plain torch or onnxruntime, predicts what `predict` does."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import read_csv, run_main

HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime"))


@pytest.fixture(scope="module")
def exported_run(tiny_run, tmp_path_factory) -> tuple[Path, Path, np.ndarray]:
    """A copy of the tiny run, its best checkpoint, and predict's CSV for the test split as (10000, 10)."""
    root = tmp_path_factory.mktemp("export")
    shutil.copytree(tiny_run.parent.parent.parent / "runs", root / "runs")
    (run,) = (root / "runs" / "mnist").iterdir()
    best = next((run / "checkpoints").glob("epoch*.ckpt"))
    csv = root / "predictions.csv"
    with contextlib.redirect_stdout(io.StringIO()):
        args = ["--ckpt_path", str(best), "--predictions.path", str(csv), "--trainer.enable_progress_bar", "false"]
        assert run_main("predict", *args) == 0
    rows = read_csv(csv)
    assert [int(r["id"]) for r in rows] == list(range(10_000))
    probs = np.array([[float(r[f"p{k}"]) for k in range(10)] for r in rows], dtype=np.float32)
    return run, best, probs


def raw_test_images() -> torch.Tensor:
    """The 10,000 MNIST test images as the exported model takes them: (N, 1, 28, 28) float in [0, 1]."""
    from torchvision.datasets import MNIST

    from mnistctl.data.mnist_files import prepare_root

    return MNIST(str(prepare_root(None, False)), train=False).data.unsqueeze(1).float() / 255.0


def run_exported(path: Path, fmt: str, images: torch.Tensor) -> np.ndarray:
    # What a user writes: the README's three lines for each format.
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path))
        return session.run(None, {"images": images.numpy()})[0]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated in torch 2.14
        model = torch.jit.load(str(path)) if fmt == "torchscript" else torch.export.load(str(path)).module()
        return model(images).numpy()


@pytest.mark.parametrize(
    "fmt",
    [
        "torchscript",
        "pt2",
        pytest.param("onnx", marks=pytest.mark.skipif(not HAVE_ONNX, reason="pip install 'mnistctl[onnx]'")),
    ],
)
def test_exported_model_predicts_like_predict(fmt, exported_run, tmp_path, capsys):
    run, best, expected = exported_run
    if fmt == "torchscript":  # the default: <run>/model.pt, for --ckpt_path best under --runs_dir
        assert run_main("export", "--ckpt_path", "best", "--runs_dir", str(run.parent.parent)) == 0
        path = run / "model.pt"
    else:
        path = tmp_path / f"served.{fmt}"
        assert run_main("export", "--ckpt_path", str(best), "--format", fmt, "--output", str(path)) == 0
    assert capsys.readouterr().out.startswith(f"wrote {path}")
    assert [p.name for p in path.parent.glob(".*partial*")] == []  # written atomically, nothing left over
    probs = run_exported(path, fmt, raw_test_images())
    assert probs.shape == (10_000, 10)
    assert (probs.argmax(1) == expected.argmax(1)).all()
    assert np.abs(probs - expected).max() < 1e-4


def test_export_errors_are_one_line(exported_run, tmp_path, capsys):
    run, best, _ = exported_run
    cases = [
        (["--ckpt_path", str(tmp_path / "missing.ckpt")], "does not exist"),
        (["--ckpt_path", str(best), "--format", "tf"], "invalid choice: 'tf'"),
        (["--ckpt_path", str(best), "--output", str(tmp_path)], "is a folder; give a file name"),
        ([], "required: --ckpt_path"),
    ]
    for args, message in cases:
        assert run_main("export", *args) == 2
        err = capsys.readouterr().err
        assert err.startswith("mnistctl: error: ") and message in err and len(err.strip().splitlines()) == 1
