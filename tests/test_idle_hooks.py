"""Per-batch callback hooks left as Lightning's no-op are hidden from its dispatch; every hook a callback
overrides still runs on every batch (the bugs: hiding too much, hiding nothing, a Lightning that calls None)."""

from __future__ import annotations

import json

from pytorch_lightning import Callback
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint

from conftest import TINY, run_main
from mnistctl.cli.idle_hooks import PER_BATCH_HOOKS, skip_idle_hooks


class EndsOnly(Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        pass


def test_only_inherited_no_ops_are_hidden():
    mine, checkpoint = EndsOnly(), ModelCheckpoint()
    mine.on_test_batch_end = print  # set on the instance by its owner: kept
    assert skip_idle_hooks([mine, checkpoint]) == 2 * len(PER_BATCH_HOOKS) - 2 - 1
    assert mine.on_train_batch_end is not None and mine.on_test_batch_end is print
    assert mine.on_train_batch_start is None and mine.on_before_zero_grad is None
    assert checkpoint.on_train_batch_end is not None  # ModelCheckpoint saves every N steps from there
    assert checkpoint.on_validation_batch_end is None


def test_a_fit_runs_the_overridden_hooks_on_every_batch_and_skips_the_rest(tmp_path):
    assert run_main("fit", *TINY, "--trainer.callbacks+=probes.HookCensus") == 0
    census = json.loads((tmp_path / "hooks.json").read_text())
    assert census["batch_ends"] == 8  # TINY's limit_train_batches: Lightning still calls what is overridden
    live = census["live"]
    assert live["HookCensus"] == ["on_train_batch_end"]
    assert live["ModelCheckpoint"] == list(_overridden(ModelCheckpoint)) == ["on_train_batch_end"]
    assert live["EarlyStopping"] == [] and live["LearningRateMonitor"] == list(_overridden(LearningRateMonitor))
    # A training step calls a handful of hooks of all the callbacks' six each, not six per callback.
    training = PER_BATCH_HOOKS[:6]
    calls_per_step = sum(hook in training for hooks in live.values() for hook in hooks)
    assert len(live) >= 15 and calls_per_step <= 6


def _overridden(cls: type) -> tuple[str, ...]:
    return tuple(h for h in PER_BATCH_HOOKS if getattr(cls, h) is not getattr(Callback, h))
