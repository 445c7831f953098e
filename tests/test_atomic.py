"""atomic_write: the target holds the old complete content or the new one, with normal permissions."""

import os

import pytest

from mnistctl.atomic import atomic_write


def test_atomic_write_replaces_the_file_with_the_umask_permissions(tmp_path):
    target = tmp_path / "summary.csv"
    target.write_text("old\n")
    umask = os.umask(0o022)
    try:
        with atomic_write(target) as f:
            f.write("new\n")
    finally:
        os.umask(umask)
    assert target.read_text() == "new\n"
    assert target.stat().st_mode & 0o777 == 0o644  # not mkstemp's private 0600
    assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "predictions.csv"
    target.write_text("complete\n")
    with pytest.raises(RuntimeError, match="boom"), atomic_write(target) as f:
        f.write("half")
        raise RuntimeError("boom")
    assert target.read_text() == "complete\n"
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.csv"]


def test_a_file_in_the_way_of_the_folder_is_not_a_taken_name(tmp_path):
    """The bug: a file where the target's folder goes made atomic_write raise FileExistsError (from
    mkdir(exist_ok=True)), which callers of replace=False read as "the target appeared meanwhile"."""
    (tmp_path / "afile").write_text("mine\n")
    for target in (tmp_path / "afile" / "x.pt", tmp_path / "afile" / "sub" / "x.pt"):
        with pytest.raises(NotADirectoryError) as caught, atomic_write(target, replace=False) as f:
            f.write("never\n")
        assert caught.value.filename == str(tmp_path / "afile")
    assert [p.name for p in tmp_path.iterdir()] == ["afile"] and (tmp_path / "afile").read_text() == "mine\n"
