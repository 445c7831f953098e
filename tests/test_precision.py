"""The automatic precision: bf16-mixed where the CPU computes BF16 natively, float32 elsewhere; said, recorded,
and overridden by an explicit --trainer.precision."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import TINY, run_main
from mnistctl.cli.precision import native_bf16

CPUINFO = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f {extra}\nmodel name\t: test\n"


@pytest.mark.parametrize(
    ("extra", "cap", "expected"),
    [
        ("avx512_bf16", None, "avx512_bf16"),
        ("amx_tile amx_bf16", None, "amx_bf16"),
        ("avx512vnni", None, None),  # AVX512 without BF16: float32
        ("avx512_bf16", "AVX2", None),  # oneDNN held to AVX2, as the benchmark's AVX2 rows do
        ("avx512_bf16", "AVX512_CORE", None),
        ("avx512_bf16", "AVX512_CORE_BF16", "avx512_bf16"),
    ],
)
def test_native_bf16_needs_the_cpu_flag_and_a_onednn_isa_that_allows_it(monkeypatch, extra, cap, expected):
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    if cap:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    else:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert native_bf16(CPUINFO.format(extra=extra)) == expected


def fit_record(capsys, *args: str) -> tuple[dict, dict, str]:
    assert run_main("fit", *TINY, "--test_after_fit", "false", *args) == 0
    err = capsys.readouterr().err
    (run,) = Path("runs/mnist").glob("version_*")
    return json.loads((run / "run.json").read_text()), yaml.safe_load((run / "config.yaml").read_text()), err


def test_automatic_precision_is_said_once_recorded_and_saved(capsys):
    expected = "bf16-mixed" if native_bf16() else "32-true"
    record, config, err = fit_record(capsys)
    assert record["precision"]["value"] == expected and record["precision"]["chosen"] == "auto"
    assert record["device"]["precision"] == expected  # what the Trainer really ran
    assert config["trainer"]["precision"] == expected  # a re-run from config.yaml repeats the choice
    lines = [line for line in err.splitlines() if line.startswith("precision ")]
    assert lines == [
        f"precision {expected}: {record['precision']['reason']}; --trainer.precision "
        f"{'32-true' if expected == 'bf16-mixed' else 'bf16-mixed'} to override"
    ]


def test_explicit_precision_wins_and_nothing_is_said(capsys):
    record, config, err = fit_record(capsys, "--trainer.precision", "32-true")
    assert record["precision"] == {"value": "32-true", "chosen": "config"}
    assert record["device"]["precision"] == "32-true" and config["trainer"]["precision"] == "32-true"
    assert not [line for line in err.splitlines() if line.startswith("precision ")]


def test_held_to_avx2_the_automatic_choice_is_float32(capsys, monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    record, _, err = fit_record(capsys)
    assert record["precision"] == {"value": "32-true", "chosen": "auto", "reason": "this CPU has no native BF16"}
    assert record["device"]["precision"] == "32-true"


def test_predict_stays_float32_like_the_exported_model(tiny_run, tmp_path):
    """Its probabilities are compared with the exported float32 model's (tests/test_export.py)."""
    run = shutil.copytree(tiny_run, tmp_path / "runs" / "mnist" / tiny_run.name)  # the shared run stays untouched
    args = ["--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--trainer.limit_predict_batches", "2"]
    assert run_main("predict", *args, "--trainer.enable_progress_bar", "false") == 0
    record = json.loads((run / "predict" / "run.json").read_text())
    assert record["precision"] == {"value": "32-true", "chosen": "config"}
    assert record["device"]["precision"] == "32-true"
