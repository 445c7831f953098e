"""`mnistctl runs`: every fit and sweep job in one table; `runs show RUN`; `runs diff A B`.

    mnistctl runs                                   # every run under runs/ and sweeps/, oldest first
    mnistctl runs --sort val_acc --status completed # best validation accuracy first
    mnistctl runs --sweep '2026-12-*' --json        # the jobs of some sweeps, for scripts
    mnistctl runs show last                         # the run `--ckpt_path last` takes, in full
    mnistctl runs diff 1a2b3c4 runs/mnist/version_3 # config keys and metrics that differ

RUN is a run folder, an id from the table (any unique prefix of 4 or more characters), `last` or `best`.
`last` and `best` name the run whose checkpoint `--ckpt_path last` / `--ckpt_path best` takes: the
newest fit run under --runs_dir with that checkpoint. The best run by accuracy is the first row of
`mnistctl runs --sort val_acc`. Reads run.json and config.yaml files only: no torch, a few hundred
runs in a fraction of a second.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import string
import sys
from pathlib import Path

from mnistctl import layout
from mnistctl.argparser import OneLineParser
from mnistctl.console import shown
from mnistctl.errors import UsageError
from mnistctl.tools import runs_view
from mnistctl.tools.runs_index import UNREADABLE, Run, collect, config_diff, differing_keys, run_at, short_ids

STATUSES = ("completed", "failed", "interrupted", "running", UNREADABLE)
SORTS = {  # name -> (row field, best first)
    "started": ("started", False),
    "id": ("id", False),
    "run": ("run", False),
    "status": ("status", False),
    "took": ("wall_time_s", False),
    "command": ("subcommand", False),
    "epochs": ("epochs", True),
    "val_acc": ("val_acc", True),
    "test_acc": ("test_acc", True),
}
MIN_ID = 4


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


# -- finding runs -------------------------------------------------------------------------------


def _all_runs(args: argparse.Namespace) -> list[Run]:
    runs = collect(args.runs_dir, args.sweeps_dir)
    if not runs:
        example = f"{layout.RUNS_ROOT}/<name>/{layout.VERSION_PREFIX}N/{layout.RUN_RECORD}"
        raise UsageError(
            f"no runs under {args.runs_dir} or {args.sweeps_dir} (no {example}, nor sweep jobs with one); "
            "run 'mnistctl fit' or 'mnistctl sweep' first, or point --runs_dir / --sweeps_dir at your runs"
        )
    return runs


def _newest_with(args: argparse.Namespace, which: str) -> Run:
    """The run `--ckpt_path last|best` takes: the newest fit run (by checkpoint time) holding that checkpoint."""
    for folder in layout.fit_runs(args.runs_dir):
        record = layout.read_record(folder) or {}
        best = (record.get("checkpoints") or {}).get("best")
        found = layout.last_checkpoint(folder) if which == "last" else (folder / best if best else None)
        if found is not None and found.is_file() and (run := run_at(folder)) is not None:
            return run
    raise UsageError(f"runs: no fit run with a {which} checkpoint under {args.runs_dir}; run 'mnistctl fit' first")


def resolve(value: str, args: argparse.Namespace, runs: list[Run]) -> Run:
    """A RUN argument: last, best, a folder, or an id prefix."""
    if value in ("last", "best"):
        return _newest_with(args, value)
    path = Path(value)
    if path.is_dir():
        job_runs = layout.job_run_dirs(path) if (path / layout.JOB_RECORD).is_file() else []
        run = run_at(path) or (run_at(job_runs[-1]) if job_runs else None)
        if run is None:
            raise UsageError(
                f"runs: {value} is not a run folder (no {layout.RUN_RECORD} in it); 'mnistctl runs' lists them"
            )
        return run
    if not set(value.lower()) <= set(string.hexdigits):
        raise UsageError(
            f"runs: no run folder or id {value!r}; give a folder, an id from 'mnistctl runs', last or best"
        )
    if len(value) < MIN_ID:
        raise UsageError(
            f"runs: id {value} is too short; give at least {MIN_ID} characters of an id from 'mnistctl runs'"
        )
    matches = [r for r in runs if r.full_id.startswith(value.lower())]
    if not matches:
        raise UsageError(
            f"runs: no run with id {value} under {args.runs_dir} or {args.sweeps_dir}; 'mnistctl runs' lists them"
        )
    if len(matches) > 1:
        shown_ids = ", ".join(f"{r.full_id[:10]} ({r.label})" for r in matches[:4])
        raise UsageError(
            f"runs: id {value} is ambiguous: {len(matches)} runs start with it ({shown_ids}); give more characters"
        )
    return matches[0]


def _filtered(runs: list[Run], args: argparse.Namespace) -> list[Run]:
    if args.status:
        wanted = {s.strip() for s in args.status.split(",") if s.strip()}
        if unknown := sorted(wanted - set(STATUSES)):
            raise UsageError(f"runs: --status {','.join(unknown)} is not a status; use {', '.join(STATUSES)}")
        runs = [r for r in runs if r.status in wanted]
    if args.name:
        runs = [r for r in runs if fnmatch.fnmatchcase(_name_of(r), args.name)]
    if args.sweep:
        runs = [r for r in runs if r.sweep is not None and fnmatch.fnmatchcase(r.sweep.name, args.sweep)]
    return runs


def _name_of(run: Run) -> str:
    """The run's name: <name> of <root>/<name>/version_N."""
    base = run.folder.parent if run.folder.name in layout.EVALUATIONS else run.folder
    return base.parent.name


def _sorted(rows: list[dict], key: str, reverse: bool, runs: list[Run]) -> list[dict]:
    field, best_first = SORTS.get(key.replace("/", "_"), (None, False))
    if field is None:
        if not any(key in r.config for r in runs):
            raise UsageError(f"runs: --sort {key} is neither a column ({', '.join(SORTS)}) nor a config key of any run")
        by_id = {r.full_id: r for r in runs}
        value = lambda row: by_id[row["full_id"]].config.get(key)  # noqa: E731
    else:
        value = lambda row: row[field]  # noqa: E731
    rows = sorted(rows, key=lambda row: row["started"] or "")  # ties stay oldest first
    present = [r for r in rows if value(r) is not None]
    present.sort(key=lambda row: (_kind(value(row)), value(row)), reverse=best_first != reverse)
    return present + [r for r in rows if value(r) is None]  # runs without the value last, either way


def _kind(value: object) -> str:
    """Values sort among their kind: numbers (ints and floats together), then text, ..."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return "0 number" if number else type(value).__name__


# -- the subcommands ----------------------------------------------------------------------------


def list_runs(args: argparse.Namespace) -> int:
    runs = _all_runs(args)
    ids = short_ids(runs)
    listed = _filtered(runs, args)
    keys = differing_keys(listed)
    rows = _sorted([runs_view.row(r, ids[r.full_id], keys) for r in listed], args.sort, args.reverse, listed)
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
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
        sys.stdout.write(json.dumps(runs_view.details(run, short), indent=2) + "\n")
    else:
        runs_view.render_show(run, short)
    return 0


def diff(args: argparse.Namespace) -> int:
    if len(args.run) != 2:
        raise UsageError(f"runs diff takes two runs, got {len(args.run)} ({' '.join(args.run)})")
    runs = collect(args.runs_dir, args.sweeps_dir)
    a, b = (resolve(value, args, runs) for value in args.run)
    if a.folder == b.folder:
        raise UsageError(
            f"runs diff: {args.run[0]} and {args.run[1]} are the same run ({shown(a.folder)}); give two different runs"
        )
    ids = short_ids([*runs, a, b])
    config = config_diff(a, b)
    if args.json:
        pairs = {"config": config, "metrics": runs_view.metric_diff(a, b)}
        result = {"a": runs_view.row(a, ids[a.full_id], []), "b": runs_view.row(b, ids[b.full_id], [])}
        result.update({part: {k: [va, vb] for k, va, vb in rows} for part, rows in pairs.items()})
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
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
