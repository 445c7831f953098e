"""`scipy.signal` imported on first use, not when torchmetrics is imported: half a second of every command.

    python -X importtime -m mnistctl fit --print_config 2>&1 | grep scipy.signal   # nothing

torchmetrics 1.9 runs `import scipy.signal` in its `__init__` (and in its two audio packages) whenever SciPy
is installed, only to alias `scipy.signal.hamming` for another package (torchmetrics issue 3457; pull request
3459 defers it). SciPy is installed beside mnistctl because Optuna, the sweeper's search, requires it, and
`scipy.signal` brings scipy.stats, optimize, linalg and fft: 0.55 s of the start-up `mnistctl fit` adds to a
plain PyTorch loop on a 2-core Xeon, and no mnistctl command reads any of it.

So before Lightning is imported (`mnistctl/cli/__init__.py`), `scipy.signal` is registered as a stand-in
module that already has `hamming` (torchmetrics then leaves it alone). The first other name read from it, or
an import of one of its submodules (which reads `__path__`), imports the real `scipy.signal`, which takes the
stand-in's place in `sys.modules` and on the `scipy` package; the stand-in forwards every later read to it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types

NAME = "scipy.signal"
SWAP = threading.RLock()  # re-entrant: the real module's own import may read through the stand-in


class DeferredModule(types.ModuleType):
    """The stand-in: names it does not hold itself are read from the real module, imported then."""

    def __getattr__(self, name: str):  # called only for names not in the stand-in's own __dict__
        return getattr(real_module(), name)

    def __dir__(self) -> list[str]:  # what completion and help() list: the real module's names
        return dir(real_module())


def real_module() -> types.ModuleType:
    """The real `scipy.signal`, imported now if only the stand-in is there."""
    with SWAP:  # one thread swaps; another waits, then finds the real module (or its import under way)
        if isinstance(sys.modules.get(NAME), DeferredModule):
            del sys.modules[NAME]  # so that the import below runs scipy/signal/__init__.py
            module = importlib.import_module(NAME)  # also sets scipy.signal on the package
            if not hasattr(module, "hamming"):  # what torchmetrics adds, for whoever relies on it
                module.hamming = module.windows.hamming
    return importlib.import_module(NAME)


def hamming(*args, **kwargs):
    """`scipy.signal.windows.hamming`, the alias torchmetrics looks for."""
    return real_module().windows.hamming(*args, **kwargs)


def defer_scipy_signal() -> None:
    """Register the stand-in, unless `scipy.signal` is imported already or SciPy is not installed."""
    if NAME in sys.modules or importlib.util.find_spec("scipy") is None:
        return
    spec = importlib.util.find_spec(NAME)  # imports the `scipy` package itself: 10 ms after numpy
    if spec is None:
        return
    stand_in = DeferredModule(NAME, "scipy.signal, imported on first use (mnistctl.cli.deferred_scipy)")
    # What introspection reads off every module (inspect.getmodule walks sys.modules for __file__) is set
    # here, so that only a real use imports the module. No __path__: a submodule import must load it.
    stand_in.__spec__, stand_in.__loader__ = spec, spec.loader
    stand_in.__file__, stand_in.__package__ = spec.origin, NAME
    stand_in.hamming = hamming
    sys.modules[NAME] = stand_in
    sys.modules["scipy"].signal = stand_in
