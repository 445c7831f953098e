"""`mnistctl sweep --detach` with a launcher whose jobs run inside the sweep process is a usage error.

    .venv/bin/python -m pytest tests/test_sweep_detach.py

The basic and joblib launchers run jobs in the sweep process or its workers: returning at once would kill
them. `--detach` there is one line on stderr, exit 2, and nothing written. The detached SLURM sweep itself
(submit, --status, --summary, --resume) is in test_slurm_detach.py.
"""

from __future__ import annotations

import pytest

from conftest import run_cli

pytestmark = pytest.mark.usefixtures("sweep_tree")


@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_detach_without_a_cluster_launcher_is_a_one_line_usage_error(tmp_path, launcher):
    done = run_cli("sweep", "--detach", "criterion=ce,mse", f"hydra/launcher={launcher}", cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        "mnistctl: error: --detach needs hydra/launcher=submitit_slurm, whose jobs run on the cluster without this "
        f"process; with hydra/launcher={launcher} they run inside it: keep it running (tmux, screen, nohup)\n"
    )
    assert list(tmp_path.iterdir()) == []  # no sweep folder, no job


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--status", "x", "criterion=ce"], "sweep: --status DIR takes no overrides and no other option"),
        (["--status", "x", "--detach"], "sweep: --status DIR takes no overrides and no other option"),
        (["--detach", "--info"], "sweep: --detach submits a sweep; --info runs nothing"),
        (["--status", "missing"], "sweep folder missing does not exist; give a folder made by 'mnistctl sweep'"),
    ],
)
def test_bad_detach_and_status_options_are_one_line_usage_errors(tmp_path, args, message):
    done = run_cli("sweep", *args, cwd=tmp_path)
    assert (done.returncode, done.stderr) == (2, f"mnistctl: error: {message}\n")
    assert list(tmp_path.iterdir()) == []
