"""More than one process: DDP on CPU (gloo) shards every epoch, shares one run folder and writes one CSV.

The fit and predict runs are subprocesses: Lightning's DDP launcher re-runs the command line of the
process it is in, which must be `mnistctl`, not pytest.
"""

from __future__ import annotations

import os

import pytest
import torch
from torch.utils.data import DistributedSampler

from conftest import PROBES_ON_PATH, last_metric, read_csv, run_cli, run_main
from mnistctl.data import MNISTDataModule
from mnistctl.data.batches import TensorBatches

DDP = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]
QUIET = ["--trainer.enable_progress_bar", "false"]


def shard_ids(batches: TensorBatches) -> list[int]:
    return [i for _, _, ids in batches for i in ids.tolist()]


@pytest.mark.parametrize("shuffle", [True, False])
def test_batches_split_across_ranks_like_a_distributed_sampler(shuffle):
    n, epoch, seed = 1001, 2, 3  # odd: the last rank's shard is padded by wrapping around
    images, labels = torch.zeros(n, 28, 28, dtype=torch.uint8), torch.zeros(n, dtype=torch.int64)
    shards = []
    for rank in range(2):
        batches = TensorBatches(images, labels, 100, shuffle, seed, lambda: epoch, rank=rank, world_size=2)
        sampler = DistributedSampler(range(n), num_replicas=2, rank=rank, shuffle=shuffle, seed=seed)
        sampler.set_epoch(epoch)
        assert shard_ids(batches) == list(sampler)  # the oracle: torch's own DistributedSampler
        assert len(batches) == 6  # ceil(ceil(1001 / 2) / 100): both ranks run the same number of steps
        shards.append(set(shard_ids(batches)))
    assert shards[0] | shards[1] == set(range(n))


@pytest.mark.slow  # over 9 s: the fast tier stays under 5 minutes
def test_two_process_fit_and_predict(tmp_path):
    fit = run_cli(
        "fit",
        *DDP,
        *QUIET,
        "--trainer.max_epochs=1",
        "--trainer.limit_train_batches=8",
        "--trainer.limit_val_batches=1",
        "--data.batch_size=64",
        "--test_after_fit=false",
        "--trainer.callbacks+=ddp_probe.RecordTrainIds",
        cwd=tmp_path,
        env=PROBES_ON_PATH,
    )
    assert fit.returncode == 0, fit.stderr[-3000:]
    # One run folder for both processes.
    (run,) = (tmp_path / "runs" / "mnist").iterdir()
    assert run.name == "version_0" and (run / "config.yaml").is_file() and (run / "checkpoints" / "last.ckpt").is_file()

    # Each process trained on its own shard of epoch 0's permutation, as a DistributedSampler deals it.
    data = MNISTDataModule()
    data.setup("fit")
    train_ids = data.splits["train"][2]
    order = torch.randperm(len(train_ids), generator=torch.Generator().manual_seed(0))  # shuffle_seed 0 + epoch 0
    seen = [[int(x) for x in (tmp_path / f"train_ids_rank{r}.txt").read_text().split()] for r in range(2)]
    for rank in range(2):
        assert seen[rank] == train_ids[order[rank::2][: 8 * 64]].tolist()
    assert not set(seen[0]) & set(seen[1])
    # Lightning gives each process its share of the cores, not all of them each.
    threads = max(1, len(os.sched_getaffinity(0)) // 2)
    for rank in range(2):
        assert (tmp_path / f"threads_rank{rank}.txt").read_text().split() == [str(threads), "2"]

    # Two-process predict: both shards gathered into one CSV, identical to a one-process predict.
    predict = run_cli("predict", *DDP, *QUIET, "--ckpt_path", "last", cwd=tmp_path)
    assert predict.returncode == 0, predict.stderr[-3000:]
    rows = read_csv(run / "predictions.csv")
    assert [int(r["id"]) for r in rows] == list(range(10_000))
    single = tmp_path / "single.csv"
    assert run_main("predict", *QUIET, "--ckpt_path", "last", "--predictions.path", str(single)) == 0
    for a, b in zip(rows, read_csv(single), strict=True):
        assert a["pred"] == b["pred"] and abs(float(a["prob"]) - float(b["prob"])) < 1e-5


@pytest.mark.slow
def test_two_processes_converge_like_one(tmp_path):
    budget = ["--trainer.max_epochs=1", *QUIET]
    accuracy = {}
    for name, flags in {"one": ["--trainer.accelerator=cpu", "--trainer.devices=1"], "two": DDP}.items():
        (tmp_path / name).mkdir()
        done = run_cli("fit", *budget, *flags, cwd=tmp_path / name)
        assert done.returncode == 0, done.stderr[-3000:]
        (run,) = (tmp_path / name / "runs" / "mnist").iterdir()
        accuracy[name] = last_metric(run / "metrics.csv", "test/acc")
    # One epoch: 430 steps of 128 in one process, 215 steps of 2 x 128 in two (seen here: 98.4% and 97.8%).
    assert accuracy["one"] > 0.96 and accuracy["two"] > 0.96, accuracy
    assert abs(accuracy["one"] - accuracy["two"]) < 0.02, accuracy


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.gpu
@needs_cuda
def test_fit_test_predict_on_one_gpu(tmp_path):
    gpu = ["--trainer.accelerator=gpu", "--trainer.devices=1", *QUIET]
    fit = run_cli("fit", *gpu, "--trainer.max_epochs=1", "--trainer.limit_train_batches=50", cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr[-3000:]
    (run,) = (tmp_path / "runs" / "mnist").iterdir()
    assert last_metric(run / "metrics.csv", "test/acc") > 0.8
    predict = run_cli("predict", *gpu, "--ckpt_path", "best", cwd=tmp_path)
    assert predict.returncode == 0, predict.stderr[-3000:]
    assert [int(r["id"]) for r in read_csv(run / "predictions.csv")] == list(range(10_000))


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_ddp_on_two_gpus(tmp_path):
    gpus = ["--trainer.accelerator=gpu", "--trainer.devices=2", "--trainer.strategy=ddp", *QUIET]
    fit = run_cli("fit", *gpus, "--trainer.max_epochs=1", "--trainer.limit_train_batches=50", cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr[-3000:]
    (run,) = (tmp_path / "runs" / "mnist").iterdir()
    assert last_metric(run / "metrics.csv", "test/acc") > 0.8
    predict = run_cli("predict", *gpus, "--ckpt_path", "best", cwd=tmp_path)
    assert predict.returncode == 0, predict.stderr[-3000:]
    assert [int(r["id"]) for r in read_csv(run / "predictions.csv")] == list(range(10_000))
