"""`mnistctl runs` over records that are not what a clean run leaves: a fit killed with SIGKILL, run.json files
with fields of the wrong type, NaN metrics, runs recorded in other time zones, files that are not files.

    .venv/bin/python -m pytest tests/test_runs_records.py
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import TINY, run_cli, run_main
from mnistctl import process_alive as process_alive_module
from mnistctl.process_alive import process_alive


def runs_json(capsys, *args: str) -> list[dict] | dict:
    assert run_main("runs", *args, "--json") == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def write_run(folder: Path, **fields: object) -> Path:
    """A run folder with a hand-written run.json: a finished two-epoch fit, with `fields` set over it."""
    record = {
        "status": "completed",
        "subcommand": "fit",
        "started": "2026-12-04T13:08:33.120+00:00",
        "finished": "2026-12-04T13:09:00.000+00:00",
        "wall_time_s": 26.9,
        "epochs_completed": 2,
        "checkpoints": {"monitor": "val/acc", "best": "checkpoints/epoch01.ckpt", "best_score": 0.6, "last": None},
        "metrics": {"val/acc": 0.6, "val/loss": 1.2, "test/acc": 0.58},
        "history": [{"epoch": 0, "val/acc": 0.4, "val/loss": 1.8}, {"epoch": 1, "val/acc": 0.6, "val/loss": 1.2}],
        "outputs": ["config.yaml", "metrics.csv"],
        **fields,
    }
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps(record))  # json writes Infinity and NaN as Python reads them
    (folder / "config.yaml").write_text("optimizer:\n  class_path: torch.optim.Adam\n  init_args:\n    lr: 0.003\n")
    return folder


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"history": [1, 2]}, "history[0] is 1, not an object"),
        ({"history": [{"val/acc": 0.5}]}, "history[0].epoch is missing"),
        ({"wall_time_s": "12"}, 'wall_time_s is "12", not a finite number'),
        ({"wall_time_s": float("inf")}, "wall_time_s is Infinity, not a finite number"),
        ({"metrics": {"val/acc": [0.5]}}, "metrics.val/acc is [0.5], not a number"),
        ({"started": "yesterday"}, 'started is "yesterday", not an ISO time'),
    ],
)
def test_a_record_with_a_field_of_the_wrong_type_is_unreadable_and_the_others_are_listed(capsys, fields, named):
    # The bug: valid JSON with a field of another type (history entries that are not objects, a duration as
    # text, Infinity) made `runs`, and `runs show` of any other run, fail with AttributeError, TypeError or
    # OverflowError, exit 1, naming neither the file nor the field.
    write_run(Path("runs/mnist/version_0"), **fields)
    write_run(Path("runs/mnist/version_1"), started="2026-12-04T14:00:00.000+00:00")
    assert run_main("runs", "--sweeps_dir", "none") == 0  # the table formats every field
    assert "mnist/version_0  unreadable" in capsys.readouterr().out
    bad, good = sorted(runs_json(capsys, "--sweeps_dir", "none"), key=lambda row: row["run"])
    assert (bad["run"], bad["status"], bad["val_acc"]) == ("mnist/version_0", "unreadable", None)
    assert (good["run"], good["status"], good["val_acc"]) == ("mnist/version_1", "completed", 0.6)
    assert runs_json(capsys, "show", good["id"])["record"]["wall_time_s"] == 26.9
    assert run_main("runs", "show", bad["id"]) == 0
    out = capsys.readouterr().out
    assert f"status     unreadable: runs/mnist/version_0/run.json cannot be read: {named}" in out
    assert runs_json(capsys, "show", bad["id"])["unreadable"].startswith(named)
    assert runs_json(capsys, "diff", bad["id"], good["id"])["metrics"]["status"] == ["unreadable", "completed"]


def test_a_run_folder_whose_name_is_not_utf8_is_listed(capsys, tmp_path):
    # The bug: the id hashed the folder name as UTF-8: UnicodeEncodeError, exit 1, for every `mnistctl runs`.
    name = os.fsdecode(b"caf\xe9")  # Latin-1 bytes: Python keeps the undecodable byte as a surrogate
    write_run(tmp_path / "runs" / name / "version_0")
    (row,) = runs_json(capsys, "--sweeps_dir", "none")
    assert (row["run"], row["status"]) == (f"{name}/version_0", "completed")
    assert row["full_id"] == hashlib.sha1(b"runs:caf\xe9/version_0").hexdigest()
    assert run_main("runs", "--sweeps_dir", "none") == 0
    assert "caf\\xe9/version_0  completed" in capsys.readouterr().out  # printable whatever the terminal's encoding
    assert runs_json(capsys, "show", row["id"])["run"] == f"{name}/version_0"


def test_process_alive_tells_a_live_writer_from_a_gone_one_and_a_reused_pid():
    here, now = socket.gethostname(), time.time()
    assert process_alive(here, os.getpid(), now) is True
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert process_alive(here, int(done.stdout), now) is False  # it has exited
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    while open(f"/proc/{zombie.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":  # exited, not yet reaped
        time.sleep(0.05)
    assert process_alive(here, zombie.pid, now) is False  # an orphaned fit nobody reaps yet has ended too
    zombie.wait()
    assert process_alive(here, os.getpid(), now - 10 * 365 * 86400) is False  # started after the record: a reused pid
    assert process_alive("another-host", os.getpid(), now) is None  # cannot tell from here
    assert process_alive(here, None, now) is None  # a record from before pids were kept


def test_without_proc_nothing_reads_as_gone(monkeypatch, tmp_path):
    """The bug: with no /proc (macOS), a missing /proc/<pid>/stat read as "no such process", so every running
    fit was listed interrupted and every joblib job stopped its fit a second after it started."""
    monkeypatch.setattr(process_alive_module, "Path", lambda path: tmp_path / str(path).lstrip("/"))
    assert process_alive(socket.gethostname(), os.getpid(), time.time()) is None


@pytest.mark.parametrize("resumed", [False, True], ids=["fresh", "resumed"])
def test_a_fit_killed_with_sigkill_is_listed_as_interrupted_not_running(tmp_path, capsys, monkeypatch, resumed):
    """The bugs: run.json said `running` forever after kill -9, and `runs --status running` listed it as live;
    then a resumed fit still training was listed as interrupted (its pid checked against the run's first start,
    before the pid's process began, so read as a reused pid)."""
    no_schedule = ["--lr_scheduler", "null"]  # a one-cycle schedule cannot change its length on a resume
    if resumed:
        assert run_cli("fit", *TINY, *no_schedule, cwd=tmp_path).returncode == 0
        time.sleep(2.5)  # START_SLACK_S: the resume's process starts well after the run's `started`
    command = [sys.executable, "-m", "mnistctl", "fit", *TINY, *no_schedule, "--trainer.limit_train_batches", "100000"]
    command += ["--trainer.max_epochs", "50", "--trainer.accelerator", "cpu"]
    command += ["--ckpt_path", "last"] if resumed else []
    fit = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    record = tmp_path / "runs" / "mnist" / "version_0" / "run.json"

    def written_by_the_fit() -> bool:
        found = json.loads(record.read_text()) if record.is_file() else {}
        return found.get("status") == "running" and (found.get("process") or {}).get("pid") == fit.pid

    try:
        deadline = time.monotonic() + 120
        while not written_by_the_fit():
            assert fit.poll() is None and time.monotonic() < deadline, fit.stderr.read() if fit.poll() else "slow"
            time.sleep(0.2)
        monkeypatch.chdir(tmp_path)
        (live,) = runs_json(capsys, "--sweeps_dir", "none")
        assert live["status"] == "running"
    finally:
        fit.send_signal(signal.SIGKILL)
        fit.wait()
    assert json.loads(record.read_text())["status"] == "running"  # nothing could record the end
    (row,) = runs_json(capsys, "--sweeps_dir", "none")
    assert row["status"] == "interrupted"
    assert runs_json(capsys, "--sweeps_dir", "none", "--status", "running") == []
    assert run_main("runs", "show", row["id"], "--sweeps_dir", "none") == 0
    shown = capsys.readouterr().out
    assert f"its process {fit.pid} is gone" in shown and "status     interrupted" in shown


def test_a_fifo_named_run_json_or_config_yaml_does_not_hang_the_listing(tmp_path):
    # The bug: run.json and config.yaml were opened without checking they are files: reading a FIFO of that
    # name waits for a writer forever, so `mnistctl runs` never returned.
    (tmp_path / "runs/mnist/version_0").mkdir(parents=True)
    os.mkfifo(tmp_path / "runs/mnist/version_0/run.json")
    write_run(tmp_path / "runs/mnist/version_1")
    (tmp_path / "runs/mnist/version_1/config.yaml").unlink()
    os.mkfifo(tmp_path / "runs/mnist/version_1/config.yaml")
    done = run_cli("runs", "--sweeps_dir", "none", "--json", cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)  # a folder without a regular run.json is not a run
    assert (row["run"], row["status"], row["config"]) == ("mnist/version_1", "completed", {})
    done = run_cli("runs", "show", "runs/mnist/version_0", cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and done.stderr.startswith(
        "mnistctl: error: runs: runs/mnist/version_0 is not a run folder (no run.json in it)"
    )


def strict_json(text: str) -> object:
    """JSON as the standard has it: NaN and Infinity are not in it (JavaScript, jq and Go refuse them)."""
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"non-standard JSON constant {name}"))


def test_identical_nan_metrics_are_no_difference_and_json_output_is_standard(capsys):
    # The bug: `runs diff` of two diverged runs listed `val/loss nan nan` (NaN != NaN), and every --json
    # output wrote NaN, which standard JSON parsers refuse.
    nan = float("nan")
    diverged = {"metrics": {"val/loss": nan, "test/loss": nan}, "history": [{"epoch": 0, "val/loss": nan}]}
    write_run(Path("runs/mnist/version_0"), **diverged)
    write_run(Path("runs/mnist/version_1"), **diverged, started="2026-12-04T14:00:00.000+00:00")
    runs = ("runs/mnist/version_0", "runs/mnist/version_1")
    assert run_main("runs", "diff", *runs) == 0
    out = capsys.readouterr().out
    assert "(metrics)" in out and "loss" not in out
    assert run_main("runs", "--json") == 0
    assert [row["test_loss"] for row in strict_json(capsys.readouterr().out)] == [None, None]
    assert run_main("runs", "show", runs[0], "--json") == 0
    record = strict_json(capsys.readouterr().out)["record"]
    assert record["metrics"] == {"val/loss": None, "test/loss": None}
    assert record["history"] == [{"epoch": 0, "val/loss": None}]
    assert run_main("runs", "diff", *runs, "--json") == 0
    assert strict_json(capsys.readouterr().out)["metrics"] == {}


@pytest.fixture
def utc_here(monkeypatch):
    """This process in UTC (the local time zone the table shows times in), restored afterwards."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_runs_recorded_under_other_utc_offsets_are_ordered_and_shown_by_the_absolute_time(capsys, utc_here):
    # The bug: runs were ordered by the text of run.json's start time, and shown with the offset dropped: a run
    # started in Tokyo (+09:00) at 01:00 UTC came after one started in New York (-05:00) 90 minutes later.
    write_run(Path("runs/mnist/version_0"), started="2026-12-04T10:00:00.000+09:00")  # 01:00 UTC
    write_run(Path("runs/mnist/version_1"), started="2026-12-03T21:30:00.000-05:00")  # 02:30 UTC
    write_run(Path("runs/mnist/version_2"), started="2026-12-04T03:00:00.000")  # no offset: this machine's time
    rows = runs_json(capsys)
    assert [(r["run"], r["started"]) for r in rows] == [
        ("mnist/version_0", "2026-12-04 01:00:00"),
        ("mnist/version_1", "2026-12-04 02:30:00"),
        ("mnist/version_2", "2026-12-04 03:00:00"),
    ]
    assert [r["run"] for r in runs_json(capsys, "--sort", "started", "--reverse")][0] == "mnist/version_2"
    assert run_main("runs", "show", "runs/mnist/version_1") == 0
    assert "started 2026-12-04 02:30:00," in capsys.readouterr().out


def test_a_run_resumed_with_changed_settings_has_no_reproduce_command(capsys):
    # The bug: `reproduce` ignored resumes[].config_changes: a fit of 2 epochs resumed to 3 with another lr
    # (--allow_config_change) got `mnistctl fit --config <run>/config.yaml --ckpt_path null`, which trains
    # every epoch at the later lr. The resumes entry is what cli/resume_guard.py writes.
    resumed = {
        "ckpt_path": "/x/runs/mnist/version_0/checkpoints/last.ckpt",
        "resumes": [
            {
                "from_checkpoint": "/x/runs/mnist/version_0/checkpoints/last.ckpt",
                "from_epoch": 2,
                "config_changes": {"optimizer.init_args.lr": {"run": 0.003, "now": 0.0005}},
                "optimizer_state": "restarted",
            }
        ],
    }
    write_run(Path("runs/mnist/version_0"), **resumed)
    why = "resumed at epoch 2 with changed settings: optimizer.lr; config.yaml holds the later values"
    shown = runs_json(capsys, "show", "runs/mnist/version_0")
    assert shown["reproduce"] is None
    assert shown["not_reproducible"] == why
    assert run_main("runs", "show", "runs/mnist/version_0") == 0
    assert f"reproduce  (none: {why})\n" in capsys.readouterr().out
    resumed["resumes"][0]["config_changes"] = {}  # the same settings: config.yaml from scratch is the same run
    write_run(Path("runs/mnist/version_1"), **resumed)
    shown = runs_json(capsys, "show", "runs/mnist/version_1")
    assert shown["reproduce"] == "mnistctl fit --config runs/mnist/version_1/config.yaml --ckpt_path null"
    assert shown["not_reproducible"] is None


def test_sort_by_a_config_key_when_the_filters_match_no_run(capsys):
    # The bug: the --sort key was looked up only in the filtered runs: `--status failed --sort optimizer.lr`
    # with no failed run said optimizer.lr is "neither a column nor a config key of any run", exit 2.
    write_run(Path("runs/mnist/version_0"))
    assert runs_json(capsys, "--status", "failed", "--sort", "optimizer.lr") == []
    assert run_main("runs", "--status", "failed", "--sort", "optimizer.lr") == 0
    assert capsys.readouterr().err == "mnistctl runs: none of the 1 runs matches the filters\n"
    assert run_main("runs", "--status", "failed", "--sort", "optimizer.lx") == 2  # a typo is still refused
    assert "--sort optimizer.lx is neither a column" in capsys.readouterr().err


def test_diff_of_two_evaluations_does_not_count_where_they_wrote(capsys):
    # The bug: `runs diff` of the tests of two runs listed trainer.callbacks.TestPlots.dirpath, the folder each
    # wrote its pictures to, which differs between every two runs by design.
    for run in ("version_0", "version_1"):
        folder = write_run(Path(f"runs/mnist/{run}/test"), subcommand="test")
        plots = (
            f"  - class_path: mnistctl.plot_callbacks.TestPlots\n    init_args:\n      dirpath: {folder.resolve()}\n"
        )
        (folder / "config.yaml").write_text(f"trainer:\n  callbacks:\n{plots}")
    assert runs_json(capsys, "diff", "runs/mnist/version_0/test", "runs/mnist/version_1/test")["config"] == {}


def test_a_symlinked_run_folder_has_the_same_id_in_show_as_in_the_list(capsys, tmp_path):
    # The bug: run_at resolved the symlink before making the id, so `runs show runs/mnist/version_5` (a link
    # to version_0, listed as mnist/version_5) showed version_0's id, not the one the table gave it.
    write_run(tmp_path / "runs/mnist/version_0")
    (tmp_path / "runs/mnist/version_5").symlink_to("version_0")
    (tmp_path / "latest").symlink_to(tmp_path / "runs/mnist/version_0")  # outside the roots: the run it points to
    ids = {row["run"]: row["id"] for row in runs_json(capsys, "--sweeps_dir", "none")}
    assert len(set(ids.values())) == 2
    assert runs_json(capsys, "show", "runs/mnist/version_5")["id"] == ids["mnist/version_5"]
    assert runs_json(capsys, "show", "runs/mnist/version_0")["id"] == ids["mnist/version_0"]
    assert runs_json(capsys, "show", "latest")["id"] == ids["mnist/version_0"]
