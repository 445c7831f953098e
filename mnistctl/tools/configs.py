"""`mnistctl configs`: list, print or copy the configs that ship inside the installed package.

    mnistctl configs                      # the packaged folder and every config in it
    mnistctl configs --copy my_configs    # copy them all, to edit and pass with --config
    mnistctl fit --config "$(mnistctl configs --path)/base.yaml"

The same files as the repository's configs/ (installed as the package `mnistctl.configs`), so an
installed mnistctl has them wherever it runs.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path

from mnistctl.argparser import OneLineParser
from mnistctl.atomic import kind_name, nearest_existing, no_folder_kind, write_all
from mnistctl.config_files import packaged_configs_dir
from mnistctl.console import is_quiet, shown
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


class CopyError(UsageError):
    """The configs could not be written (disk full, an I/O error): nothing was copied."""

    exit_code = 1


def copy_configs(dest: Path, force: bool = False) -> list[Path]:
    """Copy the packaged configs into dest, keeping their sub-folders: all of them or, on any problem, none.

    Everything is checked before anything is written. Only regular files are overwritten, and only with
    force; a link, folder or other non-file where a config or its sub-folder goes is refused even with
    force, so nothing is ever written through a symlink to outside dest. (dest itself is the folder the
    user named: a link to a folder there is followed, as `cp` would.)
    """
    root = packaged_configs_dir()
    files = packaged_files()
    _check_destination(dest, files, force)
    try:
        write_all({dest / f: (root / f).read_bytes() for f in files}, replace=force)
    except FileExistsError as err:
        raise UsageError(f"--copy {dest}: {err.filename} appeared while copying; nothing was copied") from None
    except PermissionError as err:
        folder = shown(Path(err.filename or dest).parent)
        raise UsageError(f"--copy {dest}: cannot write into {folder} (permission denied); nothing was copied") from None
    except OSError as err:
        raise CopyError(
            f"--copy {dest}: could not write {err.filename or dest} ({err.strerror or err}); nothing was copied"
        ) from None
    return [dest / f for f in files]


def _check_destination(dest: Path, files: list[Path], force: bool) -> None:
    """UsageError, before anything is written, for a dest that cannot take every file in `files`."""
    existing = nearest_existing(dest)
    if not existing.is_dir():
        what = no_folder_kind(existing)
        where = f"is {what}" if existing == dest else f"is inside {existing}, which is {what}"
        raise UsageError(f"--copy {dest} {where}, not a folder; give a new folder or an existing one")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--copy {dest}: {existing} is not writable; choose another folder")
    clashes = []
    for name in files:
        for part in [*reversed(name.parents[:-1]), name]:  # sweep, sweep/criterion, sweep/criterion/ce.yaml
            path = dest / part
            mode = os.lstat(path).st_mode if os.path.lexists(path) else None
            if mode is None:
                break
            if part != name and stat.S_ISDIR(mode):
                continue
            if part == name and stat.S_ISREG(mode):
                clashes.append(path)
                break
            goes = "a folder of configs" if part != name else "a config"
            raise UsageError(
                f"--copy {dest}: {path} is {kind_name(mode)} where {goes} goes; mnistctl never writes through or "
                "over it (not even with --force): move it away or choose another folder"
            )
    if clashes and not force:
        raise UsageError(
            f"--copy {dest}: {len(clashes)} file(s) already there, e.g. {clashes[0]}; "
            "add --force to overwrite them or choose another folder"
        )


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    root = packaged_configs_dir()
    if args.path:
        sys.stdout.write(f"{root}\n")
    elif args.copy:
        copied = copy_configs(Path(args.copy), args.force)
        if not is_quiet():  # what was asked for is printed anyway (the list, a path, a config); this is news
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
