"""`--trainer.logger false` turns logging off cleanly; `null` and `true` mean the default loggers.

    mnistctl fit --trainer.logger false    # no metrics.csv, no TensorBoard events; run.json still has every epoch

Lightning's Trainer reads `logger=False` as "no logger" and `None` or `True` as "the default logger". In
mnistctl the default loggers are those of configs/base.yaml (CSVLogger and TensorBoardLogger, both
writing into the run folder), so `null`/`true` restore them: Lightning's own default would write into
`<run>/lightning_logs/version_0` and put the checkpoints there, out of reach of `--ckpt_path last`.
With logging off, the callbacks that cannot work without a logger are dropped, with one line saying so:
LearningRateMonitor and DeviceStatsMonitor (they raise without one) and LearningCurves (it draws
metrics.csv). run.json does not depend on a logger: its history still records every epoch.
"""

from __future__ import annotations

import logging

import yaml
from jsonargparse import Namespace, dict_to_namespace

from mnistctl.config_files import packaged_config
from mnistctl.flat_config import short_name

log = logging.getLogger(__name__)
NEEDS_LOGGER = ("LearningRateMonitor", "DeviceStatsMonitor", "LearningCurves")


def default_loggers() -> list[Namespace]:
    """The loggers of the packaged configs/base.yaml."""
    base = yaml.safe_load(packaged_config("base.yaml").read_text())
    return [dict_to_namespace(logger) for logger in base["trainer"]["logger"]]


def apply_logger_choice(trainer_config: Namespace) -> None:
    """Before fit: resolve `null`/`true` to the default loggers; with `false`, drop what needs a logger."""
    logger = trainer_config.logger
    if logger is None or logger is True:
        trainer_config.logger = default_loggers()
        return
    if logger is not False and logger != []:
        return
    callbacks = trainer_config.callbacks or []
    callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
    dropped = [c for c in callbacks if short_name(getattr(c, "class_path", "")) in NEEDS_LOGGER]
    trainer_config.callbacks = [c for c in callbacks if not any(c is d for d in dropped)]
    if dropped:
        names = ", ".join(short_name(c.class_path) for c in dropped)
        log.info("logging is off (--trainer.logger false): %s off too; run.json still records every epoch", names)
