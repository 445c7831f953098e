"""No garbage collection while a command starts; what start-up built is frozen before the Trainer runs.

    python -c "import gc, mnistctl.startup_gc as s; s.pause(); print(gc.isenabled())"   # False

Importing torch, Lightning and jsonargparse and parsing a command creates about 430,000 objects that live as
long as the process, and little garbage (14,000 objects collected during `mnistctl fit --print_config`).
CPython's collector still runs every 700 allocations, and each full collection walks every object: six of
them during that command, 0.5 s of its 2.9 s on a 2-core Xeon, and another at the end of every epoch of a
fit (0.15 s each).

So the collector is off from the command's start until its classes are built (`pause`); then everything that
exists is frozen (`gc.freeze`: left out of every later collection) and the collector runs again for what
the command does next (`resume`). When the command returns, `restore` unfreezes those objects (unless the
process had frozen its own before: the sweep's warm server does, to share them with the jobs it forks) and
leaves the collector as it was, so a caller that runs several commands in one process (the tests do) gets back
what each command leaves behind.
"""

from __future__ import annotations

import gc

_before: list[tuple[bool, bool]] = []  # per pause(): was the collector on, was anything frozen already


def pause() -> None:
    """Stop the collector for the command's start-up."""
    _before.append((gc.isenabled(), gc.get_freeze_count() > 0))
    gc.disable()


def resume() -> None:
    """Freeze what start-up built and run the collector again (if it ran before `pause`)."""
    if _before:
        gc.freeze()
        if _before[-1][0]:
            gc.enable()


def restore() -> None:
    """After the command: the collector as before `pause`, and what it froze unfrozen (see below)."""
    if not _before:
        return
    enabled, frozen_before = _before.pop()
    # Freezing first moves what was built while paused (without `resume`, e.g. after a usage error) out of the
    # youngest generation too, where the next collection would walk all of it (0.2 s); unfreezing puts
    # everything in the oldest, as a long-running process holds it. A process that had frozen its objects
    # itself (the sweep's warm server, before forking this job) keeps them frozen: they stay shared.
    gc.freeze()
    if not frozen_before:
        gc.unfreeze()
    if enabled:
        gc.enable()
