"""`mnistctl configs`: list, print and copy the packaged configs (in-process; the installed case is in
test_packaging.py)."""

from __future__ import annotations

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
