"""Ctrl-C before Lightning's own handler runs (imports, parsing, building the run): one line, exit 130, and
no run folder left behind. The interrupt is pressed by the process itself at a fixed point, never by a timer.

    .venv/bin/python -m pytest tests/test_ctrl_c_startup.py
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from file_state import fingerprint

from conftest import TINY

# `python -m mnistctl ARGS`, except that the process presses Ctrl-C on itself the moment it first imports
# torch: KeyboardInterrupt is raised inside that import, wherever the subcommand does it.
CTRL_C_AT_IMPORT_TORCH = """
import os, signal, sys

class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, CtrlC())
from mnistctl.__main__ import main
sys.exit(main(sys.argv[1:]))
"""

# A `git` first on PATH that presses Ctrl-C on the mnistctl that runs it: RunManifest asks git for the commit
# after fit has made its run folder and before it builds the Trainer. It notes what the runs folder held.
CTRL_C_GIT = """#!/bin/sh
ls runs/mnist > "{seen}"
kill -INT $PPID
exec sleep 30
"""


def as_from_a_terminal() -> None:
    """Ctrl-C as a terminal delivers it: a shell runs background jobs (`bash .ci/run &`) with SIGINT ignored,
    which their children inherit, and a Python started with SIGINT ignored never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(
    "args",
    [["export", "--ckpt_path", "model.ckpt"], ["predict", "--ckpt_path", "best"], ["fit", *TINY]],
    ids=["export", "predict", "fit"],
)
def test_ctrl_c_while_importing_is_one_line_and_exit_130(args, tmp_path):
    """The bug: __main__ caught only Exception, so Ctrl-C during start-up printed a KeyboardInterrupt traceback."""
    (tmp_path / "model.ckpt").write_bytes(b"export loads it with torch")
    done = subprocess.run(
        [sys.executable, "-c", CTRL_C_AT_IMPORT_TORCH, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=as_from_a_terminal,
    )
    assert (done.returncode, done.stderr) == (130, "mnistctl: interrupted\n")
    assert [p.name for p in tmp_path.iterdir()] == ["model.ckpt"]  # no run folder, no model file


def test_ctrl_c_after_fit_made_its_run_folder_removes_it(tmp_path):
    """The bug: Ctrl-C between making runs/mnist/version_0 and building the classes (while the run record
    asked git for the commit) left the empty version_0 behind, and a traceback."""
    bin_dir, work = tmp_path / "bin", tmp_path / "work"
    bin_dir.mkdir()
    (bin_dir / "git").write_text(CTRL_C_GIT.format(seen=bin_dir / "seen.txt"))
    (bin_dir / "git").chmod(0o755)
    (work / "runs" / "mnist").mkdir(parents=True)
    (work / "runs" / "mnist" / "notes.txt").write_text("mine\n")  # a folder that existed before: it stays
    before = fingerprint(work)
    path = f"{bin_dir}:{os.environ['PATH']}"
    done = subprocess.run(
        [sys.executable, "-m", "mnistctl", "fit", *TINY],
        cwd=work,
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=as_from_a_terminal,
    )
    assert (bin_dir / "seen.txt").read_text().split() == ["notes.txt", "version_0"]  # pressed after it existed
    assert (done.returncode, done.stderr.splitlines()[-1:]) == (130, ["mnistctl: interrupted"]), done.stderr
    assert "Traceback" not in done.stderr
    assert fingerprint(work) == before
