"""Per-batch callback hooks that do nothing are hidden from Lightning's dispatch; every hook that does
something still runs on every batch (the bugs: hiding too much, hiding nothing, a Lightning that calls None)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from pytorch_lightning import Callback
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.profilers import SimpleProfiler

from conftest import TINY, run_main
from mnistctl.cli.idle_hooks import PER_BATCH_HOOKS, IdleProfiler, skip_idle_hooks


class EndsOnly(Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        pass


class SavesOnMyTerms(ModelCheckpoint):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        pass


def test_only_no_ops_are_hidden():
    mine = EndsOnly()
    mine.on_test_batch_end = print  # set on the instance by its owner: kept
    assert skip_idle_hooks([mine]) == len(PER_BATCH_HOOKS) - 2
    assert mine.on_train_batch_end is not None and mine.on_test_batch_end is print
    assert mine.on_train_batch_start is None and mine.on_before_zero_grad is None


@pytest.mark.parametrize(
    ("callback", "hook", "hidden"),
    [
        (ModelCheckpoint(), "on_train_batch_end", True),  # saves at epoch ends only: its batch check returns
        (ModelCheckpoint(every_n_train_steps=5), "on_train_batch_end", False),
        (ModelCheckpoint(train_time_interval=timedelta(minutes=1)), "on_train_batch_end", False),
        (SavesOnMyTerms(), "on_train_batch_end", False),  # a subclass's own hook is its business
        (LearningRateMonitor(logging_interval="epoch"), "on_train_batch_start", True),
        (LearningRateMonitor(), "on_train_batch_start", False),  # logs every logging interval
        (LearningRateMonitor(logging_interval="step"), "on_train_batch_start", False),
    ],
    ids=["ckpt-epochs", "ckpt-steps", "ckpt-time", "ckpt-subclass", "lr-epoch", "lr-default", "lr-step"],
)
def test_lightning_callbacks_lose_a_batch_hook_only_where_their_settings_make_it_return_at_once(callback, hook, hidden):
    skip_idle_hooks([callback])
    assert (getattr(callback, hook) is None) is hidden
    assert callback.on_validation_batch_end is None


def test_a_fit_runs_the_hooks_that_act_on_every_batch_and_skips_the_rest(tmp_path):
    assert run_main("fit", *TINY, "--trainer.callbacks+=probes.HookCensus") == 0
    census = json.loads((tmp_path / "hooks.json").read_text())
    assert census["batch_ends"] == 8  # TINY's limit_train_batches: Lightning still calls what acts
    live = census["live"]
    assert live["HookCensus"] == ["on_train_batch_end"]
    # base.yaml's checkpoints save at epoch ends and its LearningRateMonitor logs per epoch.
    assert live["ModelCheckpoint"] == live["EarlyStopping"] == live["LearningRateMonitor"] == []
    # A training step calls one hook of all the callbacks' six each: the census's (TINY has no progress bar).
    training = PER_BATCH_HOOKS[:6]
    calls_per_step = sum(hook in training for hooks in live.values() for hook in hooks)
    assert len(live) >= 15 and calls_per_step == 1


def test_a_checkpoint_every_n_steps_still_saves_every_n_steps(tmp_path):
    args = ["--trainer.callbacks+=ModelCheckpoint", "--trainer.callbacks.every_n_train_steps", "3"]
    args += ["--trainer.callbacks.dirpath", str(tmp_path / "steps"), "--trainer.callbacks.save_top_k", "-1"]
    assert run_main("fit", *TINY, *args, "--test_after_fit", "false") == 0
    saved = sorted(p.name for p in (tmp_path / "steps").glob("*.ckpt"))
    assert saved == ["epoch=0-step=3.ckpt", "epoch=0-step=6.ckpt"]


def test_the_default_no_op_profiler_is_the_cheap_one_and_a_chosen_profiler_is_kept(tmp_path, monkeypatch):
    from mnistctl.cli.mnist_cli import MnistCLI

    seen, build = [], MnistCLI.instantiate_trainer

    def instantiate_trainer(cli, **kwargs):
        trainer = build(cli, **kwargs)
        seen.append(trainer.profiler)
        return trainer

    monkeypatch.setattr(MnistCLI, "instantiate_trainer", instantiate_trainer)
    assert run_main("fit", *TINY, "--test_after_fit", "false") == 0
    profiler = ["--trainer.profiler", "pytorch_lightning.profilers.SimpleProfiler"]
    assert run_main("fit", *TINY, *profiler, "--test_after_fit", "false") == 0
    assert [type(p) for p in seen] == [IdleProfiler, SimpleProfiler]
    assert seen[1].recorded_durations  # the chosen profiler timed the fit's actions
    with seen[0].profile("anything") as inside:  # a no-op context like PassThroughProfiler's
        assert inside is None
