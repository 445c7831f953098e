"""MnistCLI: LightningCLI over MNISTClassifier and MNISTDataModule, plus mnistctl's run conventions.

    mnistctl fit --config configs/base.yaml
    mnistctl test --ckpt_path best

What it adds to stock LightningCLI: one run folder per fit (`runs/<name>/version_N`), evaluation
outputs written into the folder of the run that made the checkpoint (or --output_dir), `--ckpt_path
last|best|NAME` resolved to a real file before anything loads (validate/test/predict without it: the
best checkpoint of the newest fit), the data settings of a checkpoint reused on evaluation, a test of
the best checkpoint after fit, schedules sized from the Trainer, and one-line errors.

A checkpoint is data: its hyper-parameters reach the config only through `checkpoint_trust` (no class
it names is imported unless allow-listed). `fit --ckpt_path` continues the run that made the
checkpoint, in its folder, with its settings (`resume_guard`), writing nothing there until the
checkpoint is restored (`resume_gate`); a checkpoint outside a run folder starts a new run from it.
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Literal

import torch
from jsonargparse import Namespace
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI, LRSchedulerTypeTuple
from torch.optim import Optimizer

from mnistctl import layout, startup_gc
from mnistctl.cli import run_folders
from mnistctl.cli.checkpoint_io import AtomicCheckpointIO
from mnistctl.cli.checkpoint_trust import check_state_dict, trusted_data_hparams, trusted_model_hparams
from mnistctl.cli.checkpoints import load_checkpoint, newest_best, resolve_ckpt_path
from mnistctl.cli.config_checks import check_argv_numbers, check_config
from mnistctl.cli.determinism import apply_determinism
from mnistctl.cli.device_report import DeviceReport
from mnistctl.cli.env_vars import check_env_vars
from mnistctl.cli.epoch_record import EpochRecord
from mnistctl.cli.hparams import hparams_callbacks
from mnistctl.cli.idle_hooks import IdleProfiler, skip_idle_hooks
from mnistctl.cli.int_flags import int_before_float
from mnistctl.cli.interrupts import InterruptCheckpoint
from mnistctl.cli.last_checkpoint import last_every_epoch
from mnistctl.cli.logger_choice import apply_logger_choice
from mnistctl.cli.manifest import RunManifest
from mnistctl.cli.precision import choose_precision
from mnistctl.cli.predictions import PredictionsCSV
from mnistctl.cli.predictions_path import check_predictions_path
from mnistctl.cli.progress import default_progress
from mnistctl.cli.resume_gate import HeldSaveConfig, hold_run_writes
from mnistctl.cli.resume_guard import (
    OPTIMIZATION,
    RestartOptimization,
    SettingsInCheckpoint,
    guard_resume,
    optimization_settings,
    resume_entry,
    user_set_model_keys,
    warn_model_overridden,
)
from mnistctl.cli.rng_state import RNGStateCallback
from mnistctl.cli.srun_ranks import ReleaseRankRendezvous, pass_tasks_per_node, srun_environment
from mnistctl.config_files import packaged_config
from mnistctl.console import is_quiet
from mnistctl.cpu_tuning import tune_process
from mnistctl.data import MNISTDataModule
from mnistctl.data.mnist_files import prepare_root
from mnistctl.errors import UsageError
from mnistctl.model import MNISTClassifier
from mnistctl.optimization import RECIPE_OPTIMIZER
from mnistctl.sweep.trial_reporter import trial_callbacks
from mnistctl.yaml_guard import check_yaml_text, guard_jsonargparse

# MNIST batches are cut in memory; there are no DataLoader workers to add.
warnings.filterwarnings("ignore", message=r".*does not have many workers")
warnings.filterwarnings("ignore", message=r".*Couldn't infer the batch indices")
warnings.filterwarnings("ignore", message=r".*LeafSpec")
# Lightning suggests srun whenever SLURM is installed; mnistctl runs one process per job by design.
warnings.filterwarnings("ignore", message=r"The `srun` command is available")
warnings.filterwarnings("ignore", message=r"Be aware that when using `ckpt_path`, callbacks")
warnings.filterwarnings("ignore", message=r"LightningCLI's args parameter is intended")
# A run told to use the CPU on a machine with a GPU: the device line (device_report.py) already says where it ran.
warnings.filterwarnings("ignore", message=r"GPU available but not used")

# Every YAML jsonargparse loads (config files, values, environment variables) is checked for alias bombs first.
guard_jsonargparse()

# At exit, skip the final garbage collection of the millions of objects torch and Lightning create: every
# command ends sooner (README, "Performance"). Refcounted objects and files still close.
atexit.register(gc.freeze)
log = logging.getLogger(__name__)

SUBCOMMANDS = ("fit", "validate", "test", "predict")
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
    run_dir: Path
    created: list[Path]  # the folders this command made for its run: the only ones a failure may remove
    resuming_in_place = False  # fit --ckpt_path into the folder of the run that made the checkpoint
    config_changes: dict = {}  # fit --ckpt_path: settings that differ from the checkpoint's run (allowed)
    new_output_dirs: list[Path] = []  # validate/test/predict: the folders of its output folder this command makes
    restart_optimization = False  # an allowed change of optimizer or lr_scheduler: those start afresh
    steps_done = 0  # the checkpoint's global step, when a one-cycle schedule starts afresh on resume

    def __init__(self, args: list[str] | None = None) -> None:
        self.created = []
        self.argv = list(sys.argv[1:] if args is None else args)  # recorded in run.json
        self.only_subcommand = self.argv[0] if self.argv and self.argv[0] in SUBCOMMANDS else None
        base = [str(packaged_config("base.yaml"))]
        # allow_abbrev=False: a typo such as --trainer.max_epoch must be an error, not a silent prefix match.
        sub_kwargs = {
            "default_config_files": base,
            "default_env": True,
            "env_prefix": "MNISTCTL",
            "allow_abbrev": False,
        }
        try:  # LightningCLI's constructor parses, builds the classes and runs the subcommand
            super().__init__(
                MNISTClassifier,
                MNISTDataModule,
                parser_class=Parser,
                # --optimizer and --lr_scheduler are handed to the model, whose configure_optimizers builds them.
                auto_configure_optimizers=False,
                save_config_callback=HeldSaveConfig,
                save_config_kwargs={"overwrite": True},
                # Always on, not configurable: exact resume and clean interrupts are guarantees, not options.
                trainer_defaults={"callbacks": [RNGStateCallback(), InterruptCheckpoint()]},
                seed_everything_default=42,
                parser_kwargs={
                    "prog": "mnistctl",
                    "default_env": True,
                    "env_prefix": "MNISTCTL",
                    "allow_abbrev": False,
                    **{s: sub_kwargs for s in self.subcommands()},
                },
                args=args,
            )
        except BaseException:
            # Whatever stops the command before the fit's first checkpoint (a bad value, Ctrl-C while the run
            # record asks git for the commit, ...): none of the folders it created stay behind.
            self._discard_empty_run()
            raise

    def subcommands(self) -> dict[str, set[str]]:
        # Only the parser of the subcommand asked for is built: each is a full jsonargparse tree of the
        # Trainer, model and data (0.08 s of start-up apiece). Without a subcommand first in argv, all four,
        # so that a misspelt one is told which exist.
        every = LightningCLI.subcommands()
        return {self.only_subcommand: every[self.only_subcommand]} if self.only_subcommand else every

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
        parser.add_argument(
            "--float32_matmul_precision",
            type=Literal["highest", "high", "medium"] | None,
            default=None,
            help="torch.set_float32_matmul_precision (default: high on a CUDA GPU with tensor cores for "
            "fit/validate/test, else highest); recorded in run.json",
        )
        parser.add_argument(
            "--allow_config_change",
            type=bool,
            default=False,
            help="fit --ckpt_path: continue with model, data or optimizer settings other than the run's "
            "(recorded in run.json; a new optimizer or lr_scheduler starts afresh)",
        )
        parser.add_argument(
            "--output_dir",
            type=str | None,
            default=None,
            help="validate/test/predict: folder for run.json, config.yaml, metrics.csv, pictures and the "
            "default predictions.csv (default: <run>/<subcommand>); a new or empty folder",
        )
        parser.add_lightning_class_args(PredictionsCSV, "predictions")
        int_before_float(parser)  # --trainer.limit_*_batches 1 is one batch, whatever typing has cached
        # The same groups LightningCLI adds by default (any torch optimizer and schedule, by class path).
        parser.add_optimizer_args((Optimizer,))
        parser.add_lr_scheduler_args(LRSchedulerTypeTuple)

    # -- after parsing: resolve the checkpoint and reuse its data settings -------------------------

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        for path in _config_files(self.argv):  # self.argv: the same args, set in __init__
            _check_yaml(path)
        check_argv_numbers(self.argv)
        if self.only_subcommand:  # an environment variable that names no option is not ignored silently
            check_env_vars(self._parser(self.only_subcommand), self.only_subcommand)
        super().parse_arguments(parser, _default_plateau_monitor(self.argv))
        subcommand = self.config.get("subcommand")
        if subcommand is None:
            return
        config = self.config[subcommand]
        check_config(config)  # before LightningCLI seeds the RNGs: a bad seed is one line, not numpy's error
        if config.get("ckpt_path"):
            ckpt = resolve_ckpt_path(str(config.ckpt_path), run_folders.runs_root(config))
        elif subcommand != "fit":
            ckpt = newest_best(subcommand, run_folders.runs_root(config))
        else:
            return
        config.ckpt_path = str(ckpt)
        if subcommand != "fit":
            saved = trusted_data_hparams(load_checkpoint(ckpt), ckpt, DATA_KEYS_FROM_CHECKPOINT)
            for key, value in saved.items():
                config.data[key] = value

    def _parse_ckpt_path(self) -> None:
        """Replaces LightningCLI's merge of the checkpoint's hyper-parameters into the config.

        Lightning merges them unchecked (and jsonargparse imports any class_path in them); fit would
        silently train with the checkpoint's model settings instead of the user's. Here: nothing is
        imported that is not allow-listed; fit compares instead of merging (the guard on resume);
        validate, test and predict build the checkpoint's model and say so if asked for another.
        """
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else None
        if config is None or not config.get("ckpt_path"):
            return
        path = Path(config.ckpt_path)
        ckpt = load_checkpoint(path)
        hparams = trusted_model_hparams(ckpt, path)
        if subcommand == "fit":
            self.config_changes = guard_resume(config, ckpt, hparams, path)
            if any(key.split(".", 1)[0] in OPTIMIZATION for key in self.config_changes):
                self.restart_optimization = True  # their saved state belongs to the old settings
                self.steps_done = int(ckpt.get("global_step") or 0)
            return
        user_keys = user_set_model_keys(config, self._parser(subcommand).get_defaults(), self.argv)
        warn_model_overridden(subcommand, config, hparams, user_keys)
        if hparams:
            self.config = self.parser.parse_object({subcommand: {"model": hparams}}, self.config)

    def before_instantiate_classes(self) -> None:
        # Not before parsing: parsing alone must leave a process fit to fork (sweep/warm_server.py warms up by
        # parsing), and tune_process asks torch whether there is a GPU.
        tune_process()
        config = self.config[self.subcommand]
        determinism = apply_determinism(config.trainer)  # before anything touches CUDA
        # Check the data before anything is built: a missing or corrupted copy fails fast, with no run folder.
        prepare_root(config.data.data_dir, config.data.download)
        precision = choose_precision(config, self.subcommand)  # after the data: bad input stays one line
        if config.num_threads is not None:
            torch.set_num_threads(config.num_threads)
        extra = []
        pass_tasks_per_node()  # `srun --ntasks N`: the tasks per node Lightning checks its devices against
        if self.subcommand == "fit":
            apply_logger_choice(config.trainer)  # --trainer.logger false|null|true
            if config.output_dir is not None:
                raise UsageError("--output_dir is for validate, test and predict; fit writes a new run folder")
            # A checkpoint outside a run folder (copied anywhere) starts a new run: its folder is not ours.
            ckpt_run = layout.run_of_checkpoint(Path(config.ckpt_path)) if config.ckpt_path else None
            self.resuming_in_place = ckpt_run is not None
            self.run_dir = ckpt_run if self.resuming_in_place else run_folders.allocate_for(config, self.created)
            run_folders.point_loggers_at(config, self.run_dir)
            folder = self.run_dir
            extra.append(SettingsInCheckpoint(optimization_settings(config)))
            extra.append(EpochRecord())  # an epoch's figures in the checkpoint that ends it: a kill loses no row
            if self.restart_optimization:
                extra.append(RestartOptimization())
        else:
            self.run_dir = layout.run_dir_of(Path(config.ckpt_path))
            # Evaluation outputs go to <run>/<subcommand>/, beside the fit that made the checkpoint, or --output_dir.
            folder = run_folders.output_folder(self.run_dir, self.subcommand, config.output_dir)
            self.new_output_dirs = [p for p in (folder, *folder.parents) if not p.exists()]  # innermost first
            config.trainer.logger = Namespace(
                class_path="pytorch_lightning.loggers.CSVLogger",
                init_args=Namespace(save_dir=str(folder.parent), name="", version=folder.name),
            )
            # Checkpointing and early stopping belong to fit; under evaluation they only warn.
            callbacks = config.trainer.callbacks or []
            config.trainer.callbacks = [c for c in callbacks if _class_name(c) not in FIT_ONLY_CALLBACKS]
            for callback in config.trainer.callbacks:  # the test pictures go with the other outputs
                if _class_name(callback) == "TestPlots" and not callback.init_args.get("dirpath"):
                    callback.init_args.dirpath = str(folder)
            if self.subcommand == "predict":
                if not config.predictions.path:
                    default = folder if config.output_dir else self.run_dir
                    config.predictions.path = str(layout.default_predictions(default))
                skip_list = bool(config.data.predict_dir)  # unreadable images are listed beside the CSV
                reads = (config.ckpt_path, *([config.data.predict_dir] if skip_list else []))
                check_predictions_path(config.predictions.path, config.predictions.overwrite, skip_list, reads)
            run_folders.say_replacing(folder)
        # Always on: run.json, and the progress display unless bars are off or the config lists its own.
        resume = None
        if self.subcommand == "fit" and config.ckpt_path:
            resume = resume_entry(Path(config.ckpt_path), self.config_changes, self.restart_optimization)
        self.manifest = RunManifest(folder, self.subcommand, self.argv, config, resume=resume)
        self.manifest.record["precision"] = precision
        self.manifest.record["determinism"] = determinism
        defaults = self.trainer_defaults.get("callbacks") or []
        defaults = defaults if isinstance(defaults, list) else [defaults]
        self.trainer_defaults["callbacks"] = [
            *defaults,
            *extra,
            DeviceReport(self.subcommand, config.float32_matmul_precision, self.manifest.record),  # before run.json
            self.manifest,
            *default_progress(config.trainer),
            *hparams_callbacks(self.subcommand, config),  # TensorBoard's HParams row of a completed fit
            *(last_every_epoch(config.trainer.callbacks) if self.subcommand == "fit" else []),  # last.ckpt
            *trial_callbacks(self.subcommand),  # a search job's fit: val/acc to its Optuna trial, pruning
            ReleaseRankRendezvous(),  # srun: rank 0 removes the file that told the other ranks the run folder
        ]

    # -- running -------------------------------------------------------------------------------

    def instantiate_trainer(self, **kwargs):
        # Checkpoints are written to a temporary file and renamed: a kill never leaves half a checkpoint.
        trainer_config = self._get(self.config_init, "trainer", default={})
        configured = trainer_config.get("plugins") or []
        configured = configured if isinstance(configured, list) else [configured]
        plugins = [*configured, *srun_environment(configured), AtomicCheckpointIO()]
        if not trainer_config.get("profiler") and not trainer_config.get("barebones"):  # barebones refuses any
            kwargs.setdefault("profiler", IdleProfiler())  # the default no-op, cheaper per hook call
        trainer = super().instantiate_trainer(plugins=plugins, **kwargs)
        skip_idle_hooks(trainer.callbacks)  # 102 of 108 callback calls per training step did nothing
        if self.resuming_in_place:
            hold_run_writes(trainer, self.run_dir, self.manifest)
        return trainer

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        ckpt_path = self.config[self.subcommand].get("ckpt_path")
        if ckpt_path:  # weights that do not fit the model: one line now, not Lightning's RuntimeError later
            check_state_dict(load_checkpoint(ckpt_path), Path(ckpt_path), self.model.state_dict())
        optimizer, lr_scheduler = self._get(self.config_init, "optimizer"), self._get(self.config_init, "lr_scheduler")
        self.model.optimizer = optimizer.as_dict() if optimizer else dict(RECIPE_OPTIMIZER)
        self.model.lr_scheduler = lr_scheduler.as_dict() if lr_scheduler else None
        self.model.steps_done = self.steps_done

    def _run_subcommand(self, subcommand: str) -> None:
        startup_gc.resume()  # start-up's objects frozen, the collector on for what the Trainer does
        try:
            super()._run_subcommand(subcommand)
        except BaseException as err:
            self.manifest.finish(err)  # then __init__'s handler discards the folders it made, if still empty
            if type(err) is SystemExit and self.trainer.interrupted:
                # Lightning turns Ctrl-C into exit(1) after its clean shutdown; the shell convention is 130.
                raise SystemExit(128 + 2) from None
            raise
        self.manifest.finish()

    def _discard_empty_run(self) -> None:
        """A fit that failed before its first checkpoint leaves none of the folders it created behind."""
        if self.created and not any(layout.checkpoints_dir(self.created[-1]).glob("*.ckpt")):
            run_folders.discard(self.created)
        for folder in self.new_output_dirs:  # an evaluation refused before it wrote: no empty folder of its own
            try:
                folder.rmdir()  # only when empty
            except OSError:
                break

    def after_fit(self) -> None:
        if not self.config.fit.test_after_fit or self.trainer.interrupted:
            return
        callback = self.trainer.checkpoint_callback
        # The best checkpoint's path, not "best": that makes Lightning warn about the second ModelCheckpoint
        # (last_checkpoint.py) although it reads the first, the configured one, either way.
        ckpt = callback.best_model_path if callback is not None and callback.best_model_path else None
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


def run_cli(args: list[str]) -> MnistCLI:
    # Lightning's DDP launcher starts the other ranks by re-running sys.argv, so it must be this command line
    # (LightningCLI's warning about sys.argv holding arguments as well as `args` is silenced above).
    saved, sys.argv = sys.argv, [sys.argv[0], *args]
    try:
        return MnistCLI(args=args)
    finally:
        sys.argv = saved
        # A DDP rank that exits with its process group alive can abort in C++ teardown ("terminate called
        # without an active exception", exit 134: seen once in a CI rehearsal of the srun test): end it here.
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
