"""Helpers of tests/test_packaging.py: build with the PyPA frontend, make venvs, run commands offline.

.venv/bin/python -m pytest -q -p no:cacheprovider tests/test_packaging.py
"""

from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO
from mnistctl import __version__

DIST = f"mnistctl-{__version__}"
WARNING = re.compile(r"warn|deprecat", re.IGNORECASE)


def run(*cmd: str | Path, cwd: Path, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    # PYTHONDONTWRITEBYTECODE makes distutils say "byte-compiling is disabled": a developer's setting, not the build's.
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")
    env = {**{k: v for k, v in os.environ.items() if k not in drop}, **(env or {})}
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def source_files() -> list[str]:
    """The checkout's files as a fresh clone plus `git add -A` would have them (no build outputs, no venv)."""
    git = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True)
    if git.returncode != 0:
        pytest.skip("not a git checkout: the source files cannot be told from build outputs")
    return sorted(name for name in git.stdout.splitlines() if (REPO / name).is_file())


def copy_source(dest: Path) -> Path:
    for name in source_files():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, dest / name)
    return dest


def backend_warnings(output: str) -> list[str]:
    # pip's own messages start with "WARNING: " (e.g. an unreachable index in the machine's pip.conf);
    # what the build backend says comes through indented or as Python warnings.
    return [line for line in output.splitlines() if WARNING.search(line) and not line.startswith("WARNING: ")]


@dataclass
class Built:
    root: Path
    env: dict[str, str]  # for pip: its cache in the test's folder
    sdist: Path
    wheel: Path  # built from the checkout's files
    sdist_wheel: Path  # built from the unpacked sdist alone
    output: str  # what both builds printed


def build_all(root: Path) -> Built:
    """The sdist and a wheel built from a copy of the checkout, then a wheel built from the sdist alone."""
    env = {"PIP_CACHE_DIR": str(root / "pip-cache")}  # setuptools downloaded once, ~/.cache untouched
    src = copy_source(root / "src")
    checkout = run(sys.executable, "-m", "build", "--sdist", "--wheel", "-o", root / "dist", src, cwd=root, env=env)
    (sdist,) = (root / "dist").glob("*.tar.gz")
    (wheel,) = (root / "dist").glob("*.whl")
    with tarfile.open(sdist) as tf:
        tf.extractall(root / "unpacked", filter="data")
    unpacked = root / "unpacked" / DIST
    from_sdist = run(sys.executable, "-m", "build", "--wheel", "-o", root / "dist-sdist", unpacked, cwd=root, env=env)
    (sdist_wheel,) = (root / "dist-sdist").glob("*.whl")
    output = checkout.stdout + checkout.stderr + from_sdist.stdout + from_sdist.stderr
    return Built(root, env, sdist, wheel, sdist_wheel, output)


def fresh_venv(venv: Path) -> Path:
    """A venv without pip that sees the dev venv's packages (torch, Lightning, pip) through a .pth file.

    A .pth line adds a folder without running the .pth files in it, so the dev venv's editable
    mnistctl stays out of the way. sys.path's site-packages too: the dev venv may itself share
    another venv's packages through a .pth.
    """
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=venv.parent)
    purelib = sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)})
    shared = dict.fromkeys([*site.getsitepackages(), *(p for p in sys.path if p.endswith("site-packages"))])
    Path(purelib, "dev_venv.pth").write_text("\n".join(shared) + "\n")
    return venv


def pip_install(venv: Path) -> list:
    # --ignore-installed: the dev venv's mnistctl is visible through the .pth; pip must not touch it.
    return [venv / "bin/python", "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed"]


def offline(*cmd: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    """Run cmd with no network: in a new network namespace where allowed, else through a dead proxy."""
    env = {"MNISTCTL_CACHE_DIR": f"{cwd}-mnist-cache"}  # beside cwd: a dry run must leave cwd empty
    if shutil.which("unshare") and subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode == 0:
        return run("unshare", "--net", "--", *cmd, cwd=cwd, env=env)
    dead = "http://127.0.0.1:9"
    return run(*cmd, cwd=cwd, env={**env, "http_proxy": dead, "https_proxy": dead, "HTTPS_PROXY": dead})
