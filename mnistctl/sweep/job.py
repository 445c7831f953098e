"""One sweep job: write the composed config as a LightningCLI YAML and run `mnistctl fit` on it.

    cd sweeps/<time>/<job> && mnistctl fit --config job.yaml     # what each job runs, by hand

Hydra calls `run_job` once per job, in the sweep process (basic launcher), in a worker process
(joblib) or on a cluster node (submitit); it is a module-level function so it pickles. The job's
folder gets job.yaml (the LightningCLI config, num_threads included), job.json (overrides, status,
metrics, error), stdout.log/stderr.log of the fit and runs/<name>/version_0/ (the fit's run folder).
A job whose overrides already completed (or were pruned) in this sweep folder is not re-run; one that
was interrupted continues from its last.ckpt. Which folder is the job's is decided by its key
(job_folder.py). The fit is forked from the warm-start server when the sweep runs one (warm_start.py),
else a new interpreter; a search job's fit also reports to its Optuna trial (trial_reporter.py).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from mnistctl import layout
from mnistctl.atomic import atomic_write
from mnistctl.layout import JOB_CONFIG
from mnistctl.process_alive import process_alive, process_record
from mnistctl.sweep import requeue, warm_start
from mnistctl.sweep.job_folder import (
    claim_job_dir,
    find_job_dir,
    job_key,
    job_number,
    last_checkpoint,
    read_record,
    write_record,
)
from mnistctl.sweep.metrics import run_metrics

TRIAL_ENV = "MNISTCTL_OPTUNA_TRIAL"  # read by the fit's trial_reporter.TrialReporter

log = logging.getLogger(__name__)
FINISHED = ("completed", "pruned")  # not run again on --resume
SWEEP_PID_ENV = "MNISTCTL_SWEEP_PID"  # set by `mnistctl sweep`, inherited by the launcher's worker processes


class JobResult(float):
    """The job's best val/acc (NaN when it failed), what Optuna maximises; `.record` is its job.json."""

    def __new__(cls, record: dict) -> JobResult:
        value = record.get("val_acc")
        result = super().__new__(cls, math.nan if value is None else value)
        result.record = record
        return result

    def __reduce__(self):  # pickles through joblib and submitit with its record
        return JobResult, (self.record,)


def threads_per_job(parallel: int) -> int:
    """CPU threads for one job: its share of the cores, or what SLURM allocated to it."""
    for name in ("SLURM_CPUS_PER_TASK", "SLURM_JOB_CPUS_PER_NODE"):
        match = re.match(r"\d+", os.environ.get(name, ""))
        if match and "SLURM_JOB_ID" in os.environ:
            return max(1, int(match.group()))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // max(1, parallel))


def lightning_config(cfg, threads: int, launch_dir: Path) -> dict:
    """The composed Hydra config as a LightningCLI config tree for this job's folder."""
    from omegaconf import OmegaConf

    tree = OmegaConf.to_container(cfg, resolve=True)
    tree.pop("seed", None)  # a sweep key: already resolved into seed_everything
    tree.pop("pruner", None)  # a sweep key: the search's pruner (trial_reporter.py), not the fit's
    tree = {"seed_everything": tree.pop("seed_everything"), **tree}  # first, as in `mnistctl fit --print_config`
    if tree.get("num_threads") is None:
        tree["num_threads"] = threads
    loggers = tree["trainer"].get("logger")
    for logger in loggers if isinstance(loggers, list) else [loggers]:
        if isinstance(logger, dict) and "save_dir" in (logger.get("init_args") or {}):
            logger["init_args"]["save_dir"] = layout.RUNS_ROOT  # relative: the fit runs in the job folder
    # Paths the user gave relative to where the sweep started, made absolute for the job folder.
    for section, key in (("data", "data_dir"), ("data", "predict_dir"), ("predictions", "path")):
        value = (tree.get(section) or {}).get(key)
        if value and isinstance(value, str) and not Path(value).expanduser().is_absolute():
            tree[section][key] = str(launch_dir / value)
    return tree


def job_yaml(tree: dict, job_name: str, sweep_dir: Path | str, overrides: list[str]) -> str:
    """The text of a job's job.yaml: a LightningCLI config, with how to re-run it by hand on top."""
    head = (
        f"# mnistctl sweep job {job_name} of {sweep_dir}: {' '.join(overrides) or '(no overrides)'}\n"
        f"# Re-run by hand: cd {Path(sweep_dir) / job_name} && mnistctl fit --config {JOB_CONFIG}\n"
    )
    return head + yaml.safe_dump(tree, sort_keys=False)


def run_job(cfg, parallel: int = 1) -> JobResult:
    """Hydra's task function: one `mnistctl fit --config job.yaml` subprocess in the job's folder."""
    from hydra.core.hydra_config import HydraConfig

    hydra = HydraConfig.get()
    sweep_dir = Path(hydra.sweep.dir).resolve()
    overrides = list(hydra.overrides.task)
    key = job_key(overrides)
    job_dir = find_job_dir(sweep_dir, key)  # this very job ran before: its folder, and only its record
    previous = (read_record(job_dir) if job_dir is not None else None) or {}
    if previous.get("status") in FINISHED:
        log.info("job %s (%s) already %s: skipped", job_dir.name, key, previous["status"])
        return JobResult(previous)
    threads = threads_per_job(parallel)
    tree = lightning_config(cfg, threads, Path(hydra.runtime.cwd))
    command = [sys.executable, "-m", "mnistctl", "fit", "--config", JOB_CONFIG]
    # An interrupted job continues from its last.ckpt; a failed one starts again in a new run folder.
    resume_from = last_checkpoint(job_dir) if previous.get("status") in ("running", "interrupted") else None
    if resume_from is not None:
        command += ["--ckpt_path", str(resume_from.relative_to(job_dir))]
    trial = _trial(hydra, cfg, key)
    record = {
        "job": None,
        "trial": trial["number"] if trial else None,
        "overrides": overrides,
        "key": key,
        "status": "running",
        "threads": tree["num_threads"],
        "command": command[2:],
        "resumed_from": str(resume_from.relative_to(job_dir)) if resume_from else None,
        "attempts": previous.get("attempts", 0) + 1,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "error": None,
        **requeue.where(),  # host and pid, or the SLURM job: what `mnistctl sweep --status` asks about
    }
    if job_dir is None:
        job_dir = claim_job_dir(sweep_dir, Path(hydra.runtime.output_dir), int(hydra.job.num), record)
    record["job"] = job_number(job_dir)
    write_record(job_dir, record)
    with atomic_write(job_dir / JOB_CONFIG) as f:
        f.write(job_yaml(tree, job_dir.name, sweep_dir, overrides))
    resuming = f" (resuming from {record['resumed_from']})" if resume_from else ""
    log.info("job %s: %s%s", record["job"], " ".join(overrides) or "(no overrides)", resuming)
    started = time.perf_counter()
    earlier = (previous.get("wall_s") or 0.0) if resume_from else 0.0  # a resumed job adds up its attempts
    try:
        returncode, stderr = _fit(command, job_dir, tree["num_threads"], _trial_env(trial), record)
    except BaseException as stop:  # Ctrl-C, or submitit requeueing the job on SLURM: the job stays resumable
        record["status"], record["wall_s"] = "interrupted", round(earlier + time.perf_counter() - started, 2)
        record["error"] = requeue.job_process_stop_reason(stop)
        write_record(job_dir, record)
        raise
    record["wall_s"] = round(earlier + time.perf_counter() - started, 2)
    record.update(run_metrics(job_dir, sweep_dir))
    record["status"] = status = requeue.outcome(returncode)  # a fit stopped by a signal is interrupted, never failed
    if trial and returncode == 0:
        from mnistctl.sweep.study import pruned_after

        record["pruned_after_epoch"] = pruned_after(trial["storage"], trial["trial_id"])
        if record["pruned_after_epoch"] is not None:
            record["status"] = status = "pruned"
    record["returncode"] = returncode
    if status == "interrupted":
        record["error"] = requeue.stop_reason(returncode)
    elif status == "failed":
        record["error"] = _error_line(returncode, stderr)
    write_record(job_dir, record)
    if status == "interrupted":
        requeue.end_interrupted_attempt(returncode)  # on SLURM: no result; the requeued attempt (or --resume) resumes
    outcome = f"best val/acc {record['val_acc']:.4f}" if record["val_acc"] is not None else record["error"] or ""
    log.info("job %s %s in %.1f s: %s", record["job"], record["status"], record["wall_s"], outcome)
    return JobResult(record)


def _trial(hydra, cfg, key: str) -> dict | None:
    """The Optuna trial this job is (study.py tagged it with the job's key), for the fit to report to."""
    storage = hydra.sweeper.get("storage") if hydra.runtime.choices.get("hydra/sweeper") == "optuna" else None
    if not storage or not hydra.sweeper.get("study_name"):
        return None
    from mnistctl.sweep.study import find_trial  # optuna: a grid sweep's jobs do without its 1.4 s import

    found = find_trial(storage, hydra.sweeper.study_name, key)
    if found is None:
        return None
    pruner = OmegaConf.to_container(cfg.pruner, resolve=True) if cfg.get("pruner") else None
    return {"storage": storage, "trial_id": found[0], "number": found[1], "pruner": pruner}


def _trial_env(trial: dict | None) -> dict:
    if trial is None:
        return {}
    return {TRIAL_ENV: json.dumps({k: trial[k] for k in ("storage", "trial_id", "pruner")})}


def _fit(command: list[str], job_dir: Path, threads: int, extra_env: dict, record: dict) -> tuple[int, str]:
    """Run the fit; return its exit code and what it wrote to stderr (also appended to stderr.log). Its pid
    and how it started (warm, cold) go into the job's `record`, written to job.json at once."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1", **extra_env}
    with open(job_dir / "stdout.log", "ab") as out, open(job_dir / "stderr.log", "ab") as err:
        offset = err.tell()
        proc = warm_start.start(command, job_dir, env, out, err)  # forked from torch already imported
        if proc is None:
            proc = subprocess.Popen(
                command, cwd=job_dir, stdout=out, stderr=err, env=env, preexec_fn=_fit_process_setup
            )
        record.update(fit_pid=proc.pid, start="cold" if isinstance(proc, subprocess.Popen) else "warm")
        record["fit_process"] = process_record(proc.pid)  # started just now: after the fit's own start
        write_record(job_dir, record)  # the fit's pid, for --status and for whoever has to stop it
        try:
            returncode = _wait(proc)
        except BaseException:  # Ctrl-C: the fit gets SIGINT too; give it time to save interrupted.ckpt
            _stop(proc)
            raise
    with open(job_dir / "stderr.log", "rb") as err:
        err.seek(offset)
        return returncode, err.read().decode(errors="replace")


def _wait(proc: subprocess.Popen) -> int:
    """Wait for the fit. In a launcher's worker process (joblib, submitit_local), also watch the sweep: when
    it is killed the worker is not, so the worker stops the fit and exits; the job stays resumable."""
    sweep = _sweep_to_watch()
    while True:
        try:
            return proc.wait(timeout=1 if sweep else None)
        except subprocess.TimeoutExpired:
            if process_alive(*sweep) is False:  # the sweep process is gone (killed, even with SIGKILL)
                _stop(proc)
                os._exit(1)


def _sweep_to_watch() -> tuple[str, int, float] | None:
    """(host, pid, a time after it started) of the sweep process this job must not outlive, or None.

    A job in the sweep process itself (the basic launcher) needs no watch; a SLURM job outlives its sweep
    by design (--detach, a requeue). Every other worker watches the sweep's pid, not its own parent: a
    submitit_local job's parent is submitit's controller process, which outlives a killed sweep too."""
    sweep_pid = int(os.environ.get(SWEEP_PID_ENV, "0"))
    if not sweep_pid or sweep_pid == os.getpid() or requeue.on_slurm():
        return None
    return socket.gethostname(), sweep_pid, time.time()  # a process that reuses the pid later starts after it


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM, as SLURM does: the fit saves interrupted.ckpt and exits; SIGKILL if it takes over 30 s."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _error_line(returncode: int, stderr: str) -> str:
    """A failed fit's error: the last line of its stderr (mnistctl prints its errors as one line)."""
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1][:500] if lines else f"exit code {returncode}"


def _fit_process_setup() -> None:
    _die_with_parent()
    requeue.leave_preemption_to_the_job()  # on SLURM: the job process handles USR2, the fit gets SIGTERM


def _die_with_parent() -> None:
    """In the fit process: receive SIGTERM when the job process dies, so a killed sweep leaves no orphans."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
