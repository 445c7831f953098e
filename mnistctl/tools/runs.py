"""`mnistctl runs`: every fit and sweep job in one table; `runs show RUN`; `runs diff A B`.

    mnistctl runs                                   # every run under runs/ and sweeps/, oldest first
    mnistctl runs --sort val_acc --status completed # best validation accuracy first
    mnistctl runs --sweep '2026-12-*' --json        # the jobs of some sweeps, for scripts
    mnistctl runs show last                         # the run `--ckpt_path last` takes, in full
    mnistctl runs diff 1a2b3c4 runs/mnist/version_3 # config keys and metrics that differ

RUN is a run folder, an id from the table (any unique prefix of 4 or more characters), `last` or `best`.
`last` and `best` name the run whose checkpoint `--ckpt_path last` / `--ckpt_path best` takes (found
by the same code, which reads the checkpoints with torch). The best run by accuracy is the first row of
`mnistctl runs --sort val_acc`. The listing reads run.json and config.yaml files only: no torch, a few
hundred runs in a fraction of a second.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mnistctl import layout
from mnistctl.argparser import OneLineParser
from mnistctl.console import shown
from mnistctl.errors import UsageError
from mnistctl.tools import runs_view
from mnistctl.tools.runs_index import collect, config_diff, differing_keys, short_ids
from mnistctl.tools.runs_select import SORTS, STATUSES, all_runs, filtered, resolve, sorted_rows


def _roots(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs_dir", default=layout.RUNS_ROOT, metavar="DIR", help="where fits are (default: %(default)s)"
    )
    parser.add_argument(
        "--sweeps_dir",
        default=layout.SWEEPS_ROOT,
        metavar="DIR",
        help="where sweeps are, or one sweep (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def list_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="mnistctl runs",
        description="List every fit under runs/ and every sweep job under sweeps/ (from their run.json), "
        "with the config values that differ between them. 'mnistctl runs show RUN' and "
        "'mnistctl runs diff A B' show one run or compare two.",
    )
    _roots(parser)
    parser.add_argument(
        "--sort",
        default="started",
        metavar="KEY",
        help=f"{', '.join(SORTS)} or a config key "
        "such as optimizer.lr; metrics sort best first (default: started, oldest first)",
    )
    parser.add_argument("--reverse", action="store_true", help="reverse the order")
    parser.add_argument("--status", metavar="S[,S]", help=f"only runs with this status: {', '.join(STATUSES)}")
    parser.add_argument("--name", metavar="PATTERN", help="only runs of this name (runs/<name>/...; wildcards allowed)")
    parser.add_argument("--sweep", metavar="PATTERN", help="only jobs of sweeps whose folder name matches ('*': all)")
    return parser


def show_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="mnistctl runs show",
        description="One run in full: record, metrics, files, the command that reproduces it.",
    )
    parser.add_argument("run", nargs="+", metavar="RUN", help="a run folder, an id from 'mnistctl runs', last or best")
    _roots(parser)
    return parser


def diff_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="mnistctl runs diff", description="The config keys and metrics in which two runs differ."
    )
    parser.add_argument("run", nargs="+", metavar="RUN", help="two runs: folders, ids, last or best")
    _roots(parser)
    return parser


def add_actions(parser: argparse.ArgumentParser) -> None:
    """Put `show` and `diff` below the `runs` parser, for `mnistctl completion` (which adds this level
    after `runs` itself: jsonargparse takes subcommands level by level)."""
    actions = parser.add_subparsers(dest="action")
    for name, build in (("show", show_parser), ("diff", diff_parser)):
        sub = build()
        actions.add_parser(name, parents=[sub], add_help=False, help=sub.description)


# -- the subcommands ----------------------------------------------------------------------------


def list_runs(args: argparse.Namespace) -> int:
    runs = all_runs(args)
    ids = short_ids(runs)
    listed = filtered(runs, args)
    keys = differing_keys(listed)
    # --sort is checked against every run's config: a key is no less a key when the filters match none
    rows = sorted_rows([runs_view.row(r, ids[r.full_id], keys) for r in listed], args.sort, args.reverse, runs)
    if args.json:
        sys.stdout.write(runs_view.json_text(rows))
    elif not rows:
        sys.stderr.write(f"mnistctl runs: none of the {len(runs)} runs matches the filters\n")
    else:
        where = " and ".join(shown(p) for p in (args.runs_dir, args.sweeps_dir) if Path(p).is_dir())
        runs_view.render_table(rows, keys, f"{len(rows)} of {len(runs)} runs under {where}")
    return 0


def show(args: argparse.Namespace) -> int:
    if len(args.run) != 1:
        raise UsageError(
            f"runs show takes one run, got {len(args.run)} ({' '.join(args.run)}); "
            "compare two with 'mnistctl runs diff A B'"
        )
    runs = collect(args.runs_dir, args.sweeps_dir)
    run = resolve(args.run[0], args, runs)
    short = short_ids([*runs, run])[run.full_id]
    if args.json:
        sys.stdout.write(runs_view.json_text(runs_view.details(run, short)))
    else:
        runs_view.render_show(run, short)
    return 0


def diff(args: argparse.Namespace) -> int:
    if len(args.run) != 2:
        raise UsageError(f"runs diff takes two runs, got {len(args.run)} ({' '.join(args.run)})")
    runs = collect(args.runs_dir, args.sweeps_dir)
    a, b = (resolve(value, args, runs) for value in args.run)
    if a.folder.resolve() == b.folder.resolve():  # an id and a folder may name the same run
        raise UsageError(
            f"runs diff: {args.run[0]} and {args.run[1]} are the same run ({shown(a.folder)}); give two different runs"
        )
    ids = short_ids([*runs, a, b])
    config = config_diff(a, b)
    if args.json:
        pairs = {"config": config, "metrics": runs_view.metric_diff(a, b)}
        result = {"a": runs_view.row(a, ids[a.full_id], []), "b": runs_view.row(b, ids[b.full_id], [])}
        result.update({part: {k: [va, vb] for k, va, vb in rows} for part, rows in pairs.items()})
        sys.stdout.write(runs_view.json_text(result))
    else:
        runs_view.render_diff(a, b, (ids[a.full_id], ids[b.full_id]), config)
    return 0


def main(argv: list[str]) -> int:
    if argv and argv[0] == "show":
        return show(show_parser().parse_args(argv[1:]))
    if argv and argv[0] == "diff":
        return diff(diff_parser().parse_args(argv[1:]))
    return list_runs(list_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
