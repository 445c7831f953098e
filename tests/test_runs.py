"""`mnistctl runs`, `runs show`, `runs diff` over real tiny fits, and over 300 synthetic run folders for speed.

    .venv/bin/python -m pytest tests/test_runs.py      # about half a minute: three tiny fits, one test

The sweep side (a real tiny sweep's jobs in the table) is in test_runs_sweep.py (slow tier).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import last_metric, read_csv, run_main
from mnistctl.cli.checkpoints import resolve_ckpt_path
from mnistctl.errors import UsageError
from mnistctl.layout import run_dir_of


def runs_json(capsys, *args: str) -> list[dict] | dict:
    assert run_main("runs", *args, "--json") == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def one_error_line(capsys, code: int, *args: str) -> str:
    assert run_main(*args) == code
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mnistctl: error: "), captured.err
    return lines[0]


@pytest.fixture
def fits(adam_and_sgd) -> Path:
    """runs/mnist/version_0 (Adam, lr 0.003, and a `test` of it), version_1 (SGD, lr 0.05, 2 epochs, no test)."""
    return adam_and_sgd


def test_table_lists_fits_and_evaluations_with_the_config_that_differs(fits, capsys):
    root = fits / "runs"
    rows = runs_json(capsys, "--runs_dir", str(root))
    assert [r["run"] for r in rows] == ["mnist/version_0", "mnist/version_1", "mnist/version_0/test"]  # oldest first
    assert [r["subcommand"] for r in rows] == ["fit", "fit", "test"]
    assert all(r["status"] == "completed" for r in rows)
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == 3 and all(len(i) == 7 and int(i, 16) >= 0 for i in ids)
    adam, sgd, test = rows
    for row, run in ((adam, "version_0"), (sgd, "version_1")):
        csv = root / "mnist" / run / "metrics.csv"  # what the loggers wrote: an independent source
        assert row["val_acc"] == pytest.approx(max(float(r["val/acc"]) for r in read_csv(csv) if r["val/acc"]))
    assert adam["test_acc"] == pytest.approx(last_metric(root / "mnist/version_0/metrics.csv", "test/acc"))
    assert sgd["test_acc"] is None  # --test_after_fit false
    assert (adam["epochs"], sgd["epochs"], test["epochs"]) == (1, 2, None)
    assert test["test_acc"] == pytest.approx(last_metric(root / "mnist/version_0/test/metrics.csv", "test/acc"))
    # Only what differs between the fits; keys only SGD has (momentum) are shown by `optimizer` already,
    # and the folders each run writes to (logger version, save_dir) differ by design.
    assert (adam["config"], sgd["config"]) == (
        {"trainer.max_epochs": 1, "test_after_fit": True, "optimizer": "Adam", "optimizer.lr": 0.003},
        {"trainer.max_epochs": 2, "test_after_fit": False, "optimizer": "SGD", "optimizer.lr": 0.05},
    )
    assert run_main("runs", "--runs_dir", str(root)) == 0
    table = capsys.readouterr().out
    assert table.startswith("3 of 3 runs under ")
    header, *lines = table.splitlines()[1:]
    assert header.split() == [*"id run status started took command epochs val/acc test/acc".split(), *adam["config"]]
    cells = re.split(r"\s{2,}", next(line for line in lines if line.startswith(sgd["id"])).strip())
    assert cells == [
        sgd["id"],
        "mnist/version_1",
        "completed",
        sgd["started"],
        cells[4],
        "fit",
        "2",
        f"{sgd['val_acc']:.4f}",
        "-",
        "2",
        "False",
        "SGD",
        "0.05",
    ]


def test_sort_and_filters(fits, capsys):
    root = str(fits / "runs")
    by_test_acc = runs_json(capsys, "--runs_dir", root, "--sort", "test_acc")
    accuracies = [r["test_acc"] for r in by_test_acc]
    assert accuracies[:2] == sorted(accuracies[:2], reverse=True) and accuracies[2] is None  # best first, none last
    by_lr = runs_json(capsys, "--runs_dir", root, "--sort", "optimizer.lr", "--reverse")
    assert [r["run"] for r in by_lr][0] == "mnist/version_1"
    assert runs_json(capsys, "--runs_dir", root, "--status", "failed") == []
    assert len(runs_json(capsys, "--runs_dir", root, "--name", "mni*")) == 3
    assert runs_json(capsys, "--runs_dir", root, "--sweep", "*") == []
    assert "--sort" in one_error_line(capsys, 2, "runs", "--runs_dir", root, "--sort", "nope")
    assert "--status bad" in one_error_line(capsys, 2, "runs", "--runs_dir", root, "--status", "bad")


def test_show_last_and_best_are_the_runs_ckpt_path_takes(fits, capsys):
    root = fits / "runs"
    for which in ("last", "best"):
        ckpt = resolve_ckpt_path(which, root)
        shown = runs_json(capsys, "show", which, "--runs_dir", str(root))
        assert Path(shown["path"]) == run_dir_of(ckpt)
    assert run_main("runs", "show", "best", "--runs_dir", str(root)) == 0
    text = capsys.readouterr().out
    assert "mnist/version_1" in text and "status     completed: fit" in text
    assert "best ckpt  checkpoints/epoch01-" in text  # 2 epochs: the best checkpoint is named for its epoch
    record = json.loads((root / "mnist/version_1/run.json").read_text())
    assert all(f"\n             {name}" in text for name in record["outputs"])


def fake_fit(folder: Path, age_s: float, last: str) -> None:
    """A fit's run folder: run.json naming checkpoints/epoch01.ckpt as best, that checkpoint, and a last.ckpt
    that is `good` (ModelCheckpoint's state in it names the best), `truncated` or `none`; its checkpoints
    `age_s` seconds old (fit_runs orders runs by their newest checkpoint)."""
    import torch

    best = folder / "checkpoints" / "epoch01.ckpt"
    best.parent.mkdir(parents=True)
    torch.save({"state_dict": {}}, best)
    if last == "good":
        state = {"ModelCheckpoint{'monitor': 'val/acc'}": {"best_model_path": str(best)}}
        torch.save({"state_dict": {}, "callbacks": state}, best.with_name("last.ckpt"))
    elif last == "truncated":
        best.with_name("last.ckpt").write_bytes(best.read_bytes()[:100])
    checkpoints = {"best": "checkpoints/epoch01.ckpt", "last": None if last == "none" else "checkpoints/last.ckpt"}
    (folder / "run.json").write_text(
        json.dumps({"status": "completed", "subcommand": "fit", "checkpoints": checkpoints})
    )
    for path in best.parent.iterdir():
        os.utime(path, (time.time() - age_s, time.time() - age_s))


@pytest.mark.parametrize("newest_last", ["none", "truncated"])
def test_show_last_and_best_name_the_run_whose_checkpoint_ckpt_path_loads(capsys, newest_last):
    # The bug: `runs show best|last` took run.json's checkpoints.best and any last.ckpt file, while
    # `--ckpt_path best|last` reads best from a loadable last.ckpt: a newest run fitted with save_last false,
    # or whose last.ckpt is cut short, made `runs show best` name it while `mnistctl test --ckpt_path best`
    # tested an older run's checkpoint.
    fake_fit(Path("runs/mnist/version_0"), 600, "good")
    fake_fit(Path("runs/mnist/version_1"), 0, newest_last)
    for which in ("last", "best"):
        try:
            expected = run_dir_of(resolve_ckpt_path(which, "runs"))
        except UsageError as err:  # the newest run has no loadable one, and --ckpt_path refuses: so does show
            assert str(err) in one_error_line(capsys, 2, "runs", "show", which)
        else:
            assert Path(runs_json(capsys, "show", which)["path"]) == expected == Path("runs/mnist/version_0").resolve()


@pytest.mark.slow  # it re-runs a fit: 5.6 s of the fast tier's 5 minutes
def test_show_gives_a_command_that_reproduces_the_run(fits, capsys, tmp_path):
    root = fits / "runs"
    original = runs_json(capsys, "show", str(root / "mnist/version_0"), "--runs_dir", str(root))
    command = original["reproduce"]
    assert command == f"mnistctl fit --config {root / 'mnist/version_0/config.yaml'}"
    done = subprocess.run(
        [sys.executable, "-m", "mnistctl", *shlex.split(command)[1:]], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    again = json.loads((root / "mnist/version_2/run.json").read_text())  # the config keeps the runs folder
    try:
        assert again["history"] == original["record"]["history"]  # the same epochs, the same numbers
        assert again["metrics"]["test/acc"] == original["record"]["metrics"]["test/acc"]
    finally:
        import shutil

        shutil.rmtree(root / "mnist/version_2")  # the module's other tests expect three runs


def test_diff_names_config_keys_and_metrics(fits, capsys, monkeypatch):
    root = str(fits / "runs")
    a, b = (r["id"] for r in runs_json(capsys, "--runs_dir", root)[:2])
    diff = runs_json(capsys, "diff", a, b[:5], "--runs_dir", root)  # a unique prefix is enough
    assert diff["config"]["optimizer"] == ["Adam", "SGD"]
    assert diff["config"]["optimizer.lr"] == [0.003, 0.05]
    assert diff["config"]["optimizer.momentum"] == [None, 0.0]  # SGD's own argument, missing in Adam
    assert diff["config"]["trainer.max_epochs"] == [1, 2]
    assert not any(key.endswith(("save_dir", ".version")) for key in diff["config"])
    assert diff["metrics"]["epochs"] == [1, 2]
    assert diff["metrics"]["test/acc"] == [diff["a"]["test_acc"], None] and 0 < diff["a"]["test_acc"] <= 1
    assert "model.dropout_ratio" not in diff["config"] and "data.batch_size" not in diff["config"]
    monkeypatch.chdir(fits)  # runs/ relative: the id's folder is spelt differently from the one given
    line = one_error_line(capsys, 2, "runs", "diff", a, str(fits / "runs/mnist/version_0"))
    assert "are the same run" in line  # an id and the folder of the same run


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["show", "ffff0000"], "no run with id ffff0000"),
        (["show", "nothing-here"], "no run folder or id 'nothing-here'"),
        (["show", "abc"], "id abc is too short"),
        (["show", "last", "best"], "runs show takes one run, got 2"),
        (["diff", "last"], "runs diff takes two runs, got 1"),
        (["diff", "last", "best"], "are the same run"),  # the newest run holds both checkpoints
        (["show", "runs/mnist"], "is not a run folder"),
        (["bogus"], "unrecognized arguments: bogus"),
    ],
)
def test_bad_run_arguments_are_one_line_errors(fits, capsys, monkeypatch, args, fragment):
    monkeypatch.chdir(fits)
    assert fragment in one_error_line(capsys, 2, "runs", *args)


def test_sort_by_a_config_key_orders_ints_and_floats_as_numbers(capsys, tmp_path):
    for n, lr in enumerate(("2.5", "1", "3")):  # YAML reads 1 and 3 as ints, 2.5 as a float
        folder = tmp_path / "runs" / "mnist" / f"version_{n}"
        folder.mkdir(parents=True)
        (folder / "run.json").write_text('{"status": "completed", "subcommand": "fit"}')
        (folder / "config.yaml").write_text(f"optimizer:\n  class_path: torch.optim.SGD\n  init_args:\n    lr: {lr}\n")
    rows = runs_json(capsys, "--sort", "optimizer.lr")
    assert [r["config"]["optimizer.lr"] for r in rows] == [1, 2.5, 3]


def runs_sharing_a_prefix(root: Path, length: int, *others: str) -> tuple[str, str, str]:
    """Make two run folders whose ids share their first `length` characters (found the way ids are made),
    plus `others`; return the two run names and the prefix."""
    seen: dict[str, str] = {}
    for n in range(1_000_000):
        name = f"r{n}"
        prefix = hashlib.sha1(f"runs:{name}/version_0".encode()).hexdigest()[:length]
        if prefix in seen:
            break
        seen[prefix] = name
    for run in (seen[prefix], name, *others):
        (root / run / "version_0").mkdir(parents=True)
        (root / run / "version_0" / "run.json").write_text('{"status": "completed"}')
    return seen[prefix], name, prefix


def test_ambiguous_id_is_a_one_line_error(capsys, tmp_path):
    _, _, prefix = runs_sharing_a_prefix(tmp_path / "runs", 4)
    line = one_error_line(capsys, 2, "runs", "show", prefix)
    assert f"id {prefix} is ambiguous: 2 runs" in line and "give more characters" in line
    assert len({r["id"] for r in runs_json(capsys)}) == 2


def test_ids_that_share_seven_characters_are_shown_longer(capsys, tmp_path):
    first, second, prefix = runs_sharing_a_prefix(tmp_path / "runs", 7, "other")
    ids = {r["run"]: r["id"] for r in runs_json(capsys)}
    assert ids[f"{first}/version_0"] != ids[f"{second}/version_0"]
    assert len(ids[f"{second}/version_0"]) > 7 and ids[f"{second}/version_0"].startswith(prefix)
    assert len(ids["other/version_0"]) == 7


def test_foreign_folders_and_unreadable_records(capsys, tmp_path):
    (tmp_path / "runs" / "photos" / "version_1").mkdir(parents=True)
    (tmp_path / "runs" / "photos" / "version_1" / "cat.jpg").write_bytes(b"\xff\xd8")
    (tmp_path / "runs" / "notes.txt").write_text("not a run")
    (tmp_path / "sweeps" / "old").mkdir(parents=True)
    line = one_error_line(capsys, 2, "runs")
    assert "no runs under runs or sweeps" in line and "--runs_dir" in line
    broken = tmp_path / "runs" / "mnist" / "version_0"
    broken.mkdir(parents=True)
    (broken / "run.json").write_text('{"status": "runn')  # a record cut short
    (row,) = runs_json(capsys)
    assert (row["status"], row["run"], row["val_acc"]) == ("unreadable", "mnist/version_0", None)
    assert run_main("runs", "show", row["id"]) == 0
    assert "is not complete JSON" in capsys.readouterr().out


# -- speed: a few hundred runs, no torch ------------------------------------------------------------


def make_runs(template: Path, root: Path, count: int) -> None:
    """count run folders with tiny_run's run.json and config.yaml, each with its own lr and metrics."""
    record = json.loads((template / "run.json").read_text())
    config = (template / "config.yaml").read_text()
    assert "    lr: 0.003\n" in config
    for n in range(count):
        folder = root / "mnist" / f"version_{n}"
        folder.mkdir(parents=True)
        record["started"] = f"2026-01-01T{n // 60:02d}:{n % 60:02d}:00+00:00"
        record["history"] = [{"epoch": 0, "val/acc": n / 1000}]
        (folder / "run.json").write_text(json.dumps(record))
        (folder / "config.yaml").write_text(config.replace("    lr: 0.003\n", f"    lr: {0.001 * (1 + n % 7)}\n"))


def test_three_hundred_runs_listed_fast_without_torch(tiny_run, tmp_path):
    make_runs(tiny_run, tmp_path / "runs", 300)
    command = [sys.executable, "-X", "importtime", "-m", "mnistctl", "runs", "--sort", "val_acc"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "mnistctl.tools.runs_index" in imported  # the importtime output is real
    heavy = sorted(m for m in imported if m.split(".")[0] in ("torch", "pytorch_lightning", "lightning", "torchvision"))
    assert heavy == []
    test_acc = f"{json.loads((tiny_run / 'run.json').read_text())['metrics']['test/acc']:.4f}"
    title, header, *rows = done.stdout.splitlines()
    assert title == "300 of 300 runs under runs" and header.split()[-1] == "optimizer.lr"  # the one key that differs
    assert (
        len(rows) == 300
        and rows[0].split()[1] == "mnist/version_299"
        and rows[0].split()[-3:-1] == ["0.2990", test_acc]
    )
    # CPU time of the whole command, interpreter start included (wall time depends on what else the shared
    # machine runs); the best of two.
    timings = []
    for _ in range(2):
        before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        assert subprocess.run(command[:1] + command[3:], capture_output=True, cwd=tmp_path).returncode == 0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        timings.append((round(cpu, 3), round(time.perf_counter() - started, 3)))
    assert min(cpu for cpu, _ in timings) < 0.6, f"mnistctl runs over 300 runs took (cpu s, wall s) {timings}"
