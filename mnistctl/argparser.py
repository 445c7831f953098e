"""The argument parser of mnistctl's own subcommands (sweep, export, configs, completion, runs).

    mnistctl export --format zip     # -> mnistctl: error: export: argument --format: invalid choice ...

argparse prints usage and exits on a bad flag; this parser raises UsageError instead, so `mnistctl`
prints one line naming the problem and the help to read, and exits 2, as for every other bad input.
"""

from __future__ import annotations

import argparse

from mnistctl.errors import UsageError


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):
        name = self.prog.removeprefix("mnistctl ")
        raise UsageError(f"{name}: {' '.join(message.split())} (see '{self.prog} --help')")
