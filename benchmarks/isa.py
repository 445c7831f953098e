"""The instruction sets the benchmark runs on: this CPU's own, and AVX2 emulated on an AVX512 CPU.

    python -m benchmarks.isa          # this CPU's label, and what oneDNN's convolutions use under each

oneDNN (torch's CPU convolutions) honours ONEDNN_MAX_CPU_ISA, and torch's own kernels honour
ATEN_CPU_CAPABILITY: with both set to AVX2 an AVX512 machine runs the code an AVX2-only machine runs
(no AVX512, no native BF16), at its own clock. `onednn_isa` asks oneDNN itself (ONEDNN_VERBOSE) which
kernels a convolution of this CNN got, so the report says what really ran.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

AVX2 = "AVX2"
AVX2_ENV = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
# A training step's first convolution, as mnistctl runs it (channels_last), with oneDNN reporting its kernels.
CONV_PROBE = (
    "import torch; x = torch.zeros(8, 1, 28, 28).contiguous(memory_format=torch.channels_last); "
    "torch.nn.Conv2d(1, 16, 5).to(memory_format=torch.channels_last)(x).sum().backward()"
)


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))


def native_isa(flags: set[str] | None = None) -> str:
    """`AVX512-BF16`, `AVX512`, `AVX2` or the machine name (e.g. arm64): this CPU's best for this CNN."""
    flags = cpu_flags() if flags is None else flags
    if flags & {"avx512_bf16", "amx_bf16"}:
        return "AVX512-BF16"
    if "avx512f" in flags:
        return "AVX512"
    if "avx2" in flags:
        return AVX2
    import platform

    return platform.machine() or "unknown"


def isas(which: str, native: str | None = None) -> list[tuple[str, dict[str, str]]]:
    """(label, environment) per instruction set to run: `native`, `avx2` or `both` (AVX2 only where emulable)."""
    native = native or native_isa()
    rows = [] if which == "avx2" and native.startswith("AVX512") else [(native, {})]
    if which in ("both", "avx2") and native.startswith("AVX512"):
        rows.append((AVX2, dict(AVX2_ENV)))
    return rows


def onednn_isa(env: dict[str, str]) -> dict[str, str | None]:
    """What oneDNN says it runs on under `env`: its ISA line and the forward convolution's kernel."""
    done = subprocess.run(
        [sys.executable, "-c", CONV_PROBE],
        env={**os.environ, **env, "ONEDNN_VERBOSE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    isa = kernel = None
    for line in done.stdout.splitlines():
        fields = line.split(",")
        if "info" in fields and any(f.startswith("isa:") for f in fields):
            isa = next(f for f in fields if f.startswith("isa:"))[4:]
        elif "convolution" in fields and "exec" in fields and kernel is None:
            kernel = fields[fields.index("convolution") + 1]  # e.g. brg_conv_fwd:avx2
    return {"onednn_isa": isa, "conv_kernel": kernel}


if __name__ == "__main__":
    sys.stdout.write(f"this CPU: {native_isa()}\n")
    for label, env in isas("both"):
        sys.stdout.write(f"{label}: {onednn_isa(env)}\n")
