"""The `mnistctl` entry point: routes `sweep` to Hydra, every other subcommand to LightningCLI.

    python -m mnistctl fit --config configs/base.yaml

Top-level `--help` and `--version` are answered here without importing torch, so they are instant.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys

from mnistctl import __version__, startup_gc
from mnistctl.console import configure_logging, quiet_args, set_quiet
from mnistctl.errors import SKIPPED_FILES_EXIT_CODE, UsageError

HELP = f"""usage: mnistctl [-h] [--version] {{fit,validate,test,predict,sweep,runs,export,configs,completion}} ...

Train, evaluate, serve and sweep a CNN on MNIST (PyTorch Lightning + Hydra). Version {__version__}.

subcommands:
  fit        train the CNN, then test its best checkpoint (--test_after_fit false to skip)
  validate   evaluate a checkpoint on the validation split   (--ckpt_path FILE|last|best)
  test       evaluate a checkpoint on the test split         (--ckpt_path FILE|last|best)
  predict    write predictions.csv for the test split or your images (--ckpt_path ...)
  sweep      fan out configurations with Hydra multirun and compare them (criterion=ce,mse ...)
  runs       list every fit and sweep job; 'runs show RUN', 'runs diff A B' (--sort val_acc)
  export     write a checkpoint as a TorchScript/ONNX/pt2 model file for serving (--format onnx)
  configs    list, print or copy the configs that ship with mnistctl (--copy DIR)
  completion print a bash/zsh completion script (eval "$(mnistctl completion bash)")

Run 'mnistctl SUBCOMMAND --help' for the options of each. Add --debug for full tracebacks.
examples:
  mnistctl fit --config configs/base.yaml
  mnistctl test --ckpt_path best
  mnistctl sweep criterion=ce,mse optimizer=adam,sgd
  mnistctl runs --sort val_acc
"""


ROUTED = {
    "sweep": "mnistctl.sweep.command",
    "runs": "mnistctl.tools.runs",
    "export": "mnistctl.tools.export",
    "configs": "mnistctl.tools.configs",
    "completion": "mnistctl.tools.completion",
}


def main(args: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if args is None else args)
    if "--debug" in argv:
        argv.remove("--debug")
        os.environ["JSONARGPARSE_DEBUG"] = "true"  # jsonargparse accepts only true/false
    quiet = "--quiet" in argv
    set_quiet(quiet)  # export and configs --copy check it too
    if quiet:  # warnings and errors only: no progress bar, no result tables, no summary
        argv = quiet_args([a for a in argv if a != "--quiet"])
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(HELP)
        return 0 if argv else 2
    if argv[0] == "--version":
        sys.stdout.write(f"mnistctl {__version__}\n")
        return 0
    try:
        if argv[0] in ROUTED:  # not Trainer methods: each module's main(argv) parses its own arguments
            return importlib.import_module(ROUTED[argv[0]]).main(argv[1:])
        with startup_gc.paused():  # until the classes are built (MnistCLI resumes it): 0.5 s of start-up
            from mnistctl.cli.mnist_cli import run_cli

            configure_logging(quiet)  # after importing Lightning, which resets its loggers' level on import
            cli = run_cli(argv)
    except UsageError as err:
        if os.environ.get("JSONARGPARSE_DEBUG"):
            raise
        sys.stderr.write(f"mnistctl: error: {err}\n")
        return err.exit_code
    except SystemExit as exit_:
        if type(exit_).__name__ == "SIGTERMException":  # Lightning stopped fit cleanly on SIGTERM
            return 128 + 15
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except KeyboardInterrupt:  # Ctrl-C before Lightning's own handler runs (imports, parsing, building)
        if os.environ.get("JSONARGPARSE_DEBUG"):
            raise
        sys.stderr.write("mnistctl: interrupted\n")
        return 128 + signal.SIGINT
    except Exception as err:  # an unexpected failure: one line, the traceback only with --debug
        if (code := _signalled(err)) is not None:
            return code
        if os.environ.get("JSONARGPARSE_DEBUG"):
            raise
        sys.stderr.write(f"mnistctl: error: {type(err).__name__}: {err} (run again with --debug for the traceback)\n")
        return 1
    # Some images given to predict were unreadable: the CSV holds the rest, <csv stem>.skipped.txt names them.
    return SKIPPED_FILES_EXIT_CODE if getattr(getattr(cli, "datamodule", None), "predict_skipped", None) else 0


def _signalled(err: BaseException) -> int | None:
    """The exit status of a Ctrl-C or a SIGTERM that another exception now stands for: a signal that lands
    while numpy's C extension imports comes out as numpy's ImportError, with the KeyboardInterrupt or the
    handler's SystemExit as its context."""
    seen = err.__cause__ or err.__context__
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            sys.stderr.write("mnistctl: interrupted\n")
            return 128 + signal.SIGINT
        if isinstance(seen, SystemExit) and isinstance(seen.code, int):
            return seen.code
        seen = seen.__cause__ or seen.__context__
    return None


if __name__ == "__main__":
    sys.exit(main())
