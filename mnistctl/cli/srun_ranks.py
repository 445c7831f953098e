"""DDP the cluster way: the tasks of one `srun` train as one run, in one run folder that rank 0 chooses.

    srun --ntasks 2 mnistctl fit --trainer.accelerator cpu --trainer.devices 2 --trainer.strategy ddp

Under `srun` every task is a whole `mnistctl fit` process, and Lightning's SLURM environment gives each its
rank (SLURM_PROCID); no launcher passes rank 0's run folder down, as Lightning's own DDP launcher does
(MNISTCTL_SHARED_RUN_DIR). So rank 0 allocates the folder and publishes its path in a file under the runs
root named for the SLURM job and step; the other ranks wait for it (MNISTCTL_RANK_WAIT_S seconds, default
300) and join that folder. The file also names the srun that wrote it (its launcher port), so a file that a
killed step of another cluster's job with the same ids left behind is never taken. Rank 0 removes it when
every rank has reached the Trainer's setup (Lightning holds them at a barrier there), or at exit.

Lightning wants `--ntasks-per-node` to check its devices against; with `srun --ntasks N` on nodes that each
run the same number of tasks, that number is SLURM's own SLURM_STEP_TASKS_PER_NODE, and it is passed on.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from pytorch_lightning import Callback

from mnistctl.atomic import atomic_write
from mnistctl.errors import UsageError
from mnistctl.layout import rank_rendezvous

WAIT_ENV = "MNISTCTL_RANK_WAIT_S"
_published: list[tuple[Path, dict]] = []  # on rank 0: the file it wrote, and the srun it names


def srun_rank() -> int | None:
    """This task's rank when `srun` started several tasks of one step, else None."""
    env = os.environ
    if "SLURM_STEP_ID" not in env or "SLURM_PROCID" not in env:
        return None
    return int(env["SLURM_PROCID"]) if int(env.get("SLURM_NTASKS", "1")) > 1 else None


def srun_environment(configured: list) -> list:
    """The cluster environment for the tasks of one `srun` step: Lightning's SLURMEnvironment, named explicitly.

    Lightning detects SLURM by itself except in a job named `bash` or `interactive` (what `salloc` names its
    allocation on many clusters, this one too): each srun task would then launch DDP processes of its own and
    train a separate run. Several srun tasks always mean SLURM starts the ranks, so it is passed as a plugin.
    """
    from lightning_fabric.plugins.environments import ClusterEnvironment, SLURMEnvironment

    if srun_rank() is None or any(isinstance(p, ClusterEnvironment) for p in configured):
        return []
    return [SLURMEnvironment()]


def pass_tasks_per_node() -> None:
    """`srun --ntasks N`: give Lightning the tasks per node it checks its devices against, when they are even."""
    even = re.fullmatch(r"(\d+)(\(x\d+\))?", os.environ.get("SLURM_STEP_TASKS_PER_NODE", ""))
    if srun_rank() is not None and "SLURM_NTASKS_PER_NODE" not in os.environ and even:
        os.environ["SLURM_NTASKS_PER_NODE"] = even.group(1)


def _identity() -> dict:
    env = os.environ
    port = env.get("SLURM_STEP_LAUNCHER_PORT") or env.get("SLURM_SRUN_COMM_PORT")
    return {"job": env["SLURM_JOB_ID"], "step": env["SLURM_STEP_ID"], "launcher_port": port}


def shared_run_dir(runs_root: str, allocate: Callable[[], Path]) -> Path:
    """The run folder of this fit: allocated here on rank 0 (and published), read from rank 0 elsewhere."""
    rank = srun_rank()
    if rank is None:
        return allocate()
    me = _identity()
    path = rank_rendezvous(Path(runs_root), me["job"], me["step"])
    if rank == 0:
        run_dir = allocate()
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as f:
            json.dump({**me, "run_dir": str(run_dir.resolve())}, f)
        _published.append((path, me))
        atexit.register(_remove, path, me)
        return run_dir
    wait_s = float(os.environ.get(WAIT_ENV, "300"))
    deadline = time.monotonic() + wait_s
    while True:
        published = _read(path)
        if published is not None and {k: published.get(k) for k in me} == me:
            return Path(published["run_dir"])
        if time.monotonic() > deadline:
            raise UsageError(
                f"rank {rank} of SLURM step {me['job']}.{me['step']} waited {wait_s:g} s for rank 0 to publish the "
                f"run folder in {path}; see rank 0's error (or raise {WAIT_ENV} if rank 0 starts that slowly)"
            )
        time.sleep(0.2)


def _read(path: Path) -> dict | None:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and "run_dir" in found else None


def _remove(path: Path, me: dict) -> None:
    """Remove the file if it is still this step's (never another step's that reused the name)."""
    published = _read(path)
    if published is not None and {k: published.get(k) for k in me} == me:
        path.unlink(missing_ok=True)


class ReleaseRankRendezvous(Callback):
    """On rank 0, after Lightning's setup barrier (every rank has joined the run folder): remove the file."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        while _published:
            _remove(*_published.pop())
