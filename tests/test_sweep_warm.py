"""Warm job starts: sweep jobs forked from a server that imported torch and Lightning once, each still its
own process, with the results of a cold start.

    .venv/bin/python -m pytest -q tests/test_sweep_warm.py         # -m "not slow": the server's state only

Fast: the server, once preloaded, has one thread and no CUDA (fork is safe). Slow (real tiny sweeps, under
a minute each): the jobs are separate processes started warm; a job killed mid-fit (as an interpreter crash)
fails alone while the next job completes; a warm and a cold sweep give the same metrics and weights.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import SWEEP_ON_CPU, run_cli
from conftest import SWEEP_TINY as TINY
from mnistctl.sweep import warm_start

pytestmark = pytest.mark.usefixtures("sweep_tree")


def jobs_of(sweep_dir: Path) -> dict[int, dict]:
    return {int(p.parent.name): json.loads(p.read_text()) for p in sweep_dir.glob("*/job.json")}


PRELOADED_SERVER = """
import os, sys
from mnistctl.sweep import warm_server as w
w.preload(search=SEARCH)  # as the server starts: nothing imported before it
import torch
from jsonargparse import _typehints
from mnistctl.cli import mnist_cli
calls = []
def counted(name, f):
    def call(*args, **kwargs):
        calls.append(name)
        return f(*args, **kwargs)
    return call
# Asking whether there is a GPU already starts CUDA's driver (cuInit), which does not survive fork.
torch.cuda.is_available = counted("is_available", torch.cuda.is_available)
torch._C._cuda_getDeviceCount = counted("device count", torch._C._cuda_getDeviceCount)
mnist_cli.resolve_ckpt_path = counted("checkpoint", mnist_cli.resolve_ckpt_path)
w.warm_parser()  # then the parser warm-up, as serve() does
print(len(os.listdir('/proc/self/task')), torch.cuda.is_initialized(), 'mnistctl.__main__' in sys.modules,
      all(m in sys.modules for m in ('pytorch_lightning', 'mnistctl.cli.mnist_cli')), 'optuna' in sys.modules,
      any(k[0] is torch.optim.Adam for k in _typehints._cached_class_parsers), len(calls),
      os.environ['MNISTCTL_FIT__CKPT_PATH'])
"""


@pytest.mark.parametrize("search", [False, True])
def test_the_preloaded_server_is_single_threaded_and_never_touched_cuda(search, tmp_path, monkeypatch):
    (tmp_path / "runs").mkdir()
    monkeypatch.setenv("MNISTCTL_FIT__CKPT_PATH", "last")  # the warm-up parses defaults: it resolves no checkpoint
    code = PRELOADED_SERVER.replace("SEARCH", str(search))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    # One thread of the OS (no BLAS or OpenMP pool: fork would copy it broken), CUDA untouched and not even
    # asked about (tune_process runs after parsing); optuna (1.4 s to import) only for a search's jobs. The
    # warm-up parsed the default optimizer's class (its parser is cached for the jobs), looked for no
    # checkpoint, left the environment as it was and wrote nothing.
    assert done.stdout.split() == ["1", "False", "False", "True", str(search), "True", "0", "last"]
    assert (
        done.stderr == ""
        and [p.name for p in tmp_path.iterdir()] == ["runs"]
        and not any((tmp_path / "runs").iterdir())
    )


@pytest.mark.parametrize(
    ("overrides", "search"),
    [([], False), (["search=lr_dropout"], True), (["hydra/sweeper=optuna"], True), (["seed=1,2"], False)],
)
def test_a_search_is_recognised_from_the_overrides(overrides, search):
    assert warm_start.likely_search(overrides) == search


@pytest.mark.parametrize(
    ("overrides", "launcher"),
    [
        ([], "basic"),
        (["criterion=ce", "hydra/launcher=joblib"], "joblib"),
        (["+hydra/launcher=submitit_slurm"], "submitit_slurm"),
    ],
)
def test_the_launcher_is_read_from_the_overrides_before_hydra_is_asked(overrides, launcher):
    assert warm_start.likely_launcher(overrides) == launcher


@pytest.mark.parametrize(("launcher", "adopted"), [("basic", True), ("submitit_slurm", False)])
def test_an_early_server_serves_a_local_launcher_and_is_stopped_for_one_that_runs_jobs_elsewhere(launcher, adopted):
    """The bugs: SLURM jobs told of a socket on another machine; a server left running after the sweep."""
    with warm_start.early_server(True) as early, warm_start.serving(launcher, early) as serving:
        assert (serving is early) == adopted
        assert (os.environ.get(warm_start.WARM_ENV) == str(early.path)) == adopted
        assert early.stopped != adopted  # an unused server goes at once, not at the end of the sweep
    assert warm_start.WARM_ENV not in os.environ
    assert early.stopped and early.proc.poll() is not None and not early.folder.exists()


@pytest.mark.slow  # the server's imports: about 5 s
def test_a_job_forked_after_the_first_finds_the_parser_caches_warm(tmp_path):
    """The bug: serve() never calling warm_parser, so every job builds jsonargparse's class parsers anew."""
    (tmp_path / "cache_probe.py").write_text(
        "from jsonargparse import _typehints\nprint(len(_typehints._cached_class_parsers))\n"
    )
    server = warm_start.Server()  # importable from here: the server starts in this folder
    counts = []
    try:
        for i in range(2):  # the first is queued while the server imports; the second comes after it ended
            with open(tmp_path / f"out{i}", "w") as out, open(tmp_path / f"err{i}", "w") as err:
                job = warm_start.WarmProcess(str(server.path), "cache_probe", [], tmp_path, dict(os.environ), out, err)
                assert job.wait(timeout=300) == 0, (tmp_path / f"err{i}").read_text()
            counts.append(int((tmp_path / f"out{i}").read_text()))
    finally:
        server.stop()
    assert counts[1] > 0, counts  # preloading alone caches no class parser (the fast test above checks the warm-up's)


@pytest.mark.slow
def test_warm_jobs_are_separate_processes_and_a_killed_one_fails_alone(tmp_path):
    args = ["criterion=ce,mse", "trainer.max_epochs=3", "trainer.limit_train_batches=10", "trainer.limit_val_batches=2"]
    args.append(SWEEP_ON_CPU)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mnistctl", "sweep", *args, "trainer.limit_test_batches=2", "hydra.sweep.dir=s"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sweep_dir = (tmp_path / "s").resolve()
    victim = None
    deadline = time.monotonic() + 300
    while victim is None and time.monotonic() < deadline and proc.poll() is None:
        for entry in Path("/proc").iterdir():  # job 0's fit: the process working in its folder
            try:
                if entry.name.isdigit() and Path(os.readlink(entry / "cwd")) == sweep_dir / "0":
                    victim = int(entry.name)
            except OSError:
                continue
        time.sleep(0.05)
    assert victim is not None, "job 0 never started"
    while not list(sweep_dir.glob("0/runs/*/version_0/metrics.csv")) and time.monotonic() < deadline:
        time.sleep(0.05)  # mid-fit, past Lightning's set-up
    os.kill(victim, signal.SIGSEGV)  # an interpreter crash (SIGKILL or SIGTERM would be a stop: interrupted)
    assert proc.wait(timeout=300) == 1  # one job did not complete
    jobs = jobs_of(sweep_dir)
    assert jobs[0]["status"] == "failed" and jobs[0]["error"] == "killed by SIGSEGV" and jobs[0]["fit_pid"] == victim
    assert jobs[1]["status"] == "completed" and jobs[1]["epochs"] == 3 and jobs[1]["val_acc"] > 0.1
    assert jobs[0]["start"] == jobs[1]["start"] == "warm"
    assert len({jobs[0]["fit_pid"], jobs[1]["fit_pid"], proc.pid}) == 3


@pytest.mark.slow
def test_warm_and_cold_jobs_give_the_same_results(tmp_path):
    for name, warm in (("warm", "1"), ("cold", "0")):
        done = run_cli(
            "sweep", *TINY, "trainer.max_epochs=2", f"hydra.sweep.dir={name}", env={"MNISTCTL_SWEEP_WARM": warm}
        )
        assert done.returncode == 0, done.stderr[-3000:]
    warm, cold = jobs_of(tmp_path / "warm")[0], jobs_of(tmp_path / "cold")[0]
    assert (warm["start"], cold["start"]) == ("warm", "cold")
    for key in ("val_acc", "val_loss", "test_acc", "test_loss", "val_acc_curve", "epochs"):
        assert warm[key] == cold[key], key
    weights = [
        torch.load(tmp_path / folder / "0" / "runs/mnist/version_0/checkpoints/last.ckpt", weights_only=True)[
            "state_dict"
        ]
        for folder in ("warm", "cold")
    ]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
