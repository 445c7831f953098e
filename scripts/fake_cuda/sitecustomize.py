"""A stand-in for one CUDA GPU, for finding without a GPU the tests that would take the GPU path on one.

    make gpu-audit     # the fast tier with this folder first on PYTHONPATH (every test process loads it)

Right after `torch` is first imported (no change to import order) torch.cuda answers as on a machine with
one GPU: is_available, device_count, the device's name and compute capability. Lightning's `auto` then picks
the GPU, and any real CUDA work fails ("Found no NVIDIA driver"): a test that forgets to pin the CPU fails
where it would have run on the GPU. Calls a machine with a GPU makes on every CPU run too (Lightning saves
and restores the CUDA random state around the sanity check, torch.optim asks whether the current stream is
capturing a graph) are answered here, so CPU-pinned runs pass. CUDA_VISIBLE_DEVICES="" turns it off, as it
hides a real GPU. FAKECUDA_LOG=FILE notes each process it patched. Not a GPU: timing, kernels and numbers
on a real one are not modelled (that is `make gpu-check`'s).
"""

import importlib.abc
import importlib.util
import os
import sys

_LOG = os.environ.get("FAKECUDA_LOG")


def _note(what):
    if _LOG:
        try:
            with open(_LOG, "a") as f:
                f.write(f"{os.getpid()} {what} argv={sys.argv[:4]!r}\n")
        except OSError:
            pass


def _patch(torch):
    if os.environ.get("CUDA_VISIBLE_DEVICES") == "":  # as real torch: no device visible
        _note("CUDA_VISIBLE_DEVICES empty: not patched")
        return
    cuda = torch.cuda
    cuda.is_available = lambda: True
    cuda.device_count = lambda: 1
    cuda.get_device_name = lambda device=None: "FAKE GPU"
    cuda.get_device_capability = lambda device=None: (9, 0)
    cuda.is_bf16_supported = lambda *a, **k: True
    if hasattr(cuda, "_cached_device_count"):
        cuda._cached_device_count = 1
    state = {}

    def get_rng_state(device="cuda"):
        _note("get_rng_state")
        return state.get("s", torch.zeros(16, dtype=torch.uint8)).clone()

    def set_rng_state(new_state, device="cuda"):
        _note("set_rng_state")
        state["s"] = new_state.clone()

    def get_rng_state_all():
        return [get_rng_state(0)]

    def set_rng_state_all(states):
        for s in states:
            set_rng_state(s)

    import torch.cuda.random as r
    for mod in (cuda, r):
        mod.get_rng_state, mod.set_rng_state = get_rng_state, set_rng_state
        mod.get_rng_state_all, mod.set_rng_state_all = get_rng_state_all, set_rng_state_all
    # torch.optim's graph-capture check asks the current accelerator's stream on every step (a real GPU machine
    # initialises CUDA there, even for a CPU run): answer "not capturing" without CUDA.
    class _Stream:
        def is_capturing(self):
            return False

    acc = getattr(torch, "accelerator", None)  # torch 2.6 and later
    if acc is not None:
        acc.current_stream = lambda device=None: _Stream()
        acc.current_device_index = lambda: 0
    cuda.is_current_stream_capturing = lambda: False
    _note("patched torch.cuda")


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "torch":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("torch")
        if spec is None or spec.loader is None:
            return spec
        orig_exec = spec.loader.exec_module

        def exec_module(module):
            orig_exec(module)
            _patch(module)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _Finder())
