"""The garbage collector rests while a command starts and runs while it trains (mnistctl/startup_gc.py)."""

from __future__ import annotations

import json

from conftest import PROBES_ON_PATH, TINY, run_python

# Runs in a fresh interpreter (what a command's start-up imports must not be imported already): counts the
# collections during each main() call and prints them, with the collector's state after each call.
WATCH = """import gc, json, sys
from mnistctl.__main__ import main
runs = []
for argv in json.loads(sys.argv[1]):
    collections = {0: 0, 1: 0, 2: 0}
    def count(phase, info):
        if phase == "start":
            collections[info["generation"]] += 1
    gc.callbacks.append(count)
    try:
        rc = main(argv)
    except SystemExit as exit_:
        rc = exit_.code
    gc.callbacks.remove(count)
    runs.append({"rc": rc, "collections": collections, "enabled": gc.isenabled(),
                 "frozen": gc.get_freeze_count(), "youngest": len(gc.get_objects(0))})
print(json.dumps(runs))
"""


def watch(*commands: list[str], cwd) -> list[dict]:
    out = run_python(WATCH, json.dumps(commands), cwd=cwd, env=PROBES_ON_PATH)
    return json.loads(out.strip().splitlines()[-1])


def test_start_up_collects_nothing_and_leaves_the_collector_as_it_was(tmp_path):
    """Importing torch and Lightning and parsing ran six full collections (0.5 s of 2.9 s); after the command,
    also one refused as bad input, the collector must be on, nothing frozen, and the youngest generation small
    (left holding start-up's 400,000 objects, the next collection would walk them all)."""
    print_config, refused = watch(["fit", "--print_config"], ["fit", "--trainer.max_epochs", "many"], cwd=tmp_path)
    assert print_config["rc"] == 0 and refused["rc"] != 0
    for run in (print_config, refused):
        assert run["collections"][str(1)] == run["collections"][str(2)] == 0, run
        assert run["collections"][str(0)] <= 2, run
        assert run["enabled"] and run["frozen"] == 0 and run["youngest"] < 5000, run


def test_training_runs_with_the_collector_on_and_start_up_frozen(tmp_path):
    """Paused for good, a fit would keep every reference cycle training makes; never frozen, each full
    collection in training (one at every epoch's end, 0.15 s) walks start-up's objects again."""
    (fit,) = watch(
        ["fit", *TINY, "--test_after_fit", "false", "--trainer.callbacks+=probes.GCState"],
        cwd=tmp_path,
    )
    assert fit["rc"] == 0, fit
    at_train_start = json.loads((tmp_path / "gc_state.json").read_text())
    assert at_train_start["enabled"] is True and at_train_start["frozen"] > 100_000, at_train_start
    assert fit["enabled"] and fit["frozen"] == 0, fit


def test_what_the_caller_froze_stays_frozen(tmp_path):
    """The sweep's warm server freezes its objects before forking each job, so that they stay shared with the
    job; the job's command must not unfreeze them (the collector would then write to every shared page)."""
    code = """import gc
from mnistctl.__main__ import main
gc.freeze()
frozen = gc.get_freeze_count()
try:
    main(["fit", "--print_config"])
except SystemExit:
    pass
print(frozen > 0 and gc.get_freeze_count() >= frozen, gc.isenabled())
"""
    assert run_python(code, cwd=tmp_path).strip().splitlines()[-1] == "True True"
