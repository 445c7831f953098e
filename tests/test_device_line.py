"""Quiet and explicit (issue 18.3): one line names the device; Lightning's advertisement, device-availability,
Tensor Cores and single-device rank lines are gone; float32 matmul precision is chosen, recorded, overridable."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from conftest import TINY, run_cli, run_main
from mnistctl import console
from mnistctl.cli.device_report import choose_matmul_precision

# Lightning's lines that issue 18 saw on every command (the first four on a GPU machine).
BANNED = ("💡 Tip", "litlogger", "GPU available:", "TPU available:", "LOCAL_RANK:", "Tensor Cores")
CUDA0 = torch.device("cuda", 0)


def test_a_real_fit_says_its_device_in_one_line_and_nothing_lightning_advertises(tmp_path):
    done = run_cli("fit", *TINY, "--trainer.accelerator", "cpu", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stderr.splitlines()
    (record,) = [json.loads(p.read_text()) for p in tmp_path.glob("runs/*/*/run.json")]
    precision = record["device"]["precision"]
    assert [line for line in lines if line.startswith("device")] == [f"device: cpu (2 threads), precision {precision}"]
    assert [line for line in lines if any(banned in line for banned in BANNED)] == []


def test_run_json_records_the_matmul_precision_and_a_flag_overrides_it(capsys):
    try:
        assert run_main("fit", *TINY, "--test_after_fit", "false", "--float32_matmul_precision", "medium") == 0
        assert torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision("highest")
    (run,) = Path("runs/mnist").glob("version_*")
    record = json.loads((run / "run.json").read_text())
    assert record["float32_matmul_precision"] == {"value": "medium", "chosen": "config"}
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("device")]
    assert line.endswith("float32 matmuls medium (config)")


def test_an_automatic_run_on_the_cpu_resets_what_an_earlier_run_set():
    torch.set_float32_matmul_precision("medium")  # as a run in this process with the flag leaves it
    assert run_main("fit", *TINY, "--test_after_fit", "false") == 0
    assert torch.get_float32_matmul_precision() == "highest"
    (run,) = Path("runs/mnist").glob("version_*")
    assert json.loads((run / "run.json").read_text())["float32_matmul_precision"] == {
        "value": "highest",
        "chosen": "default",
    }


@pytest.mark.parametrize(
    ("choice", "subcommand", "device", "capability", "expected"),
    [
        (None, "fit", CUDA0, (9, 0), "high"),  # H100/H200
        (None, "test", CUDA0, (8, 0), "high"),  # A100: the first with TF32
        (None, "fit", CUDA0, (7, 5), "highest"),  # T4: no TF32 tensor cores
        (None, "predict", CUDA0, (9, 0), "highest"),  # probabilities as the exported model computes them
        (None, "fit", torch.device("cpu"), None, "highest"),
        ("highest", "fit", CUDA0, (9, 0), "highest"),  # the flag wins
        ("medium", "fit", torch.device("cpu"), None, "medium"),
    ],
)
def test_matmul_precision_is_high_only_on_tensor_cores_unless_chosen(choice, subcommand, device, capability, expected):
    assert choose_matmul_precision(choice, subcommand, device, capability)["value"] == expected


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def lightning_lines():
    """Every message that gets past mnistctl's filters on the loggers Lightning's lines come from."""
    console.configure_logging()
    handler = _Records()
    for name in console.NOISY_LOGGERS:
        logging.getLogger(name).addHandler(handler)
    yield handler.messages
    for name in console.NOISY_LOGGERS:
        logging.getLogger(name).removeHandler(handler)
    console.single_device(True)


def test_lightning_rank_line_is_dropped_on_one_device_and_kept_on_several(lightning_lines):
    from pytorch_lightning.accelerators import CUDAAccelerator

    console.single_device(True)
    CUDAAccelerator.set_nvidia_flags(0)  # Lightning's own code: logs "LOCAL_RANK: 0 - CUDA_VISIBLE_DEVICES: [...]"
    assert lightning_lines == []
    console.single_device(False)
    CUDAAccelerator.set_nvidia_flags(1)
    assert [m.split(" - ")[0] for m in lightning_lines] == ["LOCAL_RANK: 1"]


def test_lightning_tensor_cores_advice_is_dropped(lightning_lines, monkeypatch):
    from lightning_fabric.accelerators import cuda

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    monkeypatch.setattr(cuda, "_is_ampere_or_later", lambda device=None: True)
    cuda._check_cuda_matmul_precision.cache_clear()
    try:
        cuda._check_cuda_matmul_precision(CUDA0)  # Lightning's own code: logs the Tensor Cores advice
    finally:
        cuda._check_cuda_matmul_precision.cache_clear()
    assert lightning_lines == []
    logging.getLogger("pytorch_lightning.utilities.rank_zero").info("Seed set to 1")  # other lines still pass
    assert lightning_lines == ["Seed set to 1"]
