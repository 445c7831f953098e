"""`mnistctl sweep`: real Hydra multiruns of real `mnistctl fit` jobs on real MNIST, as a user runs them.

    .venv/bin/python -m pytest tests/test_sweep.py            # fast checks and the slow real sweeps

Fast tier: --help, --dry-run (no torch, under a second of CPU for two jobs, every bad override reported per
job), and one real two-job sweep through the basic launcher (run_job, job.json, summary.csv/json, the table
and the plot). Bad overrides and bad sweep folders are in test_bad_input.py, with every other bad input.
Slow tier (`slow`): the joblib launcher, a failing job beside a good one, kill-and-resume, a job re-run by
hand, --cfg job, inline sweeper params, Optuna with two trials and submitit_local; each job trains a few batches.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import SWEEP_ON_CPU, kill_sweep_when, read_csv, run_cli, run_main
from conftest import SWEEP_TINY as TINY

pytestmark = pytest.mark.usefixtures("sweep_tree")  # the generated Hydra tree, built once per session
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CORES = len(os.sched_getaffinity(0))


def jobs_of(sweep_dir: Path) -> dict[int, dict]:
    return {int(p.parent.name): json.loads(p.read_text()) for p in sweep_dir.glob("*/job.json")}


def sweep(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return run_cli("sweep", *args, timeout=timeout)


# -- fast: help, dry run, bad input -----------------------------------------------------------------


def test_help_lists_options_groups_and_launchers():
    started = time.perf_counter()
    done = sweep("--help")
    assert done.returncode == 0, done.stderr
    assert time.perf_counter() - started < 3
    for text in ("--dry-run", "--summary DIR", "--resume DIR", "ce, ce_smooth, mse, nll", "adam, adamw, sgd"):
        assert text in done.stdout
    for launcher in ("basic", "joblib", "submitit_local", "submitit_slurm", "optuna"):
        assert launcher in done.stdout


def test_dry_run_expands_jobs_fast_without_torch(tmp_path):
    args = ["criterion=ce,mse", "optimizer=adam,sgd", "model.dropout_ratio=0.1,0.3", "seed=range(1,3)"]
    command = [sys.executable, "-m", "mnistctl", "sweep", "--dry-run", *args]
    done = subprocess.run([command[0], "-X", "importtime", *command[1:]], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "hydra" in imported and "mnistctl.sweep.plan" in imported  # the importtime output is real
    heavy = sorted(m for m in imported if m.split(".")[0] in ("torch", "pytorch_lightning", "lightning", "torchvision"))
    assert heavy == []
    jobs = [line.split(None, 1)[1] for line in done.stdout.splitlines() if line.strip().startswith("#")]
    assert len(jobs) == 16 and len(set(jobs)) == 16
    assert jobs[0] == "criterion=ce optimizer=adam model.dropout_ratio=0.1 seed=1"
    assert jobs[-1] == "criterion=mse optimizer=sgd model.dropout_ratio=0.3 seed=2"
    assert "error" not in done.stdout
    assert not (tmp_path / "sweeps").exists()
    # CPU time of the whole command, interpreter start included (the machine is shared: wall time says more
    # about the neighbours). Each job is composed by Hydra as the real sweep composes it: ~0.1 s a job.
    for given, budget in ((["criterion=ce,mse"], 1.0), (args, 4.0)):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert subprocess.run([*command[:5], *given], capture_output=True).returncode == 0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        assert cpu < budget, f"dry run of {given} took {cpu:.2f} s of CPU"


def test_dry_run_reports_each_bad_job_and_exits_2(tmp_path):
    done = sweep(
        "--dry-run", "criterion=ce,foo,mse", "trainer.max_epoch=2", "model.criterion.init_args.label_smoothing=0.1"
    )
    assert done.returncode == 2
    blocks = done.stdout.split("\n     #")[1:]
    assert len(blocks) == 3
    assert "unknown key trainer.max_epoch; did you mean trainer.max_epochs?" in blocks[0]
    assert "criterion has no option foo (options: ce, ce_smooth, mse, nll)" in blocks[1]
    assert "torch.nn.MSELoss has no argument label_smoothing" in blocks[2]
    assert "has no argument label_smoothing" not in blocks[0]  # CrossEntropyLoss takes it
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("mnistctl: error: bad override: unknown key")
    assert not (tmp_path / "sweeps").exists()


def test_dry_run_of_optuna_shows_the_search_space():
    done = sweep("--dry-run", "search=lr_dropout", "hydra.sweeper.n_trials=3", *TINY)
    assert done.returncode == 0, done.stderr
    assert "optuna sweeper, 3 trials" in done.stdout
    assert "search optimizer.init_args.lr: tag(log, interval(0.0003, 0.03))" in done.stdout
    assert "search model.dropout_ratio: interval(0.0, 0.5)" in done.stdout


# -- a real two-job sweep, in the fast tier: the sweep's core belongs in the inner loop ----------------


@pytest.fixture(scope="module")
def two_job_sweep(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess, float]:
    """`mnistctl sweep criterion=ce,mse` with the basic launcher, run once for the tests below."""
    root = tmp_path_factory.mktemp("two_job_sweep")
    started = time.perf_counter()
    done = run_cli("sweep", "criterion=ce,mse", *TINY, "hydra.sweep.dir=basic", cwd=root)
    return root / "basic", done, time.perf_counter() - started


def test_two_job_sweep_runs_one_fit_per_folder(two_job_sweep):
    sweep_dir, done, _ = two_job_sweep
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = jobs_of(sweep_dir)
    assert sorted(jobs) == [0, 1]
    for number, criterion in ((0, "torch.nn.CrossEntropyLoss"), (1, "torch.nn.MSELoss")):
        job, folder = jobs[number], sweep_dir / str(number)
        assert job["status"] == "completed" and job["error"] is None
        assert job["overrides"][0] == ("criterion=ce" if number == 0 else "criterion=mse")
        config = yaml.safe_load((folder / "job.yaml").read_text())
        assert "_target_" not in (folder / "job.yaml").read_text()
        assert config["model"]["criterion"]["class_path"] == criterion
        assert config["num_threads"] == CORES  # the basic launcher runs one job at a time
        assert config["trainer"]["max_epochs"] == 1 and config["seed_everything"] == 42
        assert [lg["init_args"]["save_dir"] for lg in config["trainer"]["logger"]] == ["runs", "runs"]
        (run,) = (folder / "runs" / "mnist").glob("version_*")  # the fit's run folder is in the job's folder
        metrics = read_csv(run / "metrics.csv")
        best_val = max(float(r["val/acc"]) for r in metrics if r["val/acc"])
        assert job["val_acc"] == pytest.approx(best_val) and 0 < job["val_acc"] <= 1
        assert job["test_acc"] == pytest.approx(float([r["test/acc"] for r in metrics if r["test/acc"]][-1]))
        assert job["epochs"] == 1 and job["wall_s"] > 0
        assert (sweep_dir / job["best_ckpt"]).is_file() and job["best_ckpt"].startswith(f"{number}/runs/mnist/")
        assert yaml.safe_load((run / "config.yaml").read_text())["model"]["criterion"]["class_path"] == criterion


def test_two_job_sweep_writes_summary_table_and_plot(two_job_sweep, capsys):
    sweep_dir, done, _ = two_job_sweep
    jobs = jobs_of(sweep_dir)
    rows = read_csv(sweep_dir / "summary.csv")
    assert [int(r["job"]) for r in rows] == sorted(jobs, key=lambda n: -jobs[n]["val_acc"])  # best val/acc first
    for row in rows:
        job = jobs[int(row["job"])]
        assert row["status"] == "completed" and float(row["val_acc"]) == pytest.approx(job["val_acc"])
        assert float(row["test_acc"]) == pytest.approx(job["test_acc"]) and row["best_ckpt"] == job["best_ckpt"]
        assert row["overrides"] == " ".join(job["overrides"])
    summary = json.loads((sweep_dir / "summary.json").read_text())
    assert [j["job"] for j in summary["jobs"]] == [int(r["job"]) for r in rows]
    assert sorted(c["config"].split()[0] for c in summary["configs"]) == ["criterion=ce", "criterion=mse"]
    png = (sweep_dir / "val_curves.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 10_000
    from PIL import Image

    assert Image.open(sweep_dir / "val_curves.png").size == (900, 550)
    # The printed table: sorted by val/acc, varying overrides per row, the shared ones in the caption.
    lines = [line for line in done.stdout.splitlines() if line.startswith("│")]
    assert [line.split("│")[1].strip() for line in lines] == [r["job"] for r in rows]
    assert "criterion=mse" in lines[[r["job"] for r in rows].index("1")]
    (caption,) = [line for line in done.stdout.splitlines() if "every job: " in line]
    assert "trainer.limit_test_batches=2" in caption and "criterion" not in caption
    # --summary re-prints the same table, read-only.
    before = (sweep_dir / "summary.csv").stat().st_mtime_ns
    assert run_main("sweep", "--summary", str(sweep_dir)) == 0
    out = capsys.readouterr().out
    assert [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")] == [r["job"] for r in rows]
    assert (sweep_dir / "summary.csv").stat().st_mtime_ns == before


# -- slow: more real sweeps ---------------------------------------------------------------------------


@pytest.mark.slow
def test_cfg_job_printed_what_the_sweep_then_wrote(two_job_sweep):
    sweep_dir, _, _ = two_job_sweep
    printed = run_cli("sweep", "--cfg", "job", "criterion=ce,mse", *TINY, "hydra.sweep.dir=basic", cwd=sweep_dir.parent)
    assert printed.returncode == 0, printed.stderr
    written = [(sweep_dir / str(n) / "job.yaml").read_text() for n in (0, 1)]
    assert printed.stdout == "---\n".join(written)


@pytest.mark.slow
def test_inline_params_and_a_shared_subdir_run_each_job_in_its_own_folder(tmp_path):
    # hydra.sweep.subdir=same gives both jobs one folder: the second must not be skipped with the first's
    # result (issue 9.8); the params written inline sweep like model.dropout_ratio=0.1,0.3 (issue 12.4).
    params = 'hydra.sweeper.params={model.dropout_ratio:"0.1,0.3"}'
    done = sweep(params, *TINY, "hydra.sweep.dir=s", "hydra.sweep.subdir=same")
    assert done.returncode == 0, done.stderr[-3000:]
    records = {p.parent.name: json.loads(p.read_text()) for p in (tmp_path / "s").glob("*/job.json")}
    assert sorted(records) == ["1", "same"]
    assert [records[n]["overrides"][0] for n in ("same", "1")] == ["model.dropout_ratio=0.1", "model.dropout_ratio=0.3"]
    for name, dropout in (("same", 0.1), ("1", 0.3)):
        assert records[name]["status"] == "completed" and records[name]["job"] == (1 if name == "1" else name)
        assert yaml.safe_load((tmp_path / "s" / name / "job.yaml").read_text())["model"]["dropout_ratio"] == dropout
        (run,) = (tmp_path / "s" / name / "runs" / "mnist").glob("version_*")
        assert records[name]["best_ckpt"].startswith(f"{name}/runs/mnist/")
    assert "already completed: skipped" not in done.stdout + done.stderr
    rows = read_csv(tmp_path / "s" / "summary.csv")
    assert sorted(r["overrides"].split()[0] for r in rows) == ["model.dropout_ratio=0.1", "model.dropout_ratio=0.3"]
    saved = json.loads((tmp_path / "s" / "sweep.json").read_text())["overrides"]
    assert saved[0] == "model.dropout_ratio=0.1,0.3"  # what --resume re-runs


@pytest.mark.slow
def test_a_job_rerun_by_hand_from_its_folder_gives_the_same_result(two_job_sweep):
    sweep_dir, _, _ = two_job_sweep
    job = jobs_of(sweep_dir)[0]
    done = run_cli("fit", "--config", "job.yaml", cwd=sweep_dir / "0")
    assert done.returncode == 0, done.stderr[-3000:]
    rerun = read_csv(sweep_dir / "0" / "runs" / "mnist" / "version_1" / "metrics.csv")
    assert max(float(r["val/acc"]) for r in rerun if r["val/acc"]) == pytest.approx(job["val_acc"], abs=1e-6)
    assert float([r["test/acc"] for r in rerun if r["test/acc"]][-1]) == pytest.approx(job["test_acc"], abs=1e-6)


@pytest.mark.slow
def test_joblib_runs_two_seeds_at_once_and_reports_mean_and_std(tmp_path):
    done = sweep("seed=1,2", *TINY, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in done.stdout + done.stderr
    (sweep_dir,) = (tmp_path / "sweeps").iterdir()
    jobs = jobs_of(sweep_dir)
    assert sorted(jobs) == [0, 1] and all(j["status"] == "completed" for j in jobs.values())
    for number in (0, 1):
        config = yaml.safe_load((sweep_dir / str(number) / "job.yaml").read_text())
        assert config["num_threads"] == max(1, CORES // 2) and jobs[number]["threads"] == config["num_threads"]
        assert config["seed_everything"] == number + 1 and "seed" not in config
    # Both fits ran at the same time: each started (job.yaml) before the other finished (job.json).
    spans = [
        (os.path.getmtime(sweep_dir / f"{n}/job.yaml"), os.path.getmtime(sweep_dir / f"{n}/job.json")) for n in (0, 1)
    ]
    assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1]
    # The two seeds are one configuration: its mean and standard deviation across seeds.
    (config,) = json.loads((sweep_dir / "summary.json").read_text())["configs"]
    accuracies = [jobs[0]["val_acc"], jobs[1]["val_acc"]]
    assert config["n"] == 2 and sorted(config["jobs"]) == [0, 1]
    assert config["val_acc_mean"] == pytest.approx(statistics.fmean(accuracies))
    assert config["val_acc_std"] == pytest.approx(statistics.stdev(accuracies))
    assert "per configuration, across seeds" in done.stdout
    assert len(read_csv(sweep_dir / "summary.csv")) == 2


@pytest.mark.slow
def test_a_failing_job_is_recorded_and_the_others_still_run(tmp_path):
    # A folder without MNIST: a valid value (a path) that only the job's fit can find wrong. Bad values the
    # dry run can see (model.dropout_ratio=2) stop the sweep before it starts: test_sweep_dry_run.py.
    done = sweep("data.data_dir=nowhere,null", *TINY)
    assert done.returncode == 1
    assert "1 of 2 jobs did not complete" in done.stderr
    (sweep_dir,) = (tmp_path / "sweeps").iterdir()
    jobs = jobs_of(sweep_dir)
    assert jobs[0]["status"] == "failed" and jobs[0]["returncode"] != 0
    assert f"no MNIST files in --data.data_dir {tmp_path / 'nowhere'}" in jobs[0]["error"]
    assert jobs[0]["val_acc"] is None and jobs[0]["best_ckpt"] is None
    assert jobs[1]["status"] == "completed" and jobs[1]["val_acc"] > 0
    rows = read_csv(sweep_dir / "summary.csv")
    assert [(r["job"], r["status"]) for r in rows] == [("1", "completed"), ("0", "failed")]
    assert "no MNIST files in --data.data_dir" in rows[1]["error"]
    assert "failed" in done.stdout and "no MNIST files" in done.stdout


@pytest.mark.slow
def test_resume_skips_completed_jobs_and_continues_an_interrupted_one(tmp_path):
    args = ["model.dropout_ratio=0.1,0.2", "trainer.max_epochs=2", "trainer.limit_train_batches=10"]
    args += ["trainer.limit_val_batches=2", "trainer.limit_test_batches=2", SWEEP_ON_CPU, "hydra.sweep.dir=s"]
    sweep_dir = tmp_path / "s"

    def second_job_past_one_epoch(sweep_dir: Path) -> bool:  # job 0 done, job 1 has finished its first epoch
        first = jobs_of(sweep_dir).get(0, {})
        return first.get("status") == "completed" and bool(
            list(sweep_dir.glob("1/runs/*/version_0/checkpoints/last.ckpt"))
        )

    kill_sweep_when(args, sweep_dir, second_job_past_one_epoch)
    jobs = jobs_of(sweep_dir)
    assert jobs[0]["status"] == "completed"
    assert jobs[1]["status"] == "running", "job 1 finished before the kill; the test needs it interrupted"
    # Everything job 0 wrote, except job.log: Hydra's log of the job, where the resume notes the skip.
    first_files = {p: p.stat().st_mtime_ns for p in (sweep_dir / "0").rglob("*") if p.name != "job.log"}

    done = sweep("--resume", str(sweep_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "job 0 (model.dropout_ratio=0.1 " in done.stdout and "already completed: skipped" in done.stdout
    # Job 0 was not re-run: none of its files changed, and it still has its one run folder.
    assert {p: p.stat().st_mtime_ns for p in (sweep_dir / "0").rglob("*") if p.name != "job.log"} == first_files
    assert [p.name for p in (sweep_dir / "0" / "runs" / "mnist").iterdir()] == ["version_0"]
    assert "already completed: skipped" in (sweep_dir / "0" / "job.log").read_text()
    jobs = jobs_of(sweep_dir)
    assert jobs[1]["status"] == "completed" and jobs[1]["attempts"] == 2
    assert jobs[1]["resumed_from"] == "runs/mnist/version_0/checkpoints/last.ckpt"
    assert [p.name for p in (sweep_dir / "1" / "runs" / "mnist").iterdir()] == ["version_0"]  # same run folder
    assert jobs[1]["epochs"] == 2 and jobs[1]["test_acc"] is not None
    last = sweep_dir / "1" / "runs" / "mnist" / "version_0" / "checkpoints" / "last.ckpt"
    assert f"Restoring states from the checkpoint path at {last}" in (sweep_dir / "1" / "stderr.log").read_text()
    rows = read_csv(sweep_dir / "summary.csv")
    assert sorted(r["job"] for r in rows) == ["0", "1"] and all(r["status"] == "completed" for r in rows)


@pytest.mark.slow
def test_optuna_maximises_the_val_accuracy_the_jobs_return(tmp_path):
    done = sweep("search=lr_dropout", "hydra.sweeper.n_trials=2", *TINY, "hydra.sweep.dir=opt")
    assert done.returncode == 0, done.stderr[-3000:]
    sweep_dir = tmp_path / "opt"
    jobs = jobs_of(sweep_dir)
    assert sorted(jobs) == [0, 1] and all(j["status"] == "completed" for j in jobs.values())
    for job in jobs.values():
        sampled = dict(o.split("=", 1) for o in job["overrides"] if o.startswith(("optimizer.", "model.")))
        assert 0.0003 <= float(sampled["optimizer.init_args.lr"]) <= 0.03
        assert 0.0 <= float(sampled["model.dropout_ratio"]) <= 0.5
        config = yaml.safe_load((sweep_dir / str(job["job"]) / "job.yaml").read_text())
        assert config["optimizer"]["init_args"]["lr"] == pytest.approx(float(sampled["optimizer.init_args.lr"]))
    assert jobs[0]["overrides"] != jobs[1]["overrides"]
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["best_value"] == pytest.approx(max(j["val_acc"] for j in jobs.values()))
    assert len(read_csv(sweep_dir / "summary.csv")) == 2
    # Resumed, the study in optuna.db already holds both trials: none is asked again and nothing trains.
    again = sweep("--resume", str(sweep_dir))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 trials finished, 0 to go" in again.stdout and "Launching" not in again.stdout
    assert jobs_of(sweep_dir) == jobs and len(read_csv(sweep_dir / "summary.csv")) == 2


@pytest.mark.slow
def test_submitit_local_launcher_runs_a_job(tmp_path):
    done = sweep(*TINY, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", "hydra.sweep.dir=sub")
    assert done.returncode == 0, done.stderr[-3000:]
    sweep_dir = tmp_path / "sub"
    jobs = jobs_of(sweep_dir)
    assert list(jobs) == [0] and jobs[0]["status"] == "completed" and jobs[0]["val_acc"] > 0
    assert list((sweep_dir / ".submitit").iterdir())  # submitit's own job folder: it really ran the job
    assert yaml.safe_load((sweep_dir / "0" / "job.yaml").read_text())["num_threads"] == CORES
