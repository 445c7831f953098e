"""`mnistctl export`: a checkpoint as one model file that plain torch or onnxruntime serves.

    mnistctl export --ckpt_path best --format onnx      # -> runs/mnist/version_N/model.onnx

The exported model takes raw images, (B, 1, 28, 28) float in [0, 1] (pixel / 255), and returns class
probabilities (B, 10): the checkpoint's normalisation and the softmax are part of it, so it gives
what `mnistctl predict` gives. Formats: `torchscript` (`torch.jit.load`), `onnx` (onnxruntime; needs
`pip install 'mnistctl[onnx]'`) and `pt2` (`torch.export.load(...).module()`).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

from mnistctl.argparser import OneLineParser
from mnistctl.atomic import make_readable
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
    parser.add_argument(
        "--runs_dir", default=RUNS_ROOT, help="where 'last'/'best' look for runs (default: %(default)s)"
    )
    return parser


def serving_module(ckpt: dict):
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

    hparams = ckpt.get("hyper_parameters", {})
    data = ckpt.get("datamodule_hyper_parameters", {})
    net = CNN(hparams.get("num_classes", 10), hparams.get("dropout_ratio", 0.25))
    weights = {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    net.load_state_dict(weights)
    return Serving(net, data.get("mean", 0.1307), data.get("std", 0.3081)).eval()


def export(module, fmt: str, output: Path) -> Path:
    """Write `module` in format `fmt` to `output` (atomically: a temporary file renamed when complete)."""
    import torch

    example = torch.rand(2, 1, 28, 28)
    batch = {"images": {0: torch.export.Dim("batch", min=1)}}  # any batch size; 28x28 fixed
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in favour of torch.export
        if fmt == "torchscript":
            scripted = torch.jit.trace(module, example)
            save: Callable[[str], None] = lambda path: torch.jit.save(scripted, path)  # noqa: E731
        elif fmt == "pt2":
            program = torch.export.export(module, (example,), dynamic_shapes=batch)
            save = lambda path: torch.export.save(program, path)  # noqa: E731
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
            save = onnx_program.save
        _write_atomically(output, save)
    return output


def _require_onnx() -> None:
    from importlib.util import find_spec

    missing = [name for name in ("onnx", "onnxscript") if find_spec(name) is None]
    if missing:
        raise UsageError(
            f"--format onnx needs {' and '.join(missing)}: pip install 'mnistctl[onnx]' "
            "(or use --format torchscript or pt2)"
        )


def _write_atomically(path: Path, save: Callable[[str], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same suffix as the target: torch.export.save warns about a .pt2 archive named otherwise.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".partial{path.suffix}")
    os.close(fd)
    try:
        save(tmp)
        make_readable(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from mnistctl.cli.checkpoints import load_checkpoint, resolve_ckpt_path
    from mnistctl.layout import run_dir_of

    ckpt_path = resolve_ckpt_path(args.ckpt_path, args.runs_dir)
    module = serving_module(load_checkpoint(ckpt_path))
    default = run_dir_of(ckpt_path) / f"model{SUFFIXES[args.format]}"
    output = Path(args.output) if args.output else default
    if output.is_dir():
        raise UsageError(f"--output {output} is a folder; give a file name, e.g. {output / default.name}")
    export(module, args.format, output)
    sys.stdout.write(f"wrote {output} ({args.format}, from {ckpt_path})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
