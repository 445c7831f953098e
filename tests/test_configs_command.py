"""`mnistctl configs`: list, print and copy the packaged configs (in-process; the installed case is in
test_packaging.py)."""

from __future__ import annotations

import pytest
from file_state import fingerprint, read_only, run_obeying_permissions, writable

from conftest import REPO, run_main
from mnistctl.config_files import packaged_configs_dir

REPO_CONFIGS = sorted(str(p.relative_to(REPO / "configs")) for p in (REPO / "configs").rglob("*.yaml"))


def test_lists_every_packaged_config(capsys):
    assert run_main("configs") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"packaged configs in {packaged_configs_dir()}:"
    assert [line.strip() for line in lines[1:-1]] == REPO_CONFIGS
    assert "base.yaml" in REPO_CONFIGS and "sweep/sweep.yaml" in REPO_CONFIGS


def test_path_and_print(capsys):
    assert run_main("configs", "--path") == 0
    assert capsys.readouterr().out == f"{packaged_configs_dir()}\n"
    assert run_main("configs", "base.yaml") == 0
    assert capsys.readouterr().out == (REPO / "configs" / "base.yaml").read_text()


def test_copy_refuses_to_overwrite_without_force(tmp_path, capsys):
    assert run_main("configs", "--copy", "mine") == 0
    copied = sorted(str(p.relative_to(tmp_path / "mine")) for p in (tmp_path / "mine").rglob("*.yaml"))
    assert copied == REPO_CONFIGS
    (tmp_path / "mine" / "base.yaml").write_text("edited\n")
    capsys.readouterr()
    assert run_main("configs", "--copy", "mine") == 2
    assert "already there" in capsys.readouterr().err
    assert (tmp_path / "mine" / "base.yaml").read_text() == "edited\n"
    assert run_main("configs", "--copy", "mine", "--force") == 0
    assert (tmp_path / "mine" / "base.yaml").read_text() == (REPO / "configs" / "base.yaml").read_text()


def test_unknown_name_lists_the_real_ones(capsys):
    assert run_main("configs", "nope.yaml") == 2
    err = capsys.readouterr().err
    assert err.startswith("mnistctl: error: no packaged config named 'nope.yaml'") and "base.yaml" in err


def one_error_line(err: str) -> str:
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("mnistctl: error: --copy "), err
    return err.strip()


def test_copy_checks_every_path_before_writing_anything(tmp_path, capsys):
    """The bug: a file where the folder sweep/ goes was found only after base.yaml, fast.yaml and gpu.yaml had
    been copied (a NotADirectoryError traceback line, exit 1, three files left); DEST a file was a
    FileExistsError line, exit 1."""
    (tmp_path / "afile").write_text("mine\n")
    (tmp_path / "d1").mkdir()
    (tmp_path / "d1" / "sweep").write_text("mine too\n")
    before = fingerprint(tmp_path)
    cases = [
        (["afile"], "--copy afile is a file, not a folder"),
        (["afile/sub"], f"--copy afile/sub is inside {tmp_path / 'afile'}, which is a file, not a folder"),
        (["d1"], "d1/sweep is a file where a folder of configs goes"),
        (["d1", "--force"], "d1/sweep is a file where a folder of configs goes"),
    ]
    for args, message in cases:
        assert run_main("configs", "--copy", *args) == 2
        assert message in one_error_line(capsys.readouterr().err)
    assert fingerprint(tmp_path) == before


def test_copy_never_writes_through_a_symlink(tmp_path, capsys):
    """The bug: a dangling link d3/base.yaml -> ../OUTSIDE.yaml was not a clash (.exists() follows links),
    and the copy went through it, creating OUTSIDE.yaml outside DEST; with --force a link to a file of
    yours elsewhere had that file overwritten."""
    (tmp_path / "d3").mkdir()
    (tmp_path / "d3" / "base.yaml").symlink_to(tmp_path / "OUTSIDE.yaml")  # dangling
    (tmp_path / "theirs.yaml").write_text("someone else's\n")
    (tmp_path / "d4").mkdir()
    (tmp_path / "d4" / "fast.yaml").symlink_to(tmp_path / "theirs.yaml")
    (tmp_path / "d5").mkdir()
    (tmp_path / "d5" / "sweep").symlink_to(tmp_path / "d3")  # a linked folder where sweep/ goes
    before = fingerprint(tmp_path)
    for dest, link in [("d3", "d3/base.yaml"), ("d4", "d4/fast.yaml"), ("d5", "d5/sweep")]:
        for force in ([], ["--force"]):
            assert run_main("configs", "--copy", dest, *force) == 2
            assert f"{link} is a symbolic link where" in one_error_line(capsys.readouterr().err)
    assert fingerprint(tmp_path) == before
    assert not (tmp_path / "OUTSIDE.yaml").exists()


@pytest.mark.parametrize("force", [False, True])
def test_copy_writes_every_config_or_none(force, tmp_path, capsys):
    """The bug: the configs were copied one by one, so a failure half-way (here the read-only folder
    sweep/optimizer/, reached after base.yaml, fast.yaml, gpu.yaml and sweep/criterion/) left those behind,
    or with --force overwrote them, and said it in a PermissionError line, exit 1."""
    dest = tmp_path / "mine"
    if force:  # an earlier copy with an edited config, which must stay as it is
        assert run_main("configs", "--copy", "mine") == 0
        (dest / "base.yaml").write_text("edited\n")
    else:
        (dest / "sweep" / "optimizer").mkdir(parents=True)
    read_only(dest / "sweep" / "optimizer")
    before = fingerprint(tmp_path)
    try:
        done = run_obeying_permissions("configs", "--copy", "mine", *(["--force"] if force else []), cwd=tmp_path)
    finally:
        writable(dest / "sweep" / "optimizer")
    assert done.returncode == 2, done.stderr
    line = one_error_line(done.stderr)
    assert "cannot write into mine/sweep/optimizer (permission denied)" in line and line.endswith("nothing was copied")
    assert fingerprint(tmp_path) == before  # no config, no hidden temporary file, no folder made for the copy


def test_quiet_copy_prints_nothing(tmp_path, capsys):
    """The bug: --quiet (warnings and errors only, README) did not silence the 'copied 16 configs' line."""
    assert run_main("configs", "--copy", "mine", "--quiet") == 0
    assert capsys.readouterr() == ("", "")
    assert sorted(str(p.relative_to(tmp_path / "mine")) for p in (tmp_path / "mine").rglob("*.yaml")) == REPO_CONFIGS
    assert run_main("configs", "--path", "--quiet") == 0  # what was asked for is still printed
    assert capsys.readouterr().out == f"{packaged_configs_dir()}\n"
