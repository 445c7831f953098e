"""MnistCLI: LightningCLI over MNISTClassifier and MNISTDataModule, plus mnistctl's run conventions.

    mnistctl fit --config configs/base.yaml
    mnistctl test --ckpt_path best

What it adds to stock LightningCLI: one run folder per fit (`runs/<name>/version_N`), evaluation
outputs written into the folder of the run that made the checkpoint, `--ckpt_path last|best|NAME`
resolved to a real file before anything loads, the data settings of a checkpoint reused on
evaluation, a test of the best checkpoint after fit, schedules sized from the Trainer, and
one-line errors.
"""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import sys
import warnings
from pathlib import Path

import torch
from jsonargparse import Namespace
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI, LRSchedulerTypeTuple
from torch.optim import Optimizer

from mnistctl import layout
from mnistctl.cli.checkpoint_io import AtomicCheckpointIO
from mnistctl.cli.checkpoints import load_checkpoint, resolve_ckpt_path
from mnistctl.cli.config_checks import check_config
from mnistctl.cli.hparams import hparams_callbacks
from mnistctl.cli.interrupts import InterruptCheckpoint
from mnistctl.cli.logger_choice import apply_logger_choice
from mnistctl.cli.manifest import RunManifest
from mnistctl.cli.precision import choose_precision
from mnistctl.cli.predictions import PredictionsCSV
from mnistctl.cli.progress import default_progress
from mnistctl.cli.rng_state import RNGStateCallback
from mnistctl.config_files import packaged_config
from mnistctl.console import is_quiet
from mnistctl.cpu_tuning import tune_process
from mnistctl.data import MNISTDataModule
from mnistctl.data.mnist_files import prepare_root
from mnistctl.errors import UsageError
from mnistctl.model import MNISTClassifier
from mnistctl.optimization import RECIPE_OPTIMIZER
from mnistctl.yaml_guard import check_yaml_text, guard_jsonargparse

# MNIST batches are cut in memory; there are no DataLoader workers to add.
warnings.filterwarnings("ignore", message=r".*does not have many workers")
warnings.filterwarnings("ignore", message=r".*Couldn't infer the batch indices")
warnings.filterwarnings("ignore", message=r".*LeafSpec")
# Lightning suggests srun whenever SLURM is installed; mnistctl runs one process per job by design.
warnings.filterwarnings("ignore", message=r"The `srun` command is available")
warnings.filterwarnings("ignore", message=r"Be aware that when using `ckpt_path`, callbacks")
warnings.filterwarnings("ignore", message=r"LightningCLI's args parameter is intended")

# Every YAML jsonargparse loads (config files, values, environment variables) is checked for alias bombs first.
guard_jsonargparse()

# At exit, skip the final garbage collection of the millions of objects torch and Lightning create: every
# command ends sooner (README, "Performance"). Refcounted objects and files still close.
atexit.register(gc.freeze)

SUBCOMMANDS = ("fit", "validate", "test", "predict")
SHARED_RUN_DIR_ENV = "MNISTCTL_SHARED_RUN_DIR"  # the run folder of a fit, for its DDP child processes
# Data settings that define what the model was trained and validated on: always from the checkpoint.
DATA_KEYS_FROM_CHECKPOINT = ("val_size", "split_seed", "mean", "std")
FIT_ONLY_CALLBACKS = {"ModelCheckpoint", "EarlyStopping", "LearningRateMonitor"}


class Parser(LightningArgumentParser):
    """Prints a parsing error as one line (plus its exit code 2) instead of usage and a long message."""

    def error(self, message: str, ex: Exception | None = None):
        if os.environ.get("JSONARGPARSE_DEBUG"):
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        prog = parser.prog.replace(" [options]", "")
        if not prog.startswith("mnistctl"):  # a nested parser (e.g. a class's init_args) names the script file
            prog = "mnistctl"
        sys.stderr.write(f"{prog}: error: {' '.join(message.split())} (see '{prog} --help')\n")
        sys.exit(2)


class MnistCLI(LightningCLI):
    def __init__(self, args: list[str] | None = None) -> None:
        tune_process()
        base = [str(packaged_config("base.yaml"))]
        # allow_abbrev=False: a typo such as --trainer.max_epoch must be an error, not a silent prefix match.
        sub_kwargs = {
            "default_config_files": base,
            "default_env": True,
            "env_prefix": "MNISTCTL",
            "allow_abbrev": False,
        }
        super().__init__(
            MNISTClassifier,
            MNISTDataModule,
            parser_class=Parser,
            # --optimizer and --lr_scheduler are handed to the model, whose configure_optimizers builds them.
            auto_configure_optimizers=False,
            save_config_kwargs={"overwrite": True},
            # Always on, not configurable: exact resume and clean interrupts are guarantees, not options.
            trainer_defaults={"callbacks": [RNGStateCallback(), InterruptCheckpoint()]},
            seed_everything_default=42,
            parser_kwargs={
                "prog": "mnistctl",
                "default_env": True,
                "env_prefix": "MNISTCTL",
                "allow_abbrev": False,
                **{s: sub_kwargs for s in SUBCOMMANDS},
            },
            args=args,
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=True,
            help="fit: test the best checkpoint on the test split when training ends",
        )
        parser.add_argument(
            "--num_threads",
            type=int | None,
            default=None,
            help="CPU threads for torch (default: all cores; parallel sweep jobs divide them)",
        )
        parser.add_lightning_class_args(PredictionsCSV, "predictions")
        # The same groups LightningCLI adds by default (any torch optimizer and schedule, by class path).
        parser.add_optimizer_args((Optimizer,))
        parser.add_lr_scheduler_args(LRSchedulerTypeTuple)

    # -- after parsing: resolve the checkpoint and reuse its data settings -------------------------

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        self.argv = list(sys.argv[1:] if args is None else args)  # recorded in run.json
        for path in _config_files(self.argv):
            _check_yaml(path)
        super().parse_arguments(parser, _default_plateau_monitor(self.argv))
        subcommand = self.config.get("subcommand")
        if subcommand is None:
            return
        config = self.config[subcommand]
        if config.get("ckpt_path"):
            ckpt = resolve_ckpt_path(str(config.ckpt_path), _runs_root(config))
            config.ckpt_path = str(ckpt)
            if subcommand != "fit":
                saved = load_checkpoint(ckpt).get("datamodule_hyper_parameters", {})
                for key in DATA_KEYS_FROM_CHECKPOINT:
                    if key in saved:
                        config.data[key] = saved[key]
        elif subcommand != "fit":
            raise UsageError(
                f"'mnistctl {subcommand}' needs --ckpt_path: a .ckpt file, 'last' or 'best' (the newest fit run)"
            )

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand]
        check_config(config)
        precision = choose_precision(config, self.subcommand)  # for run.json
        # Check the data before anything is built: a missing or corrupted copy fails fast, with no run folder.
        prepare_root(config.data.data_dir, config.data.download)
        if config.num_threads is not None:
            torch.set_num_threads(config.num_threads)
        if self.subcommand == "fit":
            apply_logger_choice(config.trainer)  # --trainer.logger false|null|true
            self.run_dir = layout.run_dir_of(Path(config.ckpt_path)) if config.ckpt_path else _allocate(config)
            _point_loggers_at(config, self.run_dir)
        else:
            self.run_dir = layout.run_dir_of(Path(config.ckpt_path))
            # Evaluation metrics go to <run>/<subcommand>/metrics.csv, beside the fit that made the checkpoint.
            folder = layout.evaluation_dir(self.run_dir, self.subcommand)
            config.trainer.logger = Namespace(
                class_path="pytorch_lightning.loggers.CSVLogger",
                init_args=Namespace(save_dir=str(folder.parent), name="", version=folder.name),
            )
            # Checkpointing and early stopping belong to fit; under evaluation they only warn.
            callbacks = config.trainer.callbacks or []
            config.trainer.callbacks = [c for c in callbacks if _class_name(c) not in FIT_ONLY_CALLBACKS]
            if self.subcommand == "predict" and not config.predictions.path:
                config.predictions.path = str(layout.default_predictions(self.run_dir))
        # Always on: run.json, and the progress display unless bars are off or the config lists its own.
        folder = self.run_dir if self.subcommand == "fit" else layout.evaluation_dir(self.run_dir, self.subcommand)
        self.manifest = RunManifest(folder, self.subcommand, self.argv, config)
        self.manifest.record["precision"] = precision
        defaults = self.trainer_defaults.get("callbacks") or []
        defaults = defaults if isinstance(defaults, list) else [defaults]
        self.trainer_defaults["callbacks"] = [
            *defaults,
            self.manifest,
            *default_progress(config.trainer),
            *hparams_callbacks(self.subcommand, config),  # TensorBoard's HParams row of a completed fit
        ]

    # -- running -------------------------------------------------------------------------------

    def instantiate_trainer(self, **kwargs):
        # Checkpoints are written to a temporary file and renamed: a kill never leaves half a checkpoint.
        configured = self._get(self.config_init, "trainer", default={}).get("plugins") or []
        configured = configured if isinstance(configured, list) else [configured]
        return super().instantiate_trainer(plugins=[*configured, AtomicCheckpointIO()], **kwargs)

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except BaseException:
            self._discard_empty_run()
            raise
        optimizer, lr_scheduler = self._get(self.config_init, "optimizer"), self._get(self.config_init, "lr_scheduler")
        self.model.optimizer = optimizer.as_dict() if optimizer else dict(RECIPE_OPTIMIZER)
        self.model.lr_scheduler = lr_scheduler.as_dict() if lr_scheduler else None

    def _run_subcommand(self, subcommand: str) -> None:
        try:
            super()._run_subcommand(subcommand)
        except BaseException as err:
            self.manifest.finish(err)
            self._discard_empty_run()
            if type(err) is SystemExit and self.trainer.interrupted:
                # Lightning turns Ctrl-C into exit(1) after its clean shutdown; the shell convention is 130.
                raise SystemExit(128 + 2) from None
            raise
        self.manifest.finish()

    def _discard_empty_run(self) -> None:
        """A fit that failed before its first checkpoint leaves no run folder behind."""
        if self.subcommand == "fit" and not any(layout.checkpoints_dir(self.run_dir).glob("*.ckpt")):
            shutil.rmtree(self.run_dir, ignore_errors=True)
            for parent in (self.run_dir.parent, self.run_dir.parent.parent):  # runs/<name>, then runs
                try:
                    parent.rmdir()  # only when empty: another run's folder is never touched
                except OSError:
                    break

    def after_fit(self) -> None:
        if not self.config.fit.test_after_fit or self.trainer.interrupted:
            return
        callback = self.trainer.checkpoint_callback
        ckpt = "best" if callback is not None and callback.best_model_path else None
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=ckpt, verbose=not is_quiet())


def _default_plateau_monitor(args: list[str]) -> list[str]:
    """`--lr_scheduler ReduceLROnPlateau` with no monitor watches val/loss.

    The short name resolves to Lightning's ReduceLROnPlateau, whose `monitor` is required; on the command
    line mnistctl supplies the default right after the choice, so a later --lr_scheduler.monitor still wins.
    """
    args = list(args)
    if any(a.startswith(("--lr_scheduler.monitor", "--lr_scheduler.init_args.monitor")) for a in args):
        return args
    for i, arg in enumerate(args):
        if arg.startswith("--lr_scheduler="):
            value, at = arg.split("=", 1)[1], i + 1
        elif arg == "--lr_scheduler" and i + 1 < len(args):
            value, at = args[i + 1], i + 2
        else:
            continue
        if value.rsplit(".", 1)[-1] == "ReduceLROnPlateau":
            return [*args[:at], "--lr_scheduler.monitor", "val/loss", *args[at:]]
    return args


def _config_files(args: list[str]) -> list[str]:
    """The values of every -c/--config in an argument list."""
    files = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-c", "--config")]
    return files + [a.split("=", 1)[1] for a in args if a.startswith("--config=")]


def _check_yaml(path: str) -> None:
    """Name the file and the line of a YAML syntax error (jsonargparse only says '<unicode string>'); refuse bombs."""
    import yaml

    if not Path(path).is_file():
        return  # missing: jsonargparse names it; a pipe (`--config <(...)`) can be read once only, by jsonargparse
    try:
        text = Path(path).read_text()
    except OSError:
        return  # jsonargparse reports unreadable files itself, with the file name
    try:
        check_yaml_text(text, f"config file {path}")  # before loading: an alias bomb is refused unexpanded
        yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "syntax error"
        raise UsageError(
            f"config file {path} is not valid YAML{where}: {problem}; fix the file or drop --config"
        ) from None


def _class_name(component) -> str:
    return str(getattr(component, "class_path", "")).rsplit(".", 1)[-1]


def _loggers(config: Namespace) -> list[Namespace]:
    loggers = config.trainer.logger
    if isinstance(loggers, Namespace):
        return [loggers]
    return [lg for lg in loggers if isinstance(lg, Namespace)] if isinstance(loggers, list) else []


def _runs_root(config: Namespace) -> str:
    """The folder that holds `<name>/version_N` run folders: the first logger's save_dir."""
    for logger in _loggers(config):
        if logger.init_args.get("save_dir"):
            return str(logger.init_args.save_dir)
    return layout.RUNS_ROOT


def _allocate(config: Namespace) -> Path:
    # Lightning's DDP launcher starts ranks 1.. by re-running this command line with LOCAL_RANK set, after
    # rank 0 has allocated the run folder: they join rank 0's folder, passed down in the environment.
    if os.environ.get("LOCAL_RANK", "0") != "0" and os.environ.get(SHARED_RUN_DIR_ENV):
        return Path(os.environ[SHARED_RUN_DIR_ENV])
    loggers = _loggers(config)
    name = next((str(lg.init_args.name) for lg in loggers if lg.init_args.get("name")), "mnist")
    run_dir = layout.allocate_run_dir(_runs_root(config), name)
    os.environ[SHARED_RUN_DIR_ENV] = str(run_dir.resolve())
    return run_dir


def _point_loggers_at(config: Namespace, run_dir: Path) -> None:
    """Make every logger write into run_dir, so metrics, events and config share one folder."""
    for logger in _loggers(config):
        if "version" in logger.init_args:
            logger.init_args.save_dir = str(run_dir.parent.parent)
            logger.init_args.name = run_dir.parent.name
            logger.init_args.version = run_dir.name
    if not _loggers(config):
        config.trainer.default_root_dir = str(run_dir)


def run_cli(args: list[str]) -> MnistCLI:
    # Lightning's DDP launcher starts the other ranks by re-running sys.argv, so it must be this command line
    # (LightningCLI's warning about sys.argv holding arguments as well as `args` is silenced above).
    saved, sys.argv = sys.argv, [sys.argv[0], *args]
    try:
        return MnistCLI(args=args)
    finally:
        sys.argv = saved
