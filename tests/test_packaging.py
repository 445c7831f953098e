"""A real, non-editable `pip install` of mnistctl works from any folder: configs and data ship inside it.

The new virtualenv sees the dev venv's packages (torch, Lightning, Hydra, pip, setuptools) through a
.pth file, so nothing is downloaded or re-installed: `pip install --no-deps --no-build-isolation
--no-index` builds the wheel from a copy of the source and installs only mnistctl into the new venv.
(`venv --system-site-packages` made from a venv's python would see the base interpreter's packages,
not the dev venv's; and a .pth line adds a folder without running the .pth files in it, so the dev
venv's editable mnistctl stays out of the way.)
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from conftest import REPO, TINY


def run(*cmd: str | Path, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with mnistctl pip-installed (not editable) from a copy of the source; returns its bin/."""
    root = tmp_path_factory.mktemp("packaging")
    src = root / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for folder in ("mnistctl", "configs"):
        shutil.copytree(REPO / folder, src / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    venv = root / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=root)
    purelib = sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)})
    Path(purelib, "dev_venv.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    python = venv / "bin" / "python"
    run(
        python,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--ignore-installed",
        src,
        cwd=root,
    )
    return venv / "bin"


def test_installed_package_is_the_wheel_not_the_repo(installed, tmp_path):
    where = run(installed / "python", "-c", "import mnistctl; print(mnistctl.__file__)", cwd=tmp_path).stdout
    assert Path(where.strip()).is_relative_to(installed.parent)
    folder = Path(run(installed / "mnistctl", "configs", "--path", cwd=tmp_path).stdout.strip())
    assert folder.is_relative_to(installed.parent)
    shipped = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.yaml"))
    assert shipped == sorted(str(p.relative_to(REPO / "configs")) for p in (REPO / "configs").rglob("*.yaml"))


@pytest.mark.slow  # two cold starts of Lightning and a tiny fit: about a minute on 2 cores
def test_fit_with_the_packaged_config_from_any_folder(installed, tmp_path):
    folder = run(installed / "mnistctl", "configs", "--path", cwd=tmp_path).stdout.strip()
    base = f"{folder}/base.yaml"
    config = yaml.safe_load(run(installed / "mnistctl", "fit", "--config", base, "--print_config", cwd=tmp_path).stdout)
    assert config["seed_everything"] == 42 and config["data"]["val_size"] == 5000
    run(installed / "mnistctl", "fit", "--config", base, *TINY, "--test_after_fit", "false", cwd=tmp_path)
    (run_dir,) = (tmp_path / "runs" / "mnist").iterdir()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


def test_sweep_dry_run_from_any_folder(installed, tmp_path):
    out = run(installed / "mnistctl", "sweep", "--dry-run", "criterion=ce,mse", cwd=tmp_path).stdout
    assert "dry run" in out and "criterion=ce" in out and "criterion=mse" in out
    assert not list(tmp_path.iterdir())  # a dry run creates nothing


def test_configs_copy(installed, tmp_path):
    out = run(installed / "mnistctl", "configs", "--copy", "mine", cwd=tmp_path).stdout
    assert out.startswith("copied ")
    assert (tmp_path / "mine" / "base.yaml").read_text() == (REPO / "configs" / "base.yaml").read_text()
    assert (tmp_path / "mine" / "sweep" / "sweep.yaml").is_file()
