"""`mnistctl export`: a checkpoint as one model file that plain torch or onnxruntime serves.

    mnistctl export --ckpt_path best --format onnx      # -> runs/mnist/version_N/model.onnx

The exported model takes raw images, (B, 1, 28, 28) float in [0, 1] (pixel / 255), and returns class
probabilities (B, 10): the checkpoint's normalisation and the softmax are part of it, so it gives
what `mnistctl predict` gives. Formats: `torchscript` (`torch.jit.load`), `onnx` (onnxruntime; needs
`pip install 'mnistctl[onnx]'`) and `pt2` (`torch.export.load(...).module()`).

The model is serialised in memory, then written as one new file (see `mnistctl.atomic`): a full disk,
SIGTERM (exit 143) or kill -9 leaves no partial file. Export never writes over its input checkpoint,
and never over an existing file unless told so (`--overwrite`).
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import sys
import warnings
from pathlib import Path

from mnistctl.argparser import OneLineParser
from mnistctl.atomic import atomic_write, nearest_existing, no_folder_kind
from mnistctl.console import is_quiet, shown
from mnistctl.errors import UsageError
from mnistctl.layout import RUNS_ROOT

SUFFIXES = {"torchscript": ".pt", "onnx": ".onnx", "pt2": ".pt2"}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="mnistctl export",
        description="Write a checkpoint as a model file that takes (B, 1, 28, 28) images in [0, 1] and "
        "returns (B, 10) class probabilities.",
        epilog="Load it with: torch.jit.load('model.pt') | onnxruntime.InferenceSession('model.onnx') | "
        "torch.export.load('model.pt2').module()",
    )
    parser.add_argument(
        "--ckpt_path", required=True, help="a .ckpt file, or 'last'/'best' (the newest fit run under --runs_dir)"
    )
    parser.add_argument("--format", choices=list(SUFFIXES), default="torchscript", help="default: %(default)s")
    parser.add_argument("--output", default=None, help="file to write (default: <run folder>/model.pt|.onnx|.pt2)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument(
        "--runs_dir", default=RUNS_ROOT, help="where 'last'/'best' look for runs (default: %(default)s)"
    )
    return parser


def serving_module(ckpt: dict, path: Path = Path("checkpoint")):
    """The checkpoint's CNN with its normalisation in front and a softmax behind, in eval mode."""
    import torch
    from torch import nn

    from mnistctl.network import CNN

    class Serving(nn.Module):
        def __init__(self, net: nn.Module, mean: float, std: float) -> None:
            super().__init__()
            self.net = net
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            # (B, 1, 28, 28) in [0, 1] -> normalised as MNISTDataModule does -> (B, 10) probabilities
            return self.net((images - self.mean) / self.std).softmax(-1)

    from mnistctl.cli.checkpoint_trust import check_state_dict, trusted_data_hparams, trusted_model_hparams

    hparams = trusted_model_hparams(ckpt, path)
    data = trusted_data_hparams(ckpt, path, ("mean", "std"))
    net = CNN(hparams.get("num_classes", 10), hparams.get("dropout_ratio", 0.25))
    check_state_dict(ckpt, path, net.state_dict(), prefix="net.")
    weights = {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    net.load_state_dict(weights)
    return Serving(net, data.get("mean", 0.1307), data.get("std", 0.3081)).eval()


class ExportWriteError(UsageError):
    """The model file could not be written (disk full, file too large, permissions)."""

    exit_code = 1


def export(module, fmt: str, output: Path, overwrite: bool = False) -> Path:
    """Write `module` in format `fmt` to `output`, as one new file (never over one unless `overwrite`)."""
    import torch

    example = torch.rand(2, 1, 28, 28)
    batch = {"images": {0: torch.export.Dim("batch", min=1)}}  # any batch size; 28x28 fixed
    buffer = io.BytesIO()  # in memory first: torch's C++ writers abort the process on a full disk
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in favour of torch.export
        if fmt == "torchscript":
            torch.jit.save(torch.jit.trace(module, example), buffer)
        elif fmt == "pt2":
            torch.export.save(torch.export.export(module, (example,), dynamic_shapes=batch), buffer)
        else:
            _require_onnx()
            onnx_program = torch.onnx.export(
                module,
                (example,),
                input_names=["images"],
                output_names=["probs"],
                dynamic_shapes=batch,
                dynamo=True,
                verbose=False,
            )
            buffer.write(onnx_program.model_proto.SerializeToString())
    try:
        with atomic_write(output, "wb", replace=overwrite) as f:
            f.write(buffer.getbuffer())
    except FileExistsError:
        raise UsageError(f"--output {output} appeared while exporting; add --overwrite to replace it") from None
    except OSError as err:
        raise ExportWriteError(f"could not write {output} ({err.strerror or err}); nothing was written") from None
    return output


def _require_onnx() -> None:
    from importlib.util import find_spec

    missing = [name for name in ("onnx", "onnxscript") if find_spec(name) is None]
    if missing:
        raise UsageError(
            f"--format onnx needs {' and '.join(missing)}: pip install 'mnistctl[onnx]' "
            "(or use --format torchscript or pt2)"
        )


class _SigTerm:
    received = False


def _stop_on_sigterm(signum, frame) -> None:
    _SigTerm.received = True  # read again after writing: the exception below can be swallowed
    raise SystemExit(128 + signal.SIGTERM)  # like `mnistctl test`; the unnamed output file just vanishes


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    _SigTerm.received = False
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        return _export(args)  # a SIGTERM turned into an ImportError by numpy: mnistctl.__main__ reads it
    finally:
        signal.signal(signal.SIGTERM, previous)


def _export(args: argparse.Namespace) -> int:
    from mnistctl.cli.checkpoints import load_checkpoint, resolve_ckpt_path
    from mnistctl.layout import run_dir_of

    ckpt_path = resolve_ckpt_path(args.ckpt_path, args.runs_dir)
    default = run_dir_of(ckpt_path) / f"model{SUFFIXES[args.format]}"
    output = Path(args.output) if args.output else default
    _check_output(output, ckpt_path, args.overwrite, default.name)
    module = serving_module(load_checkpoint(ckpt_path), ckpt_path)
    existed = os.path.lexists(output)
    if not _SigTerm.received:
        export(module, args.format, output, overwrite=args.overwrite)
    if _SigTerm.received:
        # Raised inside a callback that swallows exceptions (an import lock's weakref callback says "Exception
        # ignored in ..."), the SystemExit never stopped the export: stop now, with no model file of ours left.
        if not existed:
            output.unlink(missing_ok=True)
        return 128 + signal.SIGTERM
    if not is_quiet():
        sys.stdout.write(f"wrote {output} ({args.format}, from {ckpt_path})\n")
    return 0


def _check_output(output: Path, ckpt_path: Path, overwrite: bool, default_name: str) -> None:
    """UsageError, before the checkpoint is even loaded, for an --output export may not write.

    A symbolic link at --output is replaced itself (with --overwrite), never written through: the model
    file appears by a rename, which is atomic only in the folder the user named, and the link may point
    anywhere (a file of someone else's, outside the run folder, nowhere).
    """
    existing = nearest_existing(output.parent)
    if not existing.is_dir():
        what = no_folder_kind(existing)
        raise UsageError(f"--output {output}: {shown(existing)} is {what}, not a folder; give an --output in a folder")
    if output.is_dir():
        raise UsageError(f"--output {output} is a folder; give a file name, e.g. {output / default_name}")
    if output.exists() and os.path.samefile(output, ckpt_path):
        raise UsageError(f"--output {output} is the checkpoint being exported; give another file name")
    if output.is_symlink() and not overwrite:
        raise UsageError(
            f"--output {output} is a symbolic link (to {os.readlink(output)}); export never writes through one: "
            "add --overwrite to replace the link itself (what it points to stays as it is), or give another --output"
        )
    if os.path.lexists(output) and not overwrite:
        raise UsageError(f"{output} already exists; add --overwrite to replace it, or give another --output")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
