"""`mnistctl configs`: list, print or copy the configs that ship inside the installed package.

    mnistctl configs                      # the packaged folder and every config in it
    mnistctl configs --copy my_configs    # copy them all, to edit and pass with --config
    mnistctl fit --config "$(mnistctl configs --path)/base.yaml"

The same files as the repository's configs/ (installed as the package `mnistctl.configs`), so an
installed mnistctl has them wherever it runs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from mnistctl.argparser import OneLineParser
from mnistctl.config_files import packaged_configs_dir
from mnistctl.errors import UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="mnistctl configs", description="List, print or copy the packaged configs.")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("name", nargs="?", help="print this config, e.g. base.yaml or sweep/sweep.yaml")
    action.add_argument("--path", action="store_true", help="print only the packaged configs folder")
    action.add_argument("--copy", metavar="DIR", help="copy every packaged config into DIR (created if missing)")
    parser.add_argument("--force", action="store_true", help="with --copy: overwrite files that exist in DIR")
    return parser


def packaged_files() -> list[Path]:
    """Every YAML file of the packaged configs, relative to their folder, sorted."""
    root = packaged_configs_dir()
    return sorted(p.relative_to(root) for p in root.rglob("*.yaml"))


def copy_configs(dest: Path, force: bool = False) -> list[Path]:
    """Copy the packaged configs into dest, keeping their sub-folders; refuse to overwrite unless force."""
    root = packaged_configs_dir()
    files = packaged_files()
    clashes = [dest / f for f in files if (dest / f).exists()]
    if clashes and not force:
        raise UsageError(
            f"--copy {dest}: {len(clashes)} file(s) already there, e.g. {clashes[0]}; "
            "add --force to overwrite them or choose another folder"
        )
    for name in files:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / name, dest / name)
    return [dest / f for f in files]


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    root = packaged_configs_dir()
    if args.path:
        sys.stdout.write(f"{root}\n")
    elif args.copy:
        copied = copy_configs(Path(args.copy), args.force)
        sys.stdout.write(f"copied {len(copied)} configs from {root} to {args.copy}\n")
    elif args.name:
        path = root / args.name
        if path.suffix != ".yaml" or not path.is_file():
            names = ", ".join(str(p) for p in packaged_files())
            raise UsageError(f"no packaged config named {args.name!r}; the packaged configs are: {names}")
        sys.stdout.write(path.read_text())
    else:
        sys.stdout.write(f"packaged configs in {root}:\n")
        sys.stdout.writelines(f"  {name}\n" for name in packaged_files())
        sys.stdout.write("print one with 'mnistctl configs NAME', copy them with 'mnistctl configs --copy DIR'\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
