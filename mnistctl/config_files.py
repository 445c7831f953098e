"""The configs that ship inside the package (from the repo's top-level configs/)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def packaged_configs_dir() -> Path:
    return Path(str(resources.files("mnistctl.configs")))


def packaged_config(name: str) -> Path:
    return packaged_configs_dir() / name
