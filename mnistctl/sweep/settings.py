"""The sweeper's and the launcher's own settings, checked when the sweep is planned: what Optuna and joblib
would refuse only once the multirun runs (a raw ValueError, exit 1) is one line and exit 2 before anything
is created, by the dry run too.

    mnistctl sweep --dry-run search=lr_dropout hydra.sweeper.direction=sideways     # refused here
    mnistctl sweep --dry-run criterion=ce,mse hydra/launcher=joblib hydra.launcher.prefer=xyz

Each check asks the library's own code the question the run will ask (joblib's Parallel and its arithmetic
for pre_dispatch, optuna's pruner classes, SQLAlchemy's engine for a storage URL) without starting a worker,
opening a connection or creating a file. Must be called inside `compose.hydra_session(tree)`.
"""

from __future__ import annotations

from pathlib import Path

from mnistctl.errors import UsageError
from mnistctl.sweep.overrides import one_line

DIRECTIONS = ("maximize", "minimize")


def check_sweeper(master, sweeper: str) -> None:
    """What Optuna would refuse in the search's settings: its direction, its pruner, its storage URL."""
    if sweeper != "optuna":
        return
    if problem := _direction_problem(master.hydra.sweeper.get("direction")) or _pruner_problem(master):
        raise UsageError(f"bad override: {problem}")
    storage = master.hydra.sweeper.get("storage")
    if storage is not None and (problem := storage_problem(str(storage))):
        raise UsageError(problem)  # worded as study.check_storage words what it cannot open


def _direction_problem(direction) -> str | None:
    """A job returns one value, its best val/acc: one direction, as optuna spells it."""
    if isinstance(direction, str) or not hasattr(direction, "__len__"):
        direction = [direction]
    names = [getattr(d, "name", d) for d in direction]  # hydra_optuna_sweeper's Direction enum, or a string
    if len(names) == 1 and names[0] in DIRECTIONS:
        return None
    shown = names[0] if len(names) == 1 else f"[{','.join(map(str, names))}]"
    return (
        f"hydra.sweeper.direction={shown} is not one direction; give maximize (a job returns its best val/acc: "
        "higher is better) or minimize"
    )


def _pruner_problem(master) -> str | None:
    from omegaconf import OmegaConf

    from mnistctl.sweep.study import make_pruner

    try:
        make_pruner(OmegaConf.to_container(master.pruner, resolve=True) if master.get("pruner") else None)
    except Exception as err:  # noqa: BLE001 - a bad argument of the pruner the user chose
        return one_line(err)
    return None


def storage_refusal(url: str, reason: str) -> str:
    return (
        f"hydra.sweeper.storage={url} cannot be opened ({reason[:200]}); give a storage URL such as "
        "sqlite:////abs/path/optuna.db, or leave it unset for <sweep>/optuna.db"
    )


def storage_problem(url: str) -> str | None:
    """The URL names a database SQLAlchemy can reach (its dialect and driver load; SQLite's folder exists),
    asked without connecting: creating the engine opens nothing (study.check_storage opens it for real)."""
    if url.startswith("redis"):  # optuna's RedisStorage: checked when the sweep opens it
        return None
    from sqlalchemy import create_engine

    try:
        engine = create_engine(url)
    except Exception as err:  # noqa: BLE001 - SQLAlchemy raises many kinds for a bad URL
        return storage_refusal(url, str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)
    database = engine.url.database
    engine.dispose()
    if engine.url.get_backend_name() == "sqlite" and database and database != ":memory:":
        folder = Path(database).expanduser().resolve().parent
        if not folder.is_dir():
            return storage_refusal(url, f"there is no folder {folder}")
    return None


def check_launcher(hydra, launcher: str, cores: int) -> None:
    if launcher == "joblib" and (problem := _joblib_problem(hydra, cores)):
        raise UsageError(f"bad override: {problem}")


def _joblib_problem(hydra, cores: int) -> str | None:
    """What the joblib launcher would refuse once its first batch starts: n_jobs, prefer, require,
    batch_size, max_nbytes (joblib's Parallel) and pre_dispatch (joblib's arithmetic), as the launcher sets them."""
    from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg
    from joblib import Parallel
    from omegaconf import OmegaConf

    settings = {k: v for k, v in OmegaConf.to_container(hydra.launcher, resolve=True).items() if k != "_target_"}
    n_jobs = int(settings["n_jobs"])
    workers = cores + 1 + n_jobs if n_jobs < 0 else n_jobs  # joblib: -1 is every core
    if workers < 1:  # joblib refuses it only when the sweep starts
        return (
            f"hydra.launcher.n_jobs={n_jobs} runs no job at a time on {cores} cores; give 1 or more "
            "(or -1 for every core)"
        )
    settings["backend"] = "loky"  # what the launcher hard-codes, whatever hydra.launcher.backend says
    process_joblib_cfg(settings)
    try:
        Parallel(**settings)  # checks its arguments; starts no worker
    except (ValueError, TypeError) as err:
        text = one_line(err)
        if text.split("=")[0].split(" ")[0] in settings:  # joblib names it: "prefer=xyz is not a valid ..."
            return f"hydra.launcher.{text}"
        key = next((k for k, v in settings.items() if isinstance(v, str) and v and v in text), None)
        return f"hydra.launcher.{key}={settings[key]}: {text}" if key else f"hydra.launcher: {text}"
    return _pre_dispatch_problem(settings.get("pre_dispatch"), workers)


def _pre_dispatch_problem(pre_dispatch, workers: int) -> str | None:
    """joblib evaluates pre_dispatch ('2*n_jobs') only when its first batch starts."""
    from joblib._utils import eval_expr

    if pre_dispatch == "all":
        return None
    fix = "give 'all', a number of 1 or more, or an expression such as 2*n_jobs"
    try:  # as Parallel.__call__ turns it into a number of jobs
        text = str(pre_dispatch)  # process_joblib_cfg made "8" an int
        amount = int(eval_expr(text.replace("n_jobs", str(workers))))
    except (ValueError, TypeError, OverflowError):
        return f"hydra.launcher.pre_dispatch={pre_dispatch} is not a number or an expression of n_jobs; {fix}"
    if amount < 1:  # 0 dispatches nothing: joblib returns no result and no job runs
        return f"hydra.launcher.pre_dispatch={pre_dispatch} dispatches no job (with n_jobs={workers}); {fix}"
    return None
