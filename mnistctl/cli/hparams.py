"""TensorBoard's HParams dashboard: every fit's hyperparameters beside its final metrics.

    tensorboard --logdir sweeps/<time>      # HParams tab: one row per sweep job
    tensorboard --logdir runs               # one row per fit

When training completes (on_fit_end, before the test that follows fit), global rank zero writes
into the run's TensorBoard events: the hyperparameters (`hyperparameters()`: seed, model,
data, optimizer, lr_scheduler and the Trainer limits that change the result, flattened as in
`mnistctl runs`; unset values and paths left out), the best value of the checkpoint monitor as a
scalar `<monitor>_best` (`val/acc_best`), and the end of the session. The dashboard reads each
metric's last scalar in the run when it is shown, so `test/acc` and `test/loss`, which the test
after fit logs into the same run a moment later, are there too; so is `val/acc` of the last epoch.
No experiment summary is written: TensorBoard would take the columns of one arbitrary run from it;
without one it builds them from every run (SGD's momentum beside Adam's betas). The CLI adds this
callback to every fit that has a TensorBoardLogger; runs that fail or are interrupted write nothing.
"""

from __future__ import annotations

import time

from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.loggers import TensorBoardLogger

from mnistctl.flat_config import flatten

SECTIONS = ("model", "data", "optimizer", "lr_scheduler")
TRAINER_KEYS = (
    "max_epochs",
    "max_steps",
    "limit_train_batches",
    "accumulate_grad_batches",
    "gradient_clip_val",
    "precision",
    "devices",
    "num_nodes",
)
# Where the data comes from and how big evaluation batches are: they do not change what is learnt.
NOT_HYPERPARAMETERS = ("data.data_dir", "data.download", "data.predict_dir", "data.eval_batch_size")
# torch.optim's implementation switches: the same update, computed another way.
IMPLEMENTATION_ONLY = (".foreach", ".fused", ".capturable", ".differentiable")


def hyperparameters(config: dict) -> dict[str, bool | int | float | str]:
    """The flattened config values that define a fit's result, as TensorBoard takes them."""
    trainer = config.get("trainer") or {}
    tree = {
        "seed": config.get("seed_everything"),
        **{section: config.get(section) for section in SECTIONS},
        "trainer": {key: trainer.get(key) for key in TRAINER_KEYS},
    }
    flat = flatten(tree)
    return {
        key: _value(value)
        for key, value in flat.items()
        # None is "not set": TensorBoard shows an empty cell, not the text None.
        if value is not None and key not in NOT_HYPERPARAMETERS and not key.endswith(IMPLEMENTATION_ONLY)
    }


def _value(value) -> bool | int | float | str:
    return value if isinstance(value, bool | int | float | str) else str(value)


class HParamsSummary(Callback):
    """Writes the HParams session of a completed fit into its TensorBoard events (global rank zero).

    Args:
        hparams: the values to show, from `hyperparameters(config)`.
    """

    def __init__(self, hparams: dict) -> None:
        self.hparams = hparams
        self._start = time.time()

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        logger = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        if logger is None or not trainer.is_global_zero:
            return
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2, summary_v2

        step = trainer.global_step
        callback = trainer.checkpoint_callback
        if callback is not None and callback.monitor and callback.best_model_score is not None:
            logger.log_metrics({f"{callback.monitor}_best": float(callback.best_model_score)}, step=step)
        end = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value("STATUS_SUCCESS"), end_time_secs=time.time())
        end_data = metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(session_end_info=end))
        writer = logger.experiment._get_file_writer()  # as Lightning's own log_hyperparams does
        writer.add_summary(summary_v2.hparams_pb(self.hparams, start_time_secs=self._start), step)
        writer.add_summary(
            Summary(
                value=[Summary.Value(tag=metadata.SESSION_END_INFO_TAG, metadata=end_data, tensor=metadata.NULL_TENSOR)]
            ),
            step,
        )
        writer.flush()


def hparams_callbacks(subcommand: str, config) -> list[Callback]:
    """[HParamsSummary] for fit; evaluations add nothing to the run's dashboard row."""
    if subcommand != "fit":
        return []
    return [HParamsSummary(hyperparameters(config.as_dict()))]
