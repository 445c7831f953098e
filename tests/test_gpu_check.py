"""scripts/gpu-check.sh (issue 18.7): refuses without CUDA, keeps each step within its budget, sums up.

The steps themselves need a GPU; here a stand-in Python plays them (`FAKE_PYTHON`: it answers the script's
CUDA question with a device name, and each `-m` step with the exit code or delay the test asks for), so what
is checked is the script: its exit codes, its timeouts and its summary.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from conftest import REPO

SCRIPT = REPO / "scripts" / "gpu-check.sh"
FAKE_PYTHON = """#!/usr/bin/env bash
echo "$*" >>"$FAKE_CALLS"
case "$*" in
  *is_available*) echo "Fake H200" ;;
  *torch.__version__*) echo "torch 9.9" ;;
  "-c import xdist") exit 1 ;;
  -c*) exit 0 ;;
  *"-m gpu"*) sleep "${FAKE_GPU_SLEEP:-0}"; echo "3 passed"; exit "${FAKE_GPU_RC:-0}" ;;
  *"not gpu"*) [[ "${FAKE_FAST_RC:-0}" == 0 ]] || echo "[gw1] [ 40%] FAILED tests/test_export.py::test_x[onnx]"
               echo "200 passed"; exit "${FAKE_FAST_RC:-0}" ;;
  *benchmarks.gpu*) echo "  G-B plain loop: exit 0, train 0.94 s"; echo "  C/B training time: 1.10x"
                    echo "  test, batch 2048: plain script 9.1 s (exit 0), mnistctl test 10.4 s: +1.3 s wall"
                    echo "  sweep criterion=ce,mse trainer.max_epochs=1: exit 0, wall 30.0 s" ;;
esac
"""


def run_check(tmp_path, python: str, **env: str) -> subprocess.CompletedProcess:
    calls = tmp_path / "calls.txt"  # the fake Python's command lines, one per call
    return subprocess.run(
        ["bash", str(SCRIPT)],
        env={**os.environ, "PYTHON": python, "GPU_CHECK_DIR": str(tmp_path / "out"), "FAKE_CALLS": str(calls), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def fake_python(tmp_path) -> str:
    path = tmp_path / "python"
    path.write_text(FAKE_PYTHON)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_without_cuda_it_runs_nothing_and_says_so(tmp_path):
    # The real Python, with no GPU visible (on a machine with one, the check would otherwise run in earnest).
    done = run_check(tmp_path, sys.executable, CUDA_VISIBLE_DEVICES="")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("gpu-check: no CUDA GPU visible to ") and "nothing was run" in done.stderr
    assert not (tmp_path / "out" / "gpu.log").exists()


def test_every_step_passing_gives_a_summary_and_exit_0(tmp_path):
    done = run_check(tmp_path, fake_python(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout.split("gpu-check summary: ", 1)[1].splitlines()
    assert summary[0].startswith("Fake H200, torch 9.9, logs in ")
    assert [line.split()[:2] for line in summary[1:4]] == [["gpu", "passed"], ["fast", "passed"], ["bench", "passed"]]
    assert "  C/B training time: 1.10x" in summary and summary[-1].startswith("  total ")
    assert any(line.startswith("  test, batch 2048: plain script") for line in summary)  # test/predict walls
    assert "  sweep criterion=ce,mse trainer.max_epochs=1: exit 0, wall 30.0 s" in summary
    assert summary[-1].endswith("(budget 740s)")
    # The bench step runs the benchmark: the gpu step leaves out the test that would run it a second time.
    (gpu_step,) = [line for line in (tmp_path / "calls.txt").read_text().splitlines() if "-m gpu" in line]
    assert gpu_step.endswith(
        "-m gpu --deselect tests/test_bench_gpu.py::test_on_a_gpu_both_rows_run_and_reach_99_percent"
    )


def test_the_steps_chosen_run_in_their_order_and_alone(tmp_path):
    # A device lent 10 minutes a command runs the check in two calls: "gpu bench", then "fast".
    done = run_check(tmp_path, fake_python(tmp_path), GPU_CHECK_STEPS="bench gpu", GPU_CHECK_GPU_S="50")
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout.split("gpu-check summary: ", 1)[1].splitlines()
    assert [line.split()[0] for line in summary[1:3]] == ["bench", "gpu"] and summary[3].startswith("  G-B")
    assert summary[-1].endswith("(budget 290s)") and not (tmp_path / "out" / "fast.log").exists()


def test_without_the_bench_step_the_gpu_tier_runs_the_benchmarks_test(tmp_path):
    done = run_check(tmp_path, fake_python(tmp_path), GPU_CHECK_STEPS="gpu")
    assert done.returncode == 0, done.stdout + done.stderr
    (gpu_step,) = [line for line in (tmp_path / "calls.txt").read_text().splitlines() if "-m gpu" in line]
    assert gpu_step.endswith("-m gpu") and "--deselect" not in gpu_step
    assert done.stdout.rstrip().endswith("(budget 440s)")  # that test runs the whole benchmark: its time too


@pytest.mark.parametrize(
    ("steps", "error"),
    [
        ("gpu fats", "unknown step 'fats' in GPU_CHECK_STEPS; the steps are gpu, fast and bench"),
        ("gpu bench gpu", "step 'gpu' is named twice in GPU_CHECK_STEPS"),
        (" ", "GPU_CHECK_STEPS names no step; the steps are gpu, fast and bench"),  # a check that ran nothing
    ],
)
def test_steps_that_are_unknown_repeated_or_none_are_refused_before_anything_runs(tmp_path, steps, error):
    done = run_check(tmp_path, fake_python(tmp_path), GPU_CHECK_STEPS=steps)
    assert done.returncode == 3 and done.stdout == ""
    assert done.stderr == f"gpu-check: {error}\n"
    assert not (tmp_path / "out" / "gpu.log").exists()


def test_the_summary_names_only_this_runs_failures(tmp_path):
    # A GPU_CHECK_DIR used before holds an earlier run's logs: their failures are not this run's.
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "fast.log").write_text("FAILED tests/test_old.py::test_gone\n")
    done = run_check(tmp_path, fake_python(tmp_path), GPU_CHECK_STEPS="gpu", FAKE_GPU_RC="1")
    assert done.returncode == 1
    assert "test_gone" not in done.stdout and "G-B" not in done.stdout  # no bench step, no bench lines


def test_a_step_over_its_budget_is_stopped_and_fails_the_check(tmp_path):
    done = run_check(tmp_path, fake_python(tmp_path), FAKE_GPU_SLEEP="30", GPU_CHECK_GPU_S="1", FAKE_FAST_RC="1")
    assert done.returncode == 1
    rows = {line.split()[0]: line.split()[1] for line in done.stdout.split("summary: ", 1)[1].splitlines()[1:4]}
    assert rows == {"gpu": "timeout", "fast": "failed", "bench": "passed"}
    assert "  FAILED tests/test_export.py::test_x[onnx]" in done.stdout.splitlines()  # named, not only counted
    gpu_seconds = int(done.stdout.split("summary: ", 1)[1].splitlines()[1].split()[-1].rstrip("s"))
    assert gpu_seconds < 10  # stopped at its budget, not after the 30 s it wanted
