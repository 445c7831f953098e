"""Compose a sweep with Hydra exactly as its multirun will, and each job's config, without running anything.

    mnistctl sweep --dry-run '+trainer.max_epochs=2'     # refused here as the real sweep refuses it

`compose_master` is what `Hydra.multirun` composes first (RunMode.MULTIRUN: sweeps over hydra.* keys
refused, sweep overrides set aside); `compose_job` is what the sweeper and the launcher compose for
each job (`load_sweep_config`: the master's Hydra overrides plus the job's), with the job number set
as the launcher sets it, turned into the job's LightningCLI config exactly as job.py writes job.yaml,
and its values checked (values.py). Hydra composition is pure Python: no torch.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mnistctl.errors import UsageError
from mnistctl.sweep.checks import CONFIG_NAME
from mnistctl.sweep.keys import Keys
from mnistctl.sweep.overrides import one_line
from mnistctl.sweep.values import value_problems

JOB_NAME = "mnistctl-sweep"


@contextmanager
def hydra_session(tree: Path) -> Iterator[None]:
    """Hydra's compose API on the sweep tree; Hydra never changes the working directory."""
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(tree), version_base="1.3", job_name=JOB_NAME):
        yield


def composition_errors() -> tuple[type[Exception], ...]:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return HydraException, OmegaConfBaseException, ValueError, TypeError, AttributeError, KeyError


def compose_master(overrides: list[str]):
    """The sweep's own config, as Hydra.multirun composes it before the sweeper starts."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    try:
        return GlobalHydra.instance().hydra.compose_config(
            CONFIG_NAME, overrides, run_mode=RunMode.MULTIRUN, with_log_configuration=False
        )
    except composition_errors() as err:
        raise UsageError(f"bad override: {one_line(err)}") from None


def compose_job(master, overrides: list[str], number: int, threads: int, keys: Keys) -> tuple[dict | None, list[str]]:
    """One job's LightningCLI config (what job.yaml will hold) and what is wrong with it."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    from mnistctl.sweep.job import lightning_config

    try:
        cfg = GlobalHydra.instance().config_loader().load_sweep_config(master, list(overrides))
        with open_dict(cfg):  # as the launcher and hydra.core.utils.run_job set them
            cfg.hydra.job.id, cfg.hydra.job.num = f"{cfg.hydra.job.name}_{number}", number
            cfg.hydra.runtime.output_dir = (
                str(OmegaConf.select(cfg, "hydra.sweep.dir")) + "/" + str(OmegaConf.select(cfg, "hydra.sweep.subdir"))
            )
        HydraConfig.instance().set_config(cfg)
        task = copy.deepcopy(cfg)
        with open_dict(task):
            del task["hydra"]
        tree = lightning_config(task, threads, Path(cfg.hydra.runtime.cwd))
    except composition_errors() as err:
        return None, [one_line(err)]
    outside = _outside_sweep(cfg)
    return tree, [*([outside] if outside else []), *value_problems(tree, keys)]


def _outside_sweep(cfg) -> str | None:
    """Hydra creates the job's output_dir (sweep.dir joined with subdir) and appends the job's job.log there: a
    subdir that is absolute or climbs out with `..` would write into a user's own folder and files."""
    from omegaconf import OmegaConf

    sweep_dir = Path(str(OmegaConf.select(cfg, "hydra.sweep.dir"))).resolve()
    subdir = str(OmegaConf.select(cfg, "hydra.sweep.subdir"))
    output_dir = Path(os.path.join(sweep_dir, subdir)).resolve()  # as hydra.core.utils.run_job joins them
    if output_dir.is_relative_to(sweep_dir):
        return None
    return (
        f"hydra.sweep.subdir={subdir} puts the job's folder outside the sweep folder (at {output_dir}); give a "
        "relative name inside it, such as the default ${hydra.job.num}"
    )
