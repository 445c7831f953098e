"""Every run mnistctl made, found from its run.json: fits under runs/, sweep jobs under sweeps/.

    python -c "from mnistctl.tools.runs_index import collect; print(len(collect('runs', 'sweeps')))"

A run is a folder holding a run.json: a fit (`runs/<name>/version_N`), an evaluation of it
(`runs/<name>/version_N/test`), or a sweep job's fit (`sweeps/<time>/<job>/runs/<name>/version_N`).
Its id is the SHA-1 of where it sits relative to its root (`runs:mnist/version_0`,
`sweeps:<time>/<job>/runs/mnist/version_0`): the same wherever the roots are, and shown abbreviated
like a git commit (7 characters, more where two ids would share them). Reads JSON and YAML only, no torch.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from mnistctl import layout
from mnistctl.flat_config import flatten
from mnistctl.process_alive import record_alive
from mnistctl.tools.runs_record import record_problem

ID_LENGTH = 7
UNREADABLE = "unreadable"


@dataclass
class Run:
    folder: Path  # the folder holding run.json
    key: str  # what the id is the hash of
    label: str  # how the table names it: mnist/version_0, <time>/<job>, ...
    sweep: Path | None = None  # the sweep folder of a sweep job's run
    job: Path | None = None
    record: dict | None = None  # None: run.json is unreadable, for the reason in `problem`
    problem: str | None = None  # `is not complete JSON`, `history[0] is 1, not an object`, ...
    _config: dict | None = field(default=None, repr=False)

    @property
    def full_id(self) -> str:
        return hashlib.sha1(os.fsencode(self.key)).hexdigest()  # a folder name need not be UTF-8

    @property
    def status(self) -> str:
        if self.record is None:
            return UNREADABLE
        return "interrupted" if self.gone else str(self.record.get("status"))

    @cached_property
    def gone(self) -> bool:
        """run.json says running, but the process that wrote it, on this machine, is gone: it was killed
        (SIGKILL, out of memory, a machine that stopped) before it could record its end."""
        record = self.record or {}
        if record.get("status") != "running":
            return False
        process = record.get("process")
        return isinstance(process, dict) and record_alive(process) is False

    @property
    def subcommand(self) -> str | None:
        return self.record.get("subcommand") if self.record else None

    @property
    def started(self) -> str | None:
        """run.json's ISO start time, to the millisecond, with the UTC offset of the machine that ran it."""
        return self.record.get("started") if self.record else None

    @property
    def started_at(self) -> float | None:
        """The start in seconds since the epoch (the order of runs, whatever offset each was recorded with);
        a time recorded without an offset counts as this machine's local time."""
        return datetime.datetime.fromisoformat(self.started).timestamp() if self.started else None

    @property
    def config(self) -> dict:
        """The flattened config.yaml beside run.json ({} when missing or unreadable)."""
        if self._config is None:
            self._config = flatten(read_yaml(self.folder / layout.CONFIG) or {})
        return self._config

    @property
    def best_val_acc(self) -> float | None:
        """Fit: the best val/acc of any epoch; validate: its val/acc."""
        record = self.record or {}
        values = [h["val/acc"] for h in record.get("history") or [] if h.get("val/acc") is not None]
        if values:
            return max(values)
        checkpoints = record.get("checkpoints") or {}
        if checkpoints.get("monitor") == "val/acc" and checkpoints.get("best_score") is not None:
            return checkpoints["best_score"]
        return (record.get("metrics") or {}).get("val/acc")

    def metric(self, name: str) -> float | None:
        return ((self.record or {}).get("metrics") or {}).get(name)


def read_yaml(path: Path) -> dict | None:
    """A YAML file as a dict with yaml.safe_load's rules (libyaml's CSafeLoader when present, which is faster)."""
    import yaml

    if not path.is_file():  # a FIFO of that name would block the read forever
        return None
    try:
        tree = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, ValueError, yaml.YAMLError):
        return None
    return tree if isinstance(tree, dict) else None


def _make(folder: Path, key: str, label: str, sweep: Path | None = None, job: Path | None = None) -> Run:
    record = layout.read_record(folder)
    problem = "is not complete JSON" if record is None else record_problem(record)
    return Run(folder, key, label, sweep, job, None if problem else record, problem)


def _with_evaluations(run: Run) -> list[Run]:
    found = [run] if (run.folder / layout.RUN_RECORD).is_file() else []
    for folder in layout.evaluation_dirs(run.folder):
        found.append(_make(folder, f"{run.key}/{folder.name}", f"{run.label}/{folder.name}", run.sweep, run.job))
    return found


def fit_run(folder: Path) -> Run:
    """A run folder under a runs root: `<root>/<name>/version_N`."""
    name = f"{folder.parent.name}/{folder.name}"
    return _make(folder, f"{layout.RUNS_ROOT}:{name}", name)


def job_run(folder: Path, job: Path) -> Run:
    """A sweep job's run folder: `<sweep>/<job>/runs/<name>/version_N`."""
    sweep = job.parent
    label = f"{sweep.name}/{job.name}"
    if layout.job_run_dirs(job) != [folder]:  # a job that ran more than once: say which attempt
        label += f"/{folder.name}"
    key = f"{layout.SWEEPS_ROOT}:{sweep.name}/{Path(os.path.relpath(folder, sweep)).as_posix()}"
    return _make(folder, key, label, sweep, job)


def collect(runs_root: str | os.PathLike | None, sweeps_root: str | os.PathLike | None) -> list[Run]:
    """Every fit, evaluation and sweep-job run under the two roots (either may be None or missing)."""
    runs: list[Run] = []
    if runs_root is not None and Path(runs_root).is_dir():
        for folder in layout.run_dirs(runs_root):
            runs += _with_evaluations(fit_run(folder))
    if sweeps_root is not None and Path(sweeps_root).is_dir():
        for sweep in layout.sweep_dirs(sweeps_root):
            for job in layout.job_dirs(sweep):
                for folder in layout.job_run_dirs(job):
                    runs += _with_evaluations(job_run(folder, job))
    return runs


def run_at(folder: Path) -> Run | None:
    """The run whose run.json is in folder, wherever folder is; None when there is none."""
    folder = Path(folder).resolve()
    base, evaluation = (folder.parent, folder.name) if folder.name in layout.EVALUATIONS else (folder, None)
    job = layout.job_dir_of(base)
    run = job_run(base, job) if job is not None else fit_run(base)
    if evaluation is None:
        return run if run.record is not None or (folder / layout.RUN_RECORD).is_file() else None
    return next((r for r in _with_evaluations(run) if r.folder == folder), None)


def short_ids(runs: list[Run]) -> dict[str, str]:
    """{full id: the shortest prefix of at least ID_LENGTH characters no other listed run shares}."""
    ids = sorted({r.full_id for r in runs})
    shown = {}
    for i, full in enumerate(ids):
        length = ID_LENGTH
        for other in (ids[i - 1] if i else "", ids[i + 1] if i + 1 < len(ids) else ""):
            common = len(os.path.commonprefix([full, other]))
            length = max(length, common + 1)
        shown[full] = full[:length]
    return shown


# -- comparing configs --------------------------------------------------------------------------


def is_identity_key(key: str) -> bool:
    """Config keys that only say where a run wrote: they differ between every two runs by design."""
    if key.startswith("trainer.logger.") and key.rsplit(".", 1)[-1] in ("save_dir", "name", "version"):
        return True
    if key.startswith("trainer.callbacks.") and key.endswith(".dirpath"):  # TestPlots writes into <run>/test
        return True
    return key in ("ckpt_path", "trainer.default_root_dir", "predictions.path")


def differing_keys(runs: list[Run]) -> list[str]:
    """Config keys on which runs that have them disagree, in config order.

    A key only some runs have (SGD's momentum beside Adam runs) counts only among those runs: the class
    key above it (`optimizer: SGD` vs `Adam`) already shows that difference. Fits are compared with fits:
    an evaluation's config lacks fit's callbacks by design.
    """
    basis = [r for r in runs if r.subcommand == "fit"] or runs
    values: dict[str, set[str]] = {}
    for run in basis:
        for key, value in run.config.items():
            if not is_identity_key(key):
                values.setdefault(key, set()).add(repr(value))
    return [key for key, seen in values.items() if len(seen) > 1]


def config_diff(a: Run, b: Run) -> list[tuple[str, object, object]]:
    """(key, value in a, value in b) for every config key that differs; a key one run lacks is None there
    (unset and absent are the same: CrossEntropyLoss's `weight: null` against MSELoss, which has none)."""
    keys = list(dict.fromkeys([*a.config, *b.config]))
    return [
        (key, a.config.get(key), b.config.get(key))
        for key in keys
        if not is_identity_key(key) and a.config.get(key) != b.config.get(key)
    ]
