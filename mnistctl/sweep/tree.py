"""The Hydra tree a sweep composes from: the packaged configs/sweep/, completed from the installed libraries
once per set of versions and cached (torch-free after the first use).

    python -m mnistctl.sweep.generate     # build it now (or find it) and print its folder
    mnistctl sweep --info                 # where the tree, Hydra's search path and the plugins come from

`config_dir()` is <cache>/sweep-configs/<key>/ (layout.sweep_configs_cache()), where <key> hashes the
versions of python, mnistctl, torch, pytorch-lightning and jsonargparse and the bytes of mnistctl's
sources and packaged configs: another torch, an edited configs/base.yaml or constructor signature gives
another folder, so the tree cannot drift from what `mnistctl fit` would accept. The first use builds it
in a child process (generate.py imports torch and Lightning: seconds); it is published with one rename,
so sweeps started at once never see half a tree. Later uses hash files and read YAML, nothing more.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import mnistctl
from mnistctl.config_files import packaged_configs_dir
from mnistctl.errors import UsageError
from mnistctl.layout import sweep_configs_cache

PACKAGED_TREE = packaged_configs_dir() / "sweep"
LIBRARIES = ("torch", "pytorch-lightning", "jsonargparse")  # whose signatures and defaults the tree holds


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version(), "mnistctl": mnistctl.__version__}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def cache_key() -> str:
    """What the generated tree depends on: the versions, and mnistctl's own sources and configs (an edited
    checkout keeps its version number)."""
    digest = hashlib.sha256(json.dumps(versions(), sort_keys=True).encode())
    package = Path(mnistctl.__file__).parent
    for root, pattern in ((package, "*.py"), (packaged_configs_dir(), "*.yaml")):
        for path in sorted(root.rglob(pattern)):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def config_dir() -> Path:
    """The complete tree for the installed versions, built on first use."""
    root = sweep_configs_cache()
    final = root / cache_key()
    if final.is_dir():
        return final
    sys.stderr.write(f"mnistctl sweep: generating the sweep configs from the installed libraries (once) in {final}\n")
    try:
        root.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(dir=root, prefix=".building-"))
    except OSError as err:
        raise UsageError(
            f"cannot write the sweep config cache {root}: {err.strerror or err}; "
            "set MNISTCTL_CACHE_DIR to a writable folder"
        ) from None
    # Only the packaged defaults may go into the tree: MNISTCTL_FIT__* variables would change print_config.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNISTCTL_") or k == "MNISTCTL_CACHE_DIR"}
    command = [sys.executable, "-m", "mnistctl.sweep.generate", "--into", str(building)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()] or [f"exit {done.returncode}"]
        raise RuntimeError(f"could not generate the sweep configs from the installed libraries: {lines[-1]}")
    try:
        building.rename(final)
    except OSError:  # another sweep published the same tree first
        shutil.rmtree(building, ignore_errors=True)
        if not final.is_dir():
            raise
    return final
