"""No garbage collection while a command starts; what start-up built is frozen before the Trainer runs.

    python -c "import gc, mnistctl.startup_gc as s; s.pause(); print(gc.isenabled())"   # False

Importing torch, Lightning and jsonargparse and parsing a command creates about 430,000 objects that live as
long as the process, and little garbage (14,000 objects collected during `mnistctl fit --print_config`).
CPython's collector still runs every 700 allocations, and each full collection walks every object: six of
them during that command, 0.5 s of its 2.9 s on a 2-core Xeon, and another at the end of every epoch of a
fit (0.15 s each).

So the collector is off from the command's start until its classes are built (`pause`); then everything that
exists is frozen (`gc.freeze`: left out of every later collection) and the collector runs again for what
the command does next (`resume`). When the command returns, `restore` unfreezes those objects and leaves the
collector as it was, so a caller that runs several commands in one process (the tests do) gets back what each
command leaves behind.
"""

from __future__ import annotations

import gc

_was_enabled: list[bool] = []  # the collector's state before pause(), while paused or frozen


def pause() -> None:
    """Stop the collector for the command's start-up."""
    _was_enabled.append(gc.isenabled())
    gc.disable()


def resume() -> None:
    """Freeze what start-up built and run the collector again (if it ran before `pause`)."""
    if _was_enabled:
        gc.freeze()
        if _was_enabled[-1]:
            gc.enable()


def restore() -> None:
    """After the command: nothing frozen by it, the collector as before `pause`."""
    if _was_enabled:
        # Freezing first moves what was built while paused (without `resume`, e.g. after a usage error) out
        # of the youngest generation too, where the next collection would walk all of it (0.2 s); unfreezing
        # puts everything in the oldest, as a long-running process holds it.
        gc.freeze()
        gc.unfreeze()
        if _was_enabled.pop():
            gc.enable()
