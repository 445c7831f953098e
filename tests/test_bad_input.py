"""Bad input: one clear line on stderr, a non-zero exit, no traceback, and no run folder left behind."""

from __future__ import annotations

import gzip
import shutil

import pytest

from conftest import TINY, run_main
from mnistctl.mnist_files import bundled_dir


def assert_one_line_error(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def assert_no_run_folder(tmp_path):
    assert not list((tmp_path / "runs").glob("*/version_*")), "a failed command left a run folder"


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


def test_unreadable_config_file(tmp_path, capsys):
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
