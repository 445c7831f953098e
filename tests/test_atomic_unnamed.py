"""atomic_write's unnamed files: never over an existing file when told so, and the fallbacks for systems
that cannot name an unnamed file (no /proc) or make one (no O_TMPFILE, e.g. NFS)."""

from __future__ import annotations

import pytest

from mnistctl import atomic


def test_replace_false_never_writes_over_a_file(tmp_path):
    (tmp_path / "model.pt").write_text("the user's\n")
    with pytest.raises(FileExistsError), atomic.atomic_write(tmp_path / "model.pt", replace=False) as f:
        f.write("ours")
    assert (tmp_path / "model.pt").read_text() == "the user's\n"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def _no_proc(fd, path):
    raise OSError(2, "No such file or directory", "/proc/self/fd")


@pytest.mark.parametrize("fallback", ["copy", "named"])
def test_fallbacks_write_the_same_file_and_leave_nothing_else(fallback, tmp_path, monkeypatch):
    if fallback == "copy":  # linking the unnamed file fails: its content is copied to a named file
        monkeypatch.setattr(atomic, "_link", _no_proc)
    else:  # the file system has no unnamed files: a hidden named one is written and renamed
        monkeypatch.setattr(atomic, "_unnamed_file", lambda folder: None)
    (tmp_path / "a.bin").write_bytes(b"old")
    with atomic.atomic_write(tmp_path / "a.bin", "wb") as f:
        f.write(b"\x01" * 3_000_000)
    with atomic.atomic_write(tmp_path / "b.txt", replace=False) as f:
        f.write("new")
    with pytest.raises(FileExistsError), atomic.atomic_write(tmp_path / "b.txt", replace=False) as f:
        f.write("again")
    assert (tmp_path / "a.bin").read_bytes() == b"\x01" * 3_000_000
    assert (tmp_path / "b.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.txt"]
