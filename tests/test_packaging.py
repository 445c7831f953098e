"""The sdist and the wheel, built as a user's pip builds them, and the wheel installed on its own.

    .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_packaging.py   # 30 s alone, 70 s on a busy machine

The module fixture copies the checkout's files as git sees them (tracked, and untracked but not
ignored, so a stale mnistctl.egg-info/ or build/ cannot leak in) and builds the sdist and the wheel
from that copy with the PyPA `build` frontend, isolated as pip builds (it downloads setuptools from
PyPI), then builds a second wheel from the unpacked sdist alone. The wheel from the sdist is
installed into a fresh venv that sees the dev venv's packages (torch, Lightning, Hydra) through a
.pth file, so nothing else is downloaded, and runs from an unrelated folder with the network cut
(`unshare --net`, where the kernel lets us). Marked slow: it needs PyPI, so the fast tier stays
offline.
"""

from __future__ import annotations

import hashlib
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from conftest import REPO, TINY
from dist_build import (
    DIST,
    Built,
    backend_warnings,
    build_all,
    copy_source,
    fresh_venv,
    offline,
    pip_install,
    run,
    source_files,
)
from mnistctl import layout

pytestmark = pytest.mark.slow
NOT_SHIPPED_IN_SDIST = {".ci/run", ".gitignore"}  # CI machinery, not source


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    return build_all(tmp_path_factory.mktemp("packaging"))


def wheel_members(wheel: Path) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as zf:
        return {name: hashlib.sha256(zf.read(name)).hexdigest() for name in zf.namelist()}


def wheel_metadata(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(f"{DIST}.dist-info/METADATA").decode()


def test_build_prints_no_warning(built):
    assert "Successfully built" in built.output
    assert backend_warnings(built.output) == [], built.output[-4000:]


def test_editable_install_prints_no_warning(built, tmp_path):
    """The step of `make install` that runs the build backend, on a fresh copy, as the Makefile runs it."""
    clone = copy_source(tmp_path / "clone")
    venv = fresh_venv(tmp_path / "venv")
    done = run(*pip_install(venv), "-e", clone, cwd=tmp_path, env=built.env)
    assert backend_warnings(done.stdout + done.stderr) == [], done.stdout + done.stderr
    configs = run(venv / "bin/mnistctl", "configs", "--path", cwd=tmp_path).stdout.strip()
    assert Path(configs) == clone / "configs"  # editable: the clone's own files


def test_twine_check_passes_on_both(built):
    out = run(sys.executable, "-m", "twine", "check", "--strict", built.sdist, built.wheel, cwd=built.root)
    assert out.stdout.count("PASSED") == 2, out.stdout


def test_long_description_is_the_readme_without_pictures(built):
    description = wheel_metadata(built.wheel).split("\n\n", 1)[1]
    readme = (REPO / "README.md").read_text()
    headings = [line for line in readme.splitlines() if line.startswith("#")]
    assert headings == [line for line in description.splitlines() if line.startswith("#")]  # every section
    assert "](docs/" in readme and "](docs/" not in description and "![" not in description
    assert "*learning curves* (`docs/learning_curves.png` in the source distribution)" in description


def test_licences(built):
    metadata = wheel_metadata(built.wheel)
    assert "License-Expression: MIT" in metadata.splitlines()
    assert "License-File: LICENSE" in metadata and "License-File: mnistctl/data/mnist/LICENSE-MNIST.txt" in metadata
    with zipfile.ZipFile(built.wheel) as zf:
        code = zf.read(f"{DIST}.dist-info/licenses/LICENSE").decode()
        data = zf.read(f"{DIST}.dist-info/licenses/mnistctl/data/mnist/LICENSE-MNIST.txt").decode()
    assert code.startswith("MIT License") and "Copyright (c) 2026 the mnistctl authors" in code
    assert "CC BY-SA 3.0" in data


def test_wheel_holds_the_product_only(built):
    files = source_files()
    product = {f for f in files if f.startswith("mnistctl/")}  # a file there that does not ship is a bug too
    product |= {f"mnistctl/{f}" for f in files if f.startswith("configs/") and f.endswith((".yaml", "__init__.py"))}
    info = ["METADATA", "WHEEL", "RECORD", "entry_points.txt", "top_level.txt", "licenses/LICENSE"]
    info.append("licenses/mnistctl/data/mnist/LICENSE-MNIST.txt")
    names = set(wheel_members(built.wheel))
    assert names == product | {f"{DIST}.dist-info/{name}" for name in info}
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "docs/", "scripts/")) or n.endswith(".png")]


def test_sdist_is_the_source_tree(built):
    with tarfile.open(built.sdist) as tf:
        names = {m.name.removeprefix(f"{DIST}/") for m in tf.getmembers() if m.isfile()}
    egg_info = ["PKG-INFO", "SOURCES.txt", "dependency_links.txt", "entry_points.txt", "requires.txt", "top_level.txt"]
    generated = {"PKG-INFO", "setup.cfg", *(f"mnistctl.egg-info/{name}" for name in egg_info)}
    expected = set(source_files()) - NOT_SHIPPED_IN_SDIST
    assert not expected - names, f"tracked files missing from the sdist (add them to MANIFEST.in): {expected - names}"
    assert names - generated == expected


def test_wheel_from_sdist_equals_wheel_from_checkout(built):
    assert wheel_members(built.sdist_wheel) == wheel_members(built.wheel)


@pytest.fixture(scope="module")
def installed(built) -> Path:
    """bin/ of a fresh venv with the wheel built from the sdist installed, and nothing fetched."""
    venv = fresh_venv(built.root / "venv")
    run(*pip_install(venv), "--no-index", built.sdist_wheel, cwd=venv)
    return venv / "bin"


def test_installed_package_is_the_wheel_not_the_repo(installed, tmp_path):
    where = offline(installed / "python", "-c", "import mnistctl; print(mnistctl.__file__)", cwd=tmp_path).stdout
    assert Path(where.strip()).is_relative_to(installed.parent)
    folder = Path(offline(installed / "mnistctl", "configs", "--path", cwd=tmp_path).stdout.strip())
    assert folder.is_relative_to(installed.parent)
    shipped = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.yaml"))
    assert shipped == sorted(str(p.relative_to(REPO / "configs")) for p in (REPO / "configs").rglob("*.yaml"))


def test_fit_with_the_packaged_config_offline(installed, tmp_path):
    base = Path(offline(installed / "mnistctl", "configs", "--path", cwd=tmp_path).stdout.strip()) / "base.yaml"
    offline(installed / "mnistctl", "fit", "--config", base, *TINY, "--test_after_fit", "false", cwd=tmp_path)
    (run_dir,) = layout.run_dirs(tmp_path / layout.RUNS_ROOT)
    assert layout.last_checkpoint(run_dir).is_file()
    record = layout.read_record(run_dir)
    assert record["status"] == "completed" and record["git"] is None  # an installed copy, not a checkout
    config = yaml.safe_load((run_dir / layout.CONFIG).read_text())
    assert config["seed_everything"] == 42 and config["data"]["val_size"] == 5000  # base.yaml's values


def test_sweep_dry_run_offline(installed, tmp_path):
    out = offline(installed / "mnistctl", "sweep", "--dry-run", "criterion=ce,mse", cwd=tmp_path).stdout
    assert "dry run" in out and "criterion=ce" in out and "criterion=mse" in out
    assert not list(tmp_path.iterdir())  # a dry run creates nothing


def test_configs_copy(installed, tmp_path):
    out = offline(installed / "mnistctl", "configs", "--copy", "mine", cwd=tmp_path).stdout
    assert out.startswith("copied ")
    assert (tmp_path / "mine" / "base.yaml").read_text() == (REPO / "configs" / "base.yaml").read_text()
    assert (tmp_path / "mine" / "sweep" / "sweep.yaml").is_file()
