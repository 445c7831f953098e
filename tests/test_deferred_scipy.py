"""scipy.signal waits for its first use (mnistctl/cli/deferred_scipy.py), and works the same once used."""

from __future__ import annotations

from conftest import run_python


def test_the_cli_imports_lightning_without_scipy_signal():
    """torchmetrics' `import scipy.signal` (with scipy.stats, 0.55 s of every command) must not run when the
    CLI is imported: the stand-in would be missing, registered after Lightning, or loaded by torchmetrics."""
    code = """import sys
import mnistctl.cli.mnist_cli, torchmetrics
print(type(sys.modules["scipy.signal"]).__name__, "scipy.stats" in sys.modules)
"""
    assert run_python(code).strip() == "DeferredModule False"


def test_scipy_signal_works_once_used():
    """After the stand-in, scipy.signal must be the real module to every way of reaching it: a name read from
    the stand-in, `dir()`, `from scipy.signal import ...`, a submodule import, the package's attribute,
    and torchmetrics' `hamming` alias."""
    code = """import sys
import numpy as np
import mnistctl.cli, torchmetrics
import scipy.signal
stand_in = scipy.signal
assert hasattr(scipy.signal, "hamming") and type(sys.modules["scipy.signal"]).__name__ == "DeferredModule"
assert np.allclose(scipy.signal.hamming(5), [0.08, 0.54, 1.0, 0.54, 0.08]), "alias"
assert "butter" in dir(stand_in), "dir() of the stand-in"
from scipy.signal import butter
b, a = butter(2, 0.5)
from scipy.signal.windows import hann
real = sys.modules["scipy.signal"]
assert type(real).__name__ == "module", type(real)
assert scipy.signal is real and sys.modules["scipy"].signal is real
assert stand_in.lfilter is real.lfilter and real.hamming is real.windows.hamming
print(len(b), round(float(hann(3)[1]), 3))
"""
    assert run_python(code).strip() == "3 1.0"


def test_a_submodule_import_first_loads_the_real_package():
    """`import scipy.signal.windows` before any name is read must still run scipy/signal/__init__.py."""
    code = """import sys
import mnistctl.cli
import scipy.signal.windows
print(type(sys.modules["scipy.signal"]).__name__, callable(sys.modules["scipy.signal"].firwin))
"""
    assert run_python(code).strip() == "module True"
