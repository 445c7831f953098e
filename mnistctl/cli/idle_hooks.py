"""Per-batch callback hooks that a callback leaves as Lightning's no-op are taken out of the dispatch.

    python -c "from mnistctl.cli.idle_hooks import PER_BATCH_HOOKS; print(PER_BATCH_HOOKS)"

Lightning calls every per-batch hook of every callback, overridden or not, each inside a profiler context
named after the callback's `state_key` (for ModelCheckpoint and EarlyStopping a dict built and repr'd per
call). With mnistctl's 17 callbacks a training step made 108 such calls, of which 6 did something:
0.24 ms per step, 1.7% of a bf16 step at batch 128 on a 2-core AMX Xeon (measured in one process, each
Lightning step paired with a plain PyTorch step). Lightning's dispatcher
(`pytorch_lightning.trainer.call._call_callback_hooks`) calls a hook only if it is callable, so an
instance attribute of None hides the inherited no-op from it; hooks a callback overrides are untouched.
Only per-batch hooks: setup, epoch and checkpoint hooks run a few times per command and stay as they are.

Every hook call that is left still enters `trainer.profiler.profile(...)`; without `--trainer.profiler` that is
Lightning's PassThroughProfiler, whose `profile` is a generator-based context manager (0.75 us a call, about
40 calls a step). `IdleProfiler` is the same no-op with one shared null context (0.14 us a call).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from pytorch_lightning import Callback
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.profilers import PassThroughProfiler

NULL_CONTEXT = contextlib.nullcontext()

PER_BATCH_HOOKS = (
    "on_train_batch_start",
    "on_train_batch_end",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
    "on_validation_batch_start",
    "on_validation_batch_end",
    "on_test_batch_start",
    "on_test_batch_end",
    "on_predict_batch_start",
    "on_predict_batch_end",
)


def _checkpoint_per_batch_idle(callback: ModelCheckpoint) -> bool:
    steps = getattr(callback, "_every_n_train_steps", None)
    return isinstance(steps, int) and steps < 1 and getattr(callback, "_train_time_interval", 0) is None


# Hooks of Lightning's own callbacks that return at once under settings fixed when the callback is built:
# ModelCheckpoint's batch-end check without `every_n_train_steps` or `train_time_interval`, and
# LearningRateMonitor's batch-start with `logging_interval: epoch`. Only the classes' own hooks: a subclass
# that overrides one keeps it. A Lightning version without these attributes keeps its hooks.
IDLE_BY_SETTINGS = {
    (ModelCheckpoint, "on_train_batch_end"): _checkpoint_per_batch_idle,
    (LearningRateMonitor, "on_train_batch_start"): lambda callback: getattr(callback, "logging_interval", 0) == "epoch",
}


def idle_by_settings(callback: Callback, hook: str) -> bool:
    for (cls, name), idle in IDLE_BY_SETTINGS.items():
        if name == hook and isinstance(callback, cls) and getattr(type(callback), hook) is getattr(cls, hook):
            return idle(callback)
    return False


def skip_idle_hooks(callbacks: Iterable[Callback]) -> int:
    """Hide each callback's no-op per-batch hooks from Lightning; returns how many were hidden."""
    hidden = 0
    for callback in callbacks:
        for hook in PER_BATCH_HOOKS:
            if hook in vars(callback):
                continue  # set on the instance by its owner
            inherited = getattr(type(callback), hook, None) is getattr(Callback, hook)
            if not inherited and not idle_by_settings(callback, hook):
                continue
            try:
                setattr(callback, hook, None)
            except AttributeError:  # a class with __slots__: it keeps its no-op
                continue
            hidden += 1
    return hidden


class IdleProfiler(PassThroughProfiler):
    """Lightning's default no-op profiler, without a context manager built per hook call."""

    def profile(self, action_name: str) -> contextlib.AbstractContextManager:
        return NULL_CONTEXT
