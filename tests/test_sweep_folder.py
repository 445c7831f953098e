"""The sweep folder (issues 9.5, 12.3): new, or empty, or a mnistctl sweep being resumed; a folder with anything
else is refused in one line and left byte for byte as it was, and a sweep that cannot start leaves nothing.

    .venv/bin/python -m pytest tests/test_sweep_folder.py     # fast: nothing trains
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SWEEP_TINY, run_main
from mnistctl.sweep import plan

pytestmark = pytest.mark.usefixtures("sweep_tree")


def fingerprint(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file and folder below `folder`: content hash and modification time of files, folders by name."""
    found = {}
    for path in sorted(folder.rglob("*")):
        digest = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
        mtime = None if path.is_dir() else path.stat().st_mtime_ns  # a folder's own mtime moves as entries come and go
        found[str(path.relative_to(folder))] = (digest, mtime)
    return found


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("mnistctl: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    "override",
    ["hydra.sweep.dir=mydata", "++hydra.sweep.dir=./mydata", "hydra.sweep={dir:mydata,subdir:x}"],
)
def test_a_folder_with_user_files_is_refused_and_left_as_it_was(tmp_path, capsys, override):
    data = tmp_path / "mydata"
    (data / "raw").mkdir(parents=True)
    (data / "summary.csv").write_text("my,own,summary\n")
    (data / "multirun.yaml").write_text("mine: true\n")
    (data / "raw" / "0").write_bytes(b"\x00" * 100)
    before = fingerprint(tmp_path)
    for dry in (["--dry-run"], []):
        assert run_main("sweep", *dry, "criterion=ce,mse", *SWEEP_TINY, override) == 2
        line = error_line(capsys)
        assert f"hydra.sweep.dir={data} is not empty (it holds multirun.yaml, raw, summary.csv)" in line
        assert "--resume DIR" in line
        assert fingerprint(tmp_path) == before


def test_a_file_as_the_sweep_folder_is_one_line_in_the_dry_run_and_for_real(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine\n")
    before = fingerprint(tmp_path)
    for target, what in (("notes.txt", "is a file"), ("notes.txt/sub", "is inside")):
        for dry in (["--dry-run"], []):
            assert run_main("sweep", *dry, *SWEEP_TINY, f"hydra.sweep.dir={target}") == 2
            assert what in error_line(capsys)
            assert fingerprint(tmp_path) == before


@pytest.mark.parametrize("subdir", ["../victim", "{victim}", "x/../../victim"])
def test_a_job_subdir_outside_the_sweep_folder_is_refused_and_a_users_log_is_left_alone(tmp_path, capsys, subdir):
    """The bug: hydra.sweep.subdir=../victim ran the job in sw/0 but Hydra appended its log lines to the user's
    own victim/job.log (it opens job.log in sweep.dir joined with subdir); the dry run said nothing."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "job.log").write_text("my notes\n")
    before = fingerprint(tmp_path)
    override = f"hydra.sweep.subdir={subdir.format(victim=victim)}"
    for dry in (["--dry-run"], []):
        assert run_main("sweep", *dry, "criterion=ce,mse", *SWEEP_TINY, "hydra.sweep.dir=sw", override) == 2
        line = error_line(capsys)
        assert f"{override} puts the job's folder outside the sweep folder (at {victim}); give a relative" in line
        assert fingerprint(tmp_path) == before  # no sw/, victim/job.log byte for byte as it was


def test_a_subdir_inside_the_sweep_folder_is_accepted(tmp_path, capsys):
    for subdir in ("job_${hydra.job.num}", "a/../b", "same"):
        assert run_main("sweep", "--dry-run", *SWEEP_TINY, "hydra.sweep.dir=sw", f"hydra.sweep.subdir={subdir}") == 0
        assert "error" not in capsys.readouterr().out


def test_an_empty_folder_and_a_new_one_are_accepted_by_the_dry_run(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for target in ("empty", "new/nested"):
        assert run_main("sweep", "--dry-run", *SWEEP_TINY, f"hydra.sweep.dir={target}") == 0
        assert f"sweep folder {tmp_path / target} (nothing created)" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"] and not list((tmp_path / "empty").iterdir())


def test_a_sweep_that_cannot_start_leaves_no_folder_and_only_removes_its_own(tmp_path, capsys, monkeypatch):
    # joblib refuses prefer=nope when the launcher starts, before any job (the plan refuses it earlier,
    # settings.py: skipped here, to stand for whatever a launcher refuses only when it starts). Nothing of
    # the sweep may stay behind: no sweep.json, no multirun.yaml, no folder.
    monkeypatch.setattr(plan, "check_launcher", lambda *args: None)
    bad_launcher = ["hydra/launcher=joblib", "hydra.launcher.prefer=nope"]
    (tmp_path / "empty").mkdir()
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "mine.txt").write_text("mine\n")
    before = fingerprint(tmp_path)
    for target in ("new/nested/sweep", "empty", "keep/new"):
        assert run_main("sweep", *SWEEP_TINY, *bad_launcher, f"hydra.sweep.dir={target}") == 1
        assert "prefer" in error_line(capsys)
        assert fingerprint(tmp_path) == before, target  # the folders it made are gone; the others untouched
    assert run_main("sweep", *SWEEP_TINY, *bad_launcher) == 1  # the default sweeps/<date>_<time>
    assert "prefer" in error_line(capsys)
    assert fingerprint(tmp_path) == before


def test_resume_needs_a_mnistctl_sweep_and_a_new_sweep_refuses_one(tmp_path, capsys):
    sweep = tmp_path / "old"
    sweep.mkdir()
    (sweep / "sweep.json").write_text('{"overrides": ["criterion=ce"]}')
    assert run_main("sweep", "--dry-run", *SWEEP_TINY, "hydra.sweep.dir=old") == 2
    assert "already holds a sweep; finish it with 'mnistctl sweep --resume" in error_line(capsys)
    assert run_main("sweep", "--dry-run", "--resume", "old") == 0
    assert f"sweep folder {sweep} (nothing created)" in capsys.readouterr().out


@pytest.mark.parametrize("writer", ["sweep", "job"])
def test_resume_of_a_sweep_still_running_here_is_refused_and_changes_nothing(tmp_path, capsys, writer):
    """The bug: --resume of a sweep whose process (or a job's) was still alive ran every unfinished job a second
    time, at once, in the same run folders. Now it is one line, exit 2, and the folder stays as it was."""
    import json
    import socket
    import subprocess
    import time

    sweep = tmp_path / "s"
    (sweep / "0").mkdir(parents=True)
    alive = subprocess.Popen(["sleep", "60"])  # stands in for the sweep's process, or a job's
    try:
        here = {"host": socket.gethostname(), "pid": alive.pid, "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
        record = {"overrides": ["data.data_dir=nowhere", *SWEEP_TINY]}  # were it resumed: fails at once
        (sweep / "sweep.json").write_text(json.dumps({**record, "process": here} if writer == "sweep" else record))
        job = {"key": "x", "status": "running", **(here if writer == "job" else {**here, "pid": 1 << 22})}
        (sweep / "0" / "job.json").write_text(json.dumps(job))
        before = fingerprint(tmp_path)
        assert run_main("sweep", "--resume", "s") == 2
        line = error_line(capsys)
        what = "its sweep process" if writer == "sweep" else "the process of its job 0"
        assert f"sweep {sweep} is still running ({what}, pid {alive.pid}, is alive)" in line
        assert f"'kill {alive.pid}'" in line and "wait for it to end" in line
        assert fingerprint(tmp_path) == before
    finally:
        alive.kill()
        alive.wait()


UNCHECKED_LAUNCHER = """
import sys
from mnistctl.sweep import plan
plan.check_launcher = lambda *args: None
from mnistctl.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("search", [[], ["search=lr_dropout", "hydra.sweeper.n_trials=2"]], ids=["grid", "optuna"])
def test_a_resume_whose_launcher_refuses_to_start_fails_and_puts_every_file_back(tmp_path, search):
    """The bug: in a resumed folder that already held jobs, a launcher refusing to start was "the sweep stopped
    early": exit 0, multirun.yaml rewritten (and a search's study changed). Now it fails like a new sweep
    that cannot start, and every file of the folder is as it was, times included."""
    import json

    sweep = tmp_path / "s"
    (sweep / "0").mkdir(parents=True)
    (sweep / "sweep.json").write_text(json.dumps({"overrides": [*search, "criterion=ce", *SWEEP_TINY]}))
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    (sweep / "0" / "job.json").write_text(
        json.dumps({"key": "x", "job": 0, "overrides": ["criterion=ce"], "status": "completed"})
    )
    if search:  # a study the killed search left with a trial running: the sweeper closes and re-asks it
        import optuna

        study = optuna.create_study(
            study_name="mnist_lr_dropout", storage=f"sqlite:///{sweep / 'optuna.db'}", direction="maximize"
        )
        study.ask({"model.dropout_ratio": optuna.distributions.UniformDistribution(0.0, 0.5)})
        del study
    before = fingerprint(tmp_path)
    # In a process of its own (Hydra's multirun keeps logging to the streams of the test that ran it first), with
    # the plan's launcher check skipped as above: prefer=nope then stands for what a launcher refuses at start.
    args = ["sweep", "--resume", "s", "hydra/launcher=joblib", "hydra.launcher.prefer=nope"]
    done = subprocess.run(
        [sys.executable, "-c", UNCHECKED_LAUNCHER, *args], cwd=tmp_path, capture_output=True, text=True
    )
    errors = [line for line in done.stderr.splitlines() if line.startswith("mnistctl: error:")]
    assert done.returncode == 1 and len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "prefer=nope is not a valid backend hint" in errors[0]
    assert fingerprint(tmp_path) == before
