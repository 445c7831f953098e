"""Fault injection: kill -9, SIGTERM, a kill mid-write, corrupted checkpoints, a full disk, races."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import PROBES_ON_PATH, SWEEP_ON_CPU, SWEEP_TINY, TINY, last_metric, read_csv, run_main
from mnistctl.cli.checkpoints import resolve_ckpt_path
from mnistctl.errors import UsageError

# Long enough epochs that a kill lands inside one; augmentation so the RNG state matters.
RESUMABLE = [
    *TINY,
    "--trainer.limit_train_batches",
    "40",
    "--trainer.max_epochs",
    "3",
    "--data.augment_shift",
    "2",
    "--test_after_fit",
    "false",
]


def start_fit(cwd: Path, *args: str, **popen_kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mnistctl", "fit", *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        **popen_kwargs,
    )


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"fit ended before {path} appeared: {proc.stderr.read()}"
        assert time.monotonic() < deadline, f"{path} did not appear in {timeout} s"
        time.sleep(0.01)


def weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


def assert_every_checkpoint_loads(folder: Path) -> None:
    """No half-written checkpoint under a real name: each .ckpt in `folder` loads (a temporary may remain)."""
    ckpts = sorted(folder.glob("*.ckpt"))
    assert ckpts, f"no checkpoint in {folder}"
    for ckpt in ckpts:
        try:
            torch.load(ckpt, map_location="cpu", weights_only=True)
        except Exception as err:  # torch.load raises many types for a truncated file
            pytest.fail(f"{ckpt.name} does not load after the fault: {type(err).__name__}: {err}")


@pytest.mark.slow  # over 9 s: the fast tier stays under 5 minutes
def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    whole.mkdir(), killed.mkdir()
    proc = start_fit(killed, *RESUMABLE)
    run = killed / "runs" / "mnist" / "version_0"
    wait_for(run / "checkpoints" / "last.ckpt", proc)  # epoch 0 done: the kill lands in epoch 1
    proc.kill()
    proc.wait()
    assert_every_checkpoint_loads(run / "checkpoints")
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] < 2

    os.chdir(killed)
    assert run_main("fit", *RESUMABLE, "--ckpt_path", "last") == 0
    assert sorted(p.name for p in run.parent.iterdir()) == ["version_0"]  # same run folder
    os.chdir(whole)
    assert run_main("fit", *RESUMABLE) == 0

    resumed = weights(run / "checkpoints" / "last.ckpt")
    uninterrupted = weights(whole / "runs" / "mnist" / "version_0" / "checkpoints" / "last.ckpt")
    assert resumed.keys() == uninterrupted.keys()
    for name in resumed:
        assert torch.equal(resumed[name], uninterrupted[name]), name
    assert last_metric(run / "metrics.csv", "val/acc") == last_metric(
        whole / "runs" / "mnist" / "version_0" / "metrics.csv", "val/acc"
    )
    # The resume appended: every epoch once, those before the kill included, as in run.json's history.
    assert [int(r["epoch"]) for r in read_csv(run / "metrics.csv") if r.get("train/loss")] == [0, 1, 2]
    assert [h["epoch"] for h in json.loads((run / "run.json").read_text())["history"]] == [0, 1, 2]


@pytest.mark.parametrize(
    "when",
    [[], pytest.param(["--trainer.val_check_interval", "0.5"], marks=pytest.mark.slow)],  # the fast tier: one
    ids=["saved-at-epoch-end", "saved-at-validation-end"],  # Lightning saves there unless validation ends epochs
)
def test_a_kill_between_an_epochs_checkpoint_and_its_records_loses_no_row_and_no_history(tmp_path, when):
    """The bug: Lightning writes an epoch's checkpoints before it logs the epoch's train/* (and, when it saves at
    validation end, before run.json records the epoch); a kill between them left a resume that starts at the
    next epoch with no train row, or no history entry, for that one."""
    two_epochs = [*TINY, "--trainer.max_epochs", "2", "--test_after_fit", "false", *when]
    kill = "--trainer.callbacks+=probes.KillAfterEpochCheckpoint"
    proc = start_fit(tmp_path, *two_epochs, kill, env={**os.environ, **PROBES_ON_PATH})
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, stderr
    run = tmp_path / "runs" / "mnist" / "version_0"
    before = read_csv(run / "metrics.csv")
    assert not any(r.get("train/loss") for r in before)  # the kill came first
    val_before = [r for r in before if r.get("val/acc")]

    os.chdir(tmp_path)
    assert run_main("fit", *two_epochs, "--ckpt_path", "last") == 0
    rows = read_csv(run / "metrics.csv")
    train = [r for r in rows if r.get("train/loss")]
    assert [int(r["epoch"]) for r in train] == [0, 1]
    kept = [{k: r[k] for k in ("epoch", "step", "val/acc")} for r in rows if r.get("val/acc") and r["epoch"] == "0"]
    assert kept == [{k: r[k] for k in ("epoch", "step", "val/acc")} for r in val_before]  # kept as they were
    assert int(train[0]["step"]) == int(val_before[-1]["step"]) < int(train[1]["step"])  # as Lightning numbers it
    history = json.loads((run / "run.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [0, 1]
    assert history[0]["train/loss"] == pytest.approx(float(train[0]["train/loss"])) and 0 < history[0]["train/acc"] <= 1
    assert history[0]["val/acc"] == pytest.approx(float(val_before[-1]["val/acc"]))


@pytest.mark.parametrize(
    ("signum", "exit_code"),
    [(signal.SIGTERM, 143), pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow)],  # the fast tier: one
    ids=["TERM", "INT"],
)
def test_sigterm_and_ctrl_c_stop_fit_cleanly_with_a_checkpoint(tmp_path, signum, exit_code):
    proc = start_fit(tmp_path, *RESUMABLE, "--trainer.max_epochs", "20")
    checkpoints = tmp_path / "runs" / "mnist" / "version_0" / "checkpoints"
    wait_for(checkpoints / "last.ckpt", proc)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == exit_code, stderr
    assert_every_checkpoint_loads(checkpoints)
    interrupted = torch.load(checkpoints / "interrupted.ckpt", weights_only=True)
    assert interrupted["epoch"] < 19 and interrupted["state_dict"]
    assert "Traceback" not in stderr
    manifest = json.loads((checkpoints.parent / "run.json").read_text())
    assert manifest["status"] == "interrupted", manifest


ATOMIC_WRITER = """
import sys, time
from mnistctl.atomic import atomic_write
with atomic_write(sys.argv[1]) as f:
    for i in range(100000):
        f.write(f"new line {i}\\n")
        if i == 10:
            f.flush(); print("writing", flush=True)
        time.sleep(0.001)
"""


def test_kill_mid_write_leaves_the_old_complete_file_and_nothing_else(tmp_path):
    target = tmp_path / "summary.csv"
    target.write_text("old,complete\n")
    proc = subprocess.Popen([sys.executable, "-c", ATOMIC_WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.kill()
    proc.wait()
    assert target.read_text() == "old,complete\n"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]  # and no temporary file left behind


def test_truncated_checkpoint_is_named_and_last_does_not_take_an_older_run(tiny_run, tmp_path, capsys):
    runs = tmp_path / "runs"
    shutil.copytree(tiny_run.parent.parent, runs)
    newer = runs / "mnist" / "version_1"
    shutil.copytree(runs / "mnist" / "version_0", newer)
    last = newer / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:2000])
    os.utime(last, (time.time() + 10, time.time() + 10))  # the newest file, but broken
    assert run_main("test", "--ckpt_path", str(last)) == 2
    err = capsys.readouterr().err
    assert str(last) in err and "not a readable checkpoint" in err and "Traceback" not in err
    # `last` is the newest run's or nothing: never the older run's last.ckpt, which a resume would train on.
    with pytest.raises(UsageError, match="the newest fit run, .*version_1, has no loadable last checkpoint "
                       r"\(its last.ckpt is not a readable checkpoint; its checkpoints: .*last.ckpt\)"):  # fmt: skip
        resolve_ckpt_path("last", runs)


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))  # a checkpoint is larger


# Python ignores SIGXFSZ, so a write past RLIMIT_FSIZE fails with EFBIG, as on a full disk. This runs
# mnistctl with the signal's default action instead: the kernel kills it in the middle of the write.
KILLED_BY_THE_WRITE = (
    "import runpy, signal; signal.signal(signal.SIGXFSZ, signal.SIG_DFL); "
    "runpy.run_module('mnistctl', run_name='__main__')"
)


@pytest.mark.parametrize("fault", ["failed", pytest.param("killed", marks=pytest.mark.slow)])  # fast tier: one
def test_full_disk_while_saving_keeps_the_previous_checkpoint(tmp_path, fault):
    two_epochs = [*TINY, "--test_after_fit", "false", "--trainer.max_epochs", "2"]
    assert run_main("fit", *two_epochs) == 0
    checkpoints = tmp_path / "runs" / "mnist" / "version_0" / "checkpoints"
    last = checkpoints / "last.ckpt"
    before = last.read_bytes()
    # Redo epoch 1 from the epoch-0 checkpoint with no room to write: its checkpoint save fails.
    (epoch0,) = checkpoints.glob("epoch00-*.ckpt")
    command = ["-m", "mnistctl"] if fault == "failed" else ["-c", KILLED_BY_THE_WRITE]
    proc = subprocess.Popen(
        [sys.executable, *command, "fit", *two_epochs, "--ckpt_path", str(epoch0)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_limit_file_size,
    )
    _, stderr = proc.communicate(timeout=300)
    assert_every_checkpoint_loads(checkpoints)
    assert last.read_bytes() == before
    if fault == "killed":
        assert proc.returncode == -signal.SIGXFSZ, stderr
        return
    assert proc.returncode == 1, stderr
    assert "could not write checkpoint" in stderr and "previous checkpoint is intact" in stderr
    assert "Traceback" not in stderr
    assert not list(last.parent.glob(".*.tmp"))


@pytest.mark.slow  # two real fits at once: 5 s of the fast tier's 5 minutes
def test_two_fits_started_together_get_their_own_folders(tmp_path):
    procs = [start_fit(tmp_path, *TINY, "--test_after_fit", "false") for _ in range(2)]
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
    runs = sorted((tmp_path / "runs" / "mnist").iterdir())
    assert [r.name for r in runs] == ["version_0", "version_1"]
    for run in runs:
        assert (run / "config.yaml").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
        assert len([r for r in (run / "metrics.csv").read_text().splitlines() if r]) >= 2


def start_sweep(cwd: Path, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mnistctl", "sweep", *overrides, *SWEEP_TINY],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_two_sweeps_started_together_never_share_a_folder(tmp_path):
    # Two into the default dated folder (same second: the second one gets <date>_<time>_1) ...
    dated = [start_sweep(tmp_path, f"seed={seed}") for seed in (1, 2)]
    # ... and two into one named folder: exactly one may have it.
    named = [start_sweep(tmp_path, f"seed={seed}", "hydra.sweep.dir=shared") for seed in (3, 4)]
    results = [(proc.returncode, stderr) for proc in dated + named for _, stderr in [proc.communicate(timeout=600)]]
    assert [rc for rc, _ in results[:2]] == [0, 0], results[:2]
    folders = sorted((tmp_path / "sweeps").iterdir())
    assert len(folders) == 2
    seeds = sorted(read_csv(folder / "summary.csv")[0]["overrides"].split()[0] for folder in folders)
    assert seeds == ["seed=1", "seed=2"]
    assert sorted(rc for rc, _ in results[2:]) == [0, 2], results[2:]
    loser = next(stderr for rc, stderr in results[2:] if rc == 2)
    assert "already holds a sweep" in loser and "--resume" in loser
    (row,) = read_csv(tmp_path / "shared" / "summary.csv")
    assert row["status"] == "completed" and row["overrides"].split()[0] in ("seed=3", "seed=4")


def processes_in(folder: Path) -> list[int]:
    """PIDs whose working folder is `folder` or below it (a sweep job's fit runs in its job folder)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and Path(os.readlink(proc / "cwd")).is_relative_to(folder):
                pids.append(int(proc.name))
        except OSError:  # gone, or not ours to read
            continue
    return pids


@pytest.mark.slow
@pytest.mark.parametrize(
    "launcher",
    [[], ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], ["hydra/launcher=submitit_local"]],
    ids=["basic", "joblib", "submitit_local"],
)
def test_a_killed_sweep_leaves_no_job_processes_behind(tmp_path, launcher):
    """The bug (submitit_local): a job watched its parent, which for submitit_local is submitit's controller
    process, not the sweep: after kill -9 of the sweep the fit trained on to its end."""
    sweep_dir = tmp_path / "s"
    long_jobs = ["seed=1,2", "trainer.max_epochs=50", "trainer.limit_val_batches=2", f"hydra.sweep.dir={sweep_dir}"]
    long_jobs.append(SWEEP_ON_CPU)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mnistctl", "sweep", *long_jobs, *launcher],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(sweep_dir / "0" / "runs" / "mnist" / "version_0" / "config.yaml", proc)  # job 0's fit is training
        assert processes_in(sweep_dir / "0"), "no fit process found in the job folder"
    finally:
        proc.kill()  # SIGKILL to the sweep process alone: it cannot clean up after itself
        proc.wait()
    deadline = time.monotonic() + 30
    while processes_in(sweep_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = processes_in(sweep_dir)
    for pid in left:  # a failing run must not leave fits training for the rest of the suite
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert left == [], "job processes outlived the killed sweep"
