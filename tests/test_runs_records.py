"""`mnistctl runs` over records that are not what a clean run leaves: a fit killed with SIGKILL, run.json files
with fields of the wrong type, NaN metrics, runs recorded in other time zones, files that are not files.

    .venv/bin/python -m pytest tests/test_runs_records.py
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

from conftest import TINY, run_main
from mnistctl.process_alive import process_alive


def runs_json(capsys, *args: str) -> list[dict] | dict:
    assert run_main("runs", *args, "--json") == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_process_alive_tells_a_live_writer_from_a_gone_one_and_a_reused_pid():
    here, now = socket.gethostname(), time.time()
    assert process_alive(here, os.getpid(), now) is True
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert process_alive(here, int(done.stdout), now) is False  # it has exited
    assert process_alive(here, os.getpid(), now - 10 * 365 * 86400) is False  # started after the record: a reused pid
    assert process_alive("another-host", os.getpid(), now) is None  # cannot tell from here
    assert process_alive(here, None, now) is None  # a record from before pids were kept


def test_a_fit_killed_with_sigkill_is_listed_as_interrupted_not_running(tmp_path, capsys, monkeypatch):
    # The bug: run.json said `running` forever after kill -9, and `runs --status running` listed it as live.
    command = [sys.executable, "-m", "mnistctl", "fit", *TINY, "--trainer.limit_train_batches", "100000"]
    command += ["--trainer.max_epochs", "50", "--trainer.accelerator", "cpu"]
    fit = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    record = tmp_path / "runs" / "mnist" / "version_0" / "run.json"
    try:
        deadline = time.monotonic() + 120
        while not (record.is_file() and json.loads(record.read_text()).get("device")):
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
