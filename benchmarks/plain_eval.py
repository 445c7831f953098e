"""The plain scripts that `mnistctl test` and `mnistctl predict` are timed against (issue 18.4).

    python -m benchmarks.plain_eval test CKPT --device cuda --json row.json
    python -m benchmarks.plain_eval predict CKPT --device cuda --csv predictions.csv --json row.json

Each does with a checkpoint what the mnistctl command does, in plain PyTorch and nothing else: read the
CNN's weights (weights only), hold the 10,000 test images on the device, run the network over them in
batches of `--batch_size` in float32 (TF32 matmuls for `test` on a GPU with tensor cores, as mnistctl's
`test` there; full float32 for `predict`, as mnistctl's), then report test accuracy and loss, or write one
CSV row per image in mnistctl's columns (id,pred,prob,p0..p9). No Lightning, no config files, no run folder.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

from benchmarks.baselines import normalise
from mnistctl.layout import PREDICTION_COLUMNS


def evaluate(ckpt: str, device_name: str, batch_size: int, csv_path: str | None) -> dict:
    """Test accuracy and loss over the test split; with `csv_path`, the predictions CSV as well."""
    import torch
    import torch.nn.functional as F

    from mnistctl.data.mnist_files import load_split, prepare_root
    from mnistctl.network import CNN

    device = torch.device(device_name)
    if device.type == "cuda" and csv_path is None and torch.cuda.get_device_capability(device)[0] >= 8:
        torch.set_float32_matmul_precision("high")  # what mnistctl's test picks on tensor cores
    state = torch.load(ckpt, map_location=device, weights_only=True)["state_dict"]
    net = CNN(10, 0.0).to(device, memory_format=torch.channels_last)
    net.load_state_dict({k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")})
    net.eval()
    images, labels = (t.to(device) for t in load_split(prepare_root(None, False), train=False))
    start = time.perf_counter()
    probs, loss_sum = [], 0.0
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            logits = net(normalise(images[i : i + batch_size]))
            if csv_path is None:  # test reports the loss; predict only probabilities
                loss_sum += float(F.cross_entropy(logits, labels[i : i + batch_size], reduction="sum"))
            probs.append(logits.softmax(-1))
    probs_all = torch.cat(probs).float().cpu()
    confidence, pred = probs_all.max(dim=1)
    result = {
        "test_acc": float((pred == labels.cpu()).float().mean()),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else str(device),
    }
    if csv_path is None:
        result["test_loss"] = loss_sum / len(images)
    else:
        with open(csv_path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([*PREDICTION_COLUMNS, *(f"p{k}" for k in range(probs_all.shape[1]))])
            rows = zip(pred.tolist(), confidence.tolist(), probs_all.tolist(), strict=True)
            writer.writerows([i, p, f"{c:.6f}", *(f"{v:.6f}" for v in row)] for i, (p, c, row) in enumerate(rows))
        result["csv_rows"] = len(images)
    result["eval_s"] = time.perf_counter() - start
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plain_eval", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["test", "predict"])
    parser.add_argument("ckpt", help="a checkpoint written by mnistctl fit")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch_size", type=int, default=2048)
    parser.add_argument("--csv", default=None, help="predict: the CSV to write")
    parser.add_argument("--json", required=True, help="the row: test_acc, test_loss, csv_rows, eval_s")
    args = parser.parse_args(argv)
    if (args.what == "predict") != (args.csv is not None):
        parser.error("--csv is predict's, and predict needs it")
    Path(args.json).write_text(json.dumps(evaluate(args.ckpt, args.device, args.batch_size, args.csv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
