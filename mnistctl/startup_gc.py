"""No garbage collection while a command starts; what start-up built is frozen before the Trainer runs.

    with startup_gc.paused():   # __main__.main, around a LightningCLI command
        ...                     # imports, parsing, instantiating: no collection
        startup_gc.resume()     # MnistCLI, before the Trainer runs: start-up frozen, the collector on
        ...                     # training, testing: collected as usual

Importing torch, Lightning and jsonargparse and parsing a command creates about 430,000 objects that live as
long as the process, and little garbage (14,000 objects collected during `mnistctl fit --print_config`).
CPython's collector still runs every 700 allocations, and each full collection walks every object: six of
them during that command, 0.5 s of its 2.9 s on a 2-core Xeon, and another at the end of every epoch of a
fit (0.15 s each).

So the collector is off from the command's start until its classes are built (`paused`); then everything that
exists is frozen (`gc.freeze`: left out of every later collection) and the collector runs again for what
the command does next (`resume`). When the command returns, `paused` unfreezes those objects (unless the
process had frozen its own before: the sweep's warm server does, to share them with the jobs it forks) and
leaves the collector as it was, so a caller that runs several commands in one process (the tests do) gets back
what each command leaves behind.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

_before: list[tuple[bool, bool]] = []  # per paused(): was the collector on, was anything frozen already


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """The collector stopped for a command's start-up (until `resume`); afterwards as it was before."""
    _before.append((gc.isenabled(), gc.get_freeze_count() > 0))
    gc.disable()
    try:
        yield
    finally:
        enabled, frozen_before = _before.pop()
        # Freezing first moves what was built while paused (without `resume`, e.g. after a usage error) out of
        # the youngest generation too, where the next collection would walk all of it (0.2 s); unfreezing puts
        # everything in the oldest, as a long-running process holds it. A process that had frozen its objects
        # itself (the sweep's warm server, before forking this job) keeps them frozen: they stay shared.
        gc.freeze()
        if not frozen_before:
            gc.unfreeze()
        if enabled:
            gc.enable()


def resume() -> None:
    """Freeze what start-up built and run the collector again (if it ran before `paused`); outside it, nothing."""
    if _before:
        gc.freeze()
        if _before[-1][0]:
            gc.enable()
