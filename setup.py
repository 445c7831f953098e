"""The two build settings pyproject.toml cannot express; everything else is there.

    python -m build            # sdist and wheel into dist/ (tests/test_packaging.py checks them)

- Packages: every `mnistctl*` package found under mnistctl/ (a new subpackage ships without
  editing this file), plus the top-level configs/ folder installed as `mnistctl.configs`
  (`[tool.setuptools.packages.find]` cannot add a package that `package-dir` maps from elsewhere).
- Long description: README.md without its pictures. They are relative links (docs/*.png) that
  render on a repository host but not on a package index, and the project has no public URL to
  make them absolute; each becomes its caption and the path of the file in the sdist.
- Quiet `pip install -e .` (make install): setuptools installs a flat layout (mnistctl/ beside
  tests/ and benchmarks/, configs/ mapped into the package) editable through a meta path finder
  and says so every time with an InformationOnly warning, "Editable installation ... folders in
  your working directory with the same name as your package ... may take precedence". It is no
  deprecation and asks nothing of the project (only a src/ layout avoids it); only that one is
  silenced, so every other backend warning still shows (and fails tests/test_packaging.py).
"""

import re
import warnings
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.warnings import InformationOnly

warnings.filterwarnings("ignore", message="Editable installation", category=InformationOnly)

# ![caption](path) where path is not an absolute URL.
RELATIVE_PICTURE = re.compile(r"!\[([^\]]*)\]\((?![a-z]+://)([^)\s]+)\)")


def long_description() -> str:
    readme = Path(__file__).with_name("README.md").read_text(encoding="utf-8")
    return RELATIVE_PICTURE.sub(r"*\1* (`\2` in the source distribution)", readme)


setup(
    packages=[*find_packages(include=["mnistctl", "mnistctl.*"]), "mnistctl.configs"],
    long_description=long_description(),
    long_description_content_type="text/markdown",
)
