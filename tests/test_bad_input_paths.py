"""Bad paths and numbers that used to end in a raw OS or numpy error: one line each, with the fix, exit 2,
and nothing created outside the runs folder.

    .venv/bin/python -m pytest tests/test_bad_input_paths.py     # no training
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from file_state import read_only, run_obeying_permissions, writable

from conftest import TINY, run_cli, run_main


def one_error_line(err: str, *fragments: str) -> str:
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def logger_named(folder: Path, name: str) -> str:
    config = folder / "logger.yaml"
    config.write_text(
        "trainer:\n  logger:\n    - class_path: pytorch_lightning.loggers.CSVLogger\n"
        f"      init_args:\n        save_dir: runs\n        name: '{name}'\n"
    )
    return str(config)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--seed_everything", "-1"], ["--seed_everything must be between 0 and 4294967295 (or true: random)", "-1"]),
        (["--optimizer.lr", "1e300"], ["--optimizer.lr must be a positive finite number (at most 3.4e38", "1e+300"]),
        (["--optimizer.lr", "nan"], ["--optimizer.lr must be a positive finite number", "nan"]),
        (["--optimizer.lr=inf"], ["--optimizer.lr must be a positive finite number", "inf"]),
    ],
    ids=["seed", "lr-huge", "lr-nan", "lr-inf"],
)
def test_numbers_out_of_range(args, fragments, tmp_path, capsys):
    assert run_main("fit", *TINY, *args) == 2
    one_error_line(capsys.readouterr().err, *fragments)
    assert list(tmp_path.iterdir()) == []


def test_runs_is_a_file(tmp_path, capsys):
    (tmp_path / "runs").write_text("my notes\n")
    assert run_main("fit", *TINY) == 2
    one_error_line(capsys.readouterr().err, f"{tmp_path / 'runs'} is a file", "save_dir")
    assert (tmp_path / "runs").read_text() == "my notes\n"


@pytest.mark.parametrize("name", ["../../escape", "ABSOLUTE", "a" * 300], ids=["dotdot", "absolute", "300-chars"])
def test_logger_name_must_be_one_folder_under_runs(name, tmp_path, capsys):
    outside = tmp_path.parent / f"{tmp_path.name}-escape"  # where an absolute name would write
    name = str(outside) if name == "ABSOLUTE" else name
    (tmp_path / "inner").mkdir()
    assert run_main("fit", *TINY, "--config", logger_named(tmp_path, name)) == 2
    one_error_line(capsys.readouterr().err, "logger name")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inner", "logger.yaml"]
    assert not outside.exists() and not (tmp_path / "runs" / ".." / ".." / "escape").exists()


def test_cache_folder_that_is_a_file_names_the_variable(tmp_path, capsys, monkeypatch):
    (tmp_path / "cache").write_text("not a folder\n")
    monkeypatch.setenv("MNISTCTL_CACHE_DIR", str(tmp_path / "cache"))
    assert run_main("fit", *TINY) == 2
    one_error_line(capsys.readouterr().err, "MNISTCTL_CACHE_DIR", str(tmp_path / "cache"))
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow  # over 8 s: the fast tier stays under 5 minutes
def test_unwritable_cache_folder_and_read_only_working_folder(tmp_path, monkeypatch):
    for folder in ("cache", "work", "writable_cache"):
        (tmp_path / folder).mkdir()
    read_only(tmp_path)
    writable(tmp_path / "writable_cache")
    try:
        monkeypatch.setenv("MNISTCTL_CACHE_DIR", str(tmp_path / "cache"))
        done = run_obeying_permissions("fit", *TINY, cwd=tmp_path / "work")
        assert done.returncode == 2, done.stderr
        one_error_line(done.stderr, "MNISTCTL_CACHE_DIR", "Permission denied")
        monkeypatch.setenv("MNISTCTL_CACHE_DIR", str(tmp_path / "writable_cache"))  # now only the work folder
        done = run_obeying_permissions("fit", *TINY, cwd=tmp_path / "work")
        assert done.returncode == 2, done.stderr
        one_error_line(done.stderr, "cannot create a run folder", "writable folder")
    finally:
        writable(tmp_path)
    assert list((tmp_path / "work").iterdir()) == [] and list((tmp_path / "cache").iterdir()) == []


@pytest.mark.parametrize("subcommand", ["test", "export"])
def test_a_fifo_given_as_the_checkpoint_is_refused_not_waited_on(subcommand, tmp_path):
    """The bug: torch.load opened a FIFO given as --ckpt_path and waited for a writer for ever (rc 124 under
    `timeout`, no output)."""
    os.mkfifo(tmp_path / "f.ckpt")
    done = run_cli(subcommand, "--ckpt_path", "f.ckpt", cwd=tmp_path, timeout=120)
    assert done.returncode == 2
    one_error_line(done.stderr, "checkpoint f.ckpt is a FIFO", "give a .ckpt file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.ckpt"]
