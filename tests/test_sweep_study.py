"""The Optuna search's study in <sweep>/optuna.db: persisted, resumed from, pruned; its bad inputs.

    .venv/bin/python -m pytest -q tests/test_sweep_study.py            # add -m "not slow" for the fast ones

Fast: bad storage, a missing or corrupt database on --resume, an unknown pruner or a bad pruner argument:
one line, exit 2, nothing created or changed. Slow (real tiny searches, about a minute each): the study and
the summary agree trial by trial; a resumed search asks only for the trials not finished; a killed one
continues its interrupted trial from its last.ckpt; hopeless learning rates are pruned after one epoch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from conftest import SWEEP_ON_CPU, kill_sweep_when, read_csv, run_cli, run_main
from conftest import SWEEP_TINY as TINY

pytestmark = pytest.mark.usefixtures("sweep_tree")
SEARCH = ["search=lr_dropout", *TINY]


def jobs_of(sweep_dir: Path) -> dict[int, dict]:
    return {int(p.parent.name): json.loads(p.read_text()) for p in sweep_dir.glob("*/job.json")}


def study_of(sweep_dir: Path, name: str = "mnist_lr_dropout") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{sweep_dir / 'optuna.db'}")


def second_job_past_one_epoch(sweep_dir: Path) -> bool:
    first = jobs_of(sweep_dir).get(0, {})
    return first.get("status") == "completed" and bool(list(sweep_dir.glob("1/runs/*/version_0/checkpoints/last.ckpt")))


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# -- fast: how a trial is told its job's end ----------------------------------------------------------


def test_a_trial_whose_fit_was_stopped_is_not_complete_and_is_asked_again_once(tmp_path):
    """The bug: a job whose fit a signal stopped (kill -9 of the fit) was told COMPLETE with its partial score:
    the sampler learnt from it and --resume, counting it finished, never continued it."""
    from hydra.core.utils import JobReturn, JobStatus

    from mnistctl.sweep.job import JobResult
    from mnistctl.sweep.study import _tell, finished, reopen_interrupted

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'optuna.db'}", direction="maximize")
    space = {"model.dropout_ratio": optuna.distributions.UniformDistribution(0.0, 0.5)}
    stopped, done = study.ask(space), study.ask(space)
    for trial, status in ((stopped, "interrupted"), (done, "completed")):
        result = JobResult({"status": status, "val_acc": 0.459})
        assert _tell(study, trial, JobReturn(status=JobStatus.COMPLETED, _return_value=result)) is None
    first, second = study.get_trials()
    assert (first.state, first.value, finished(first)) == (TrialState.FAIL, None, False)
    assert (second.state, second.value, finished(second)) == (TrialState.COMPLETE, 0.459, True)
    # The next --resume asks it again with the same params (its job continues from last.ckpt); later ones don't.
    assert reopen_interrupted(study) == 1
    again = study.ask(space)
    assert again.params == first.params
    study.tell(again, 0.9)
    assert reopen_interrupted(study) == 0


# -- fast: bad input ---------------------------------------------------------------------------------


def test_a_storage_that_cannot_be_opened_is_one_line_and_creates_nothing(tmp_path, capsys):
    assert run_main("sweep", *SEARCH, "hydra.sweeper.storage=nosuchdb://x/y", "hydra.sweep.dir=s") == 2
    line = error_line(capsys)
    assert line.startswith("mnistctl: error: hydra.sweeper.storage=nosuchdb://x/y cannot be opened"), line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_resume_of_a_search_without_its_database_is_refused_untouched(tmp_path, capsys, damage):
    sweep_dir = tmp_path / "s"
    sweep_dir.mkdir()
    (sweep_dir / "sweep.json").write_text(json.dumps({"overrides": SEARCH}))
    if damage == "corrupt":
        (sweep_dir / "optuna.db").write_bytes(b"this is not a database" * 100)
    before = {p.name: p.read_bytes() for p in sweep_dir.iterdir()}
    assert run_main("sweep", "--resume", str(sweep_dir)) == 2
    line = error_line(capsys)
    if damage == "missing":
        assert line == (
            f"mnistctl: error: {sweep_dir}/optuna.db is missing: --resume of a search continues the study its "
            "sweep kept there; start a new sweep instead"
        )
    else:
        assert line.startswith(f"mnistctl: error: hydra.sweeper.storage=sqlite:///{sweep_dir}/optuna.db cannot be")
        assert "not a database" in line
    assert {p.name: p.read_bytes() for p in sweep_dir.iterdir()} == before


def test_an_unknown_pruner_and_a_bad_pruner_argument_are_one_line(tmp_path, capsys):
    assert run_main("sweep", *SEARCH, "pruner=sometimes", "hydra.sweep.dir=s") == 2
    line = error_line(capsys)
    assert "pruner=sometimes: pruner has no option sometimes (options: hyperband, median, none, percentile)" in line
    assert run_main("sweep", *SEARCH, "pruner=percentile", "pruner.percentile=150", "hydra.sweep.dir=s") == 2
    line = error_line(capsys)
    assert line.startswith("mnistctl: error: bad override: pruner PercentilePruner(percentile=150"), line
    assert "Percentile must be between 0 and 100" in line
    assert list(tmp_path.iterdir()) == []


# -- slow: real searches -----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_study_is_in_the_sweep_folder_and_resume_only_adds_the_missing_trials(tmp_path):
    done = run_cli("sweep", *SEARCH, "hydra.sweeper.n_trials=2", "pruner=none", "hydra.sweep.dir=s")
    assert done.returncode == 0, done.stderr[-3000:]
    sweep_dir = tmp_path / "s"
    study = study_of(sweep_dir)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    jobs = jobs_of(sweep_dir)
    # Each job is its trial: the value told is the job's best val/acc, the params are its overrides.
    by_trial = {j["trial"]: j for j in jobs.values()}
    assert sorted(by_trial) == [0, 1]
    for trial in study.trials:
        job = by_trial[trial.number]
        assert trial.value == pytest.approx(job["val_acc"])
        assert f"optimizer.init_args.lr={trial.params['optimizer.init_args.lr']}" in job["overrides"]
    first = {p: p.stat().st_mtime_ns for p in sweep_dir.glob("[01]/**/*") if p.name != "job.log"}

    again = run_cli("sweep", "--resume", str(sweep_dir), "hydra.sweeper.n_trials=3")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 trials finished, 1 to go" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in sweep_dir.glob("[01]/**/*") if p.name != "job.log"} == first
    study = study_of(sweep_dir)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    jobs = jobs_of(sweep_dir)
    assert sorted(j["trial"] for j in jobs.values()) == [0, 1, 2] and all(j["attempts"] == 1 for j in jobs.values())
    rows = read_csv(sweep_dir / "summary.csv")
    assert sorted(r["trial"] for r in rows) == ["0", "1", "2"]


@pytest.mark.slow
def test_a_killed_search_resumes_its_interrupted_trial_from_the_database(tmp_path):
    args = [
        *SEARCH,
        "hydra.sweeper.n_trials=3",
        "pruner=none",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=10",
    ]
    sweep_dir = tmp_path / "s"
    kill_sweep_when([*args, "hydra.sweep.dir=s"], sweep_dir, second_job_past_one_epoch)
    assert jobs_of(sweep_dir)[1]["status"] == "running", "trial 1 finished before the kill; the test needs it cut"
    assert [t.state for t in study_of(sweep_dir).trials] == [TrialState.COMPLETE, TrialState.RUNNING]

    done = run_cli("sweep", "--resume", str(sweep_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1 trials finished, 2 to go" in done.stdout
    study = study_of(sweep_dir)
    # Trial 1 was closed and asked again (as trial 2) with the same params; then one new trial.
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL, *[TrialState.COMPLETE] * 2]
    assert study.trials[2].params == study.trials[1].params
    jobs = jobs_of(sweep_dir)
    assert sorted(jobs) == [0, 1, 3] and jobs[0]["attempts"] == 1
    assert jobs[1]["attempts"] == 2 and jobs[1]["trial"] == 2 and jobs[1]["epochs"] == 2
    assert jobs[1]["resumed_from"] == "runs/mnist/version_0/checkpoints/last.ckpt"
    rows = read_csv(sweep_dir / "summary.csv")
    assert sorted(r["trial"] for r in rows) == ["0", "2", "3"]  # every finished trial once


@pytest.mark.slow
@pytest.mark.parametrize("pruner", ["median", "none"])
def test_hopeless_learning_rates_are_pruned_after_one_epoch_unless_pruning_is_off(tmp_path, pruner):
    # Two learning rates, one that trains and one that diverges (dropout still searched: every trial differs).
    args = ["search=lr_dropout", "optimizer.init_args.lr=choice(0.002,50.0)"]
    args += ["trainer.max_epochs=2", "trainer.limit_train_batches=20", "trainer.limit_val_batches=4"]
    args += ["trainer.limit_test_batches=2", "hydra.sweeper.n_trials=4", f"pruner={pruner}", SWEEP_ON_CPU]
    args += ["pruner.n_startup_trials=1"] if pruner == "median" else []
    done = run_cli("sweep", *args, "hydra.sweep.dir=s")
    assert done.returncode == 0, done.stderr[-3000:]
    sweep_dir = tmp_path / "s"
    jobs = jobs_of(sweep_dir).values()
    states = {t.number: t.state for t in study_of(sweep_dir).trials}
    good = [j for j in jobs if "optimizer.init_args.lr=0.002" in j["overrides"]]
    bad = [j for j in jobs if "optimizer.init_args.lr=50.0" in j["overrides"]]
    assert good and bad and len(good) + len(bad) == 4
    assert all(j["status"] == "completed" and j["epochs"] == 2 and j["val_acc"] > 0.5 for j in good)
    assert all(states[j["trial"]] == TrialState.COMPLETE for j in good)
    pruned = [j for j in bad if j["status"] == "pruned"]
    if pruner == "none":
        assert not pruned and all(j["epochs"] == 2 and states[j["trial"]] == TrialState.COMPLETE for j in bad)
        return
    # Every hopeless trial that started after a good one finished is pruned after its first epoch.
    first_good = min(j["trial"] for j in good)
    assert pruned and all(j in pruned for j in bad if j["trial"] > first_good)
    for job in pruned:
        assert job["epochs"] == 1 and job["pruned_after_epoch"] == 0 and states[job["trial"]] == TrialState.PRUNED
    rows = {r["trial"]: r for r in read_csv(sweep_dir / "summary.csv")}
    assert {rows[str(j["trial"])]["status"] for j in pruned} == {"pruned"}


@pytest.mark.slow
def test_joblib_runs_two_trials_at_once_into_one_consistent_study(tmp_path):
    args = [*SEARCH, "hydra.sweeper.n_trials=4", "pruner=none", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    done = run_cli("sweep", *args, "hydra.sweep.dir=s")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("is launching 2 jobs") == 2  # two batches of two trials (sweeper n_jobs follows)
    sweep_dir = tmp_path / "s"
    study = study_of(sweep_dir)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    jobs = jobs_of(sweep_dir)
    assert sorted(j["trial"] for j in jobs.values()) == [0, 1, 2, 3]
    for job in jobs.values():
        trial = study.trials[job["trial"]]
        assert trial.value == pytest.approx(job["val_acc"]) and job["threads"] == 1  # half the cores each
        assert f"model.dropout_ratio={trial.params['model.dropout_ratio']}" in job["overrides"]
        assert job["start"] == "warm"
    # Two at a time: each batch's jobs overlapped in time.
    spans = sorted((t.datetime_start, t.datetime_complete) for t in study.trials)
    assert spans[1][0] < spans[0][1] and spans[3][0] < spans[2][1]


@pytest.mark.slow
def test_a_trial_whose_fit_is_killed_is_continued_by_resume_not_told_complete(tmp_path):
    """The bug: kill -9 of a trial's fit while the sweep went on told the study COMPLETE with the partial
    val/acc; every --resume then said '2 trials finished, 0 to go', trained nothing and exited 1."""
    import signal
    import subprocess
    import sys
    import time

    args = [*SEARCH, "hydra.sweeper.n_trials=2", "pruner=none", "trainer.max_epochs=3"]
    args += ["trainer.limit_train_batches=20", "hydra.sweep.dir=s"]
    sweep = subprocess.Popen([sys.executable, "-m", "mnistctl", "sweep", *args], stdout=subprocess.DEVNULL)
    sweep_dir = tmp_path / "s"
    try:
        deadline = time.monotonic() + 300
        while not list(sweep_dir.glob("0/runs/*/version_0/checkpoints/last.ckpt")):  # an epoch done and saved
            assert sweep.poll() is None and time.monotonic() < deadline, "job 0 never finished an epoch"
            time.sleep(0.1)
        os.kill(jobs_of(sweep_dir)[0]["fit_pid"], signal.SIGKILL)  # the fit alone: the sweep goes on
        assert sweep.wait(timeout=300) == 1  # a job did not complete
    finally:
        sweep.kill()
    assert jobs_of(sweep_dir)[0]["status"] == "interrupted"
    assert [t.state for t in study_of(sweep_dir).trials] == [TrialState.FAIL, TrialState.COMPLETE]

    done = run_cli("sweep", "--resume", str(sweep_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1 trials finished, 1 to go" in done.stdout
    study = study_of(sweep_dir)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert study.trials[2].params == study.trials[0].params
    job = jobs_of(sweep_dir)[0]
    assert (job["status"], job["trial"], job["attempts"], job["epochs"]) == ("completed", 2, 2, 3)
    assert job["resumed_from"] == "runs/mnist/version_0/checkpoints/last.ckpt"
    assert study.trials[2].value == pytest.approx(job["val_acc"])
