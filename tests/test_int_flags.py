"""`--trainer.limit_predict_batches 1` is one batch wherever it runs (issue 18: all 10,000 rows on a CUDA machine).

    .venv/bin/python -m pytest tests/test_int_flags.py

`typing` holds Union[int, float] equal to Union[float, int] and caches `Optional[...]` of it: whichever
order was made first comes back. On the CUDA machine a float-first one was in the cache when the CLI
built its parser, and "1" parsed as 1.0, Lightning's "every batch". Making that union first reproduces it
on any machine; mnistctl/cli/int_flags.py puts int first again.
"""

from __future__ import annotations

import typing

import yaml

import mnistctl.cli.mnist_cli  # noqa: F401 (imported first: its imports would push the union below out of the cache)
from conftest import read_csv, run_main


def cache_a_float_first_union() -> object:
    # The same union as the Trainer's Optional[Union[int, float]], in the other order. Returned so that the
    # caller keeps it alive while the CLI builds its parser.
    return typing.Optional[typing.Union[float, int, None]]  # noqa: UP007, UP045 (typing's forms are cached)


def test_an_integer_limit_parses_as_an_int_whatever_typing_cached(capsys):
    cached = cache_a_float_first_union()
    args = ["--trainer.limit_predict_batches", "1", "--trainer.limit_test_batches", "2", "--trainer.overfit_batches"]
    assert run_main("predict", "--ckpt_path", "any.ckpt", *args, "1", "--print_config") == 0
    trainer = yaml.safe_load(capsys.readouterr().out)["trainer"]
    assert cached is not None
    for name, value in (("limit_predict_batches", 1), ("limit_test_batches", 2), ("overfit_batches", 1)):
        assert trainer[name] == value and type(trainer[name]) is int, (name, trainer[name])


def test_a_fraction_stays_a_fraction(capsys):
    cached = cache_a_float_first_union()
    args = ["--ckpt_path", "any.ckpt", "--trainer.limit_predict_batches", "1.0"]
    assert run_main("predict", *args, "--print_config") == 0
    value = yaml.safe_load(capsys.readouterr().out)["trainer"]["limit_predict_batches"]
    assert cached is not None and value == 1.0 and type(value) is float


def test_predict_with_a_limit_of_one_batch_writes_one_batch(tiny_run, tmp_path):
    cached = cache_a_float_first_union()
    out = tmp_path / "one_batch.csv"
    args = ["--ckpt_path", str(tiny_run / "checkpoints" / "last.ckpt"), "--predictions.path", str(out)]
    args += ["--trainer.limit_predict_batches", "1", "--trainer.enable_progress_bar", "false"]
    assert run_main("predict", *args) == 0
    assert cached is not None
    assert len(read_csv(out)) == 256  # data.eval_batch_size, not the 10,000 test images
