"""Process settings that keep a CPU training step free of work that is not training.

    python -c "from mnistctl.cpu_tuning import tune_process; tune_process()"

`tune_process()` is called by the CLI before anything is built; the benchmark's plain loop calls it
too, so that mnistctl and the loop it is compared with run under the same process settings.

- glibc returns large freed blocks to the kernel at once (blocks over its mmap threshold are
  unmapped on free, and the heap top is trimmed), so every training step maps its activations
  afresh and page-faults on each new page: thousands of faults per step at batch 128, seen as
  system time. Raising both thresholds keeps freed memory in the process for the next step.
- A CUDA build of torch on a machine without a GPU probes for one (loading the NVML library) in
  every optimizer step, because torch caches the device count only once CUDA is initialised.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

# mallopt(3) parameters (malloc.h). 32 MiB is glibc's largest mmap threshold on 64-bit: an
# activation of this CNN is at most ~13 MB (batch 256), so every per-step block is reused.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed memory for reuse; False where there is no glibc mallopt."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (macOS, Windows): its allocator decides
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def skip_cuda_probe() -> None:
    """Where torch has CUDA compiled in but no GPU, record that once instead of probing every step."""
    import torch

    if torch.cuda.is_available() or not hasattr(torch.cuda, "_cached_device_count"):
        return
    # torch.cuda.device_count() answers from this cache first (torch >= 2.2); no GPU appears mid-run.
    torch.cuda._cached_device_count = 0


def tune_process() -> None:
    if not keep_freed_memory():
        log.debug("malloc thresholds left as they are (no glibc mallopt)")
    skip_cuda_probe()
