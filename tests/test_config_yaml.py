"""YAML given to the CLI: an alias bomb is refused unexpanded wherever it comes from; honest aliases and
`--config <(...)` work."""

from __future__ import annotations

import os
import resource
import time

import pytest

from conftest import run_main
from mnistctl.yaml_guard import MAX_NODES, YAMLTooLarge, check_yaml_text


def bomb(levels: int = 9) -> str:
    """'Billion laughs': nine levels of nine aliases, 9**9 = 387 million strings once expanded; 600 bytes."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for k in range(1, levels):
        lines.append(f"a{k}: &a{k} [{', '.join([f'*a{k - 1}'] * 9)}]")
    return "\n".join(lines) + f"\ntrainer:\n  callbacks: *a{levels - 1}\n"


def capped_main(*args: str) -> int:
    """`mnistctl ARGS` in this process, with at most 4 GB more address space than it has now: with the bug back,
    the bomb ends in MemoryError (exit 1) instead of taking the shared machine's memory."""
    import mnistctl.cli.mnist_cli  # noqa: F401 - torch and Lightning map ~4 GB on import: before measuring

    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    now = int(status["VmSize"].split()[0]) * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (now + (4 << 30), hard))
    try:
        return run_main(*args)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def pipe_holding(text: str) -> str:
    """/dev/fd/N of a pipe holding `text`, as `--config <(cat file)` passes one."""
    read, write = os.pipe()
    os.write(write, text.encode())
    os.close(write)
    return f"/dev/fd/{read}"


def test_the_size_check_counts_aliases_without_expanding_them():
    start = time.perf_counter()
    with pytest.raises(YAMLTooLarge, match="bomb.yaml expands to more than 100,000 values"):
        check_yaml_text(bomb(), "bomb.yaml")
    assert time.perf_counter() - start < 1.0
    check_yaml_text(bomb(levels=4), "small.yaml")  # 9**4 = 6,561 values: allowed
    with pytest.raises(YAMLTooLarge, match="contains itself"):
        check_yaml_text("a: &a [1, *a]", "loop.yaml")
    assert MAX_NODES == 100_000


@pytest.mark.parametrize("where", ["config file", "config pipe", "value", "environment"])
def test_an_alias_bomb_is_refused_in_one_line_wherever_it_comes_from(tmp_path, where, monkeypatch, capsys):
    # Bug: jsonargparse walked the loaded document, visiting each alias anew, until memory ran out (std::bad_alloc
    # after minutes). `--config` files are checked before jsonargparse reads them; the rest (a pipe, a value on
    # the command line, an environment variable) by the check in front of jsonargparse's own YAML loader.
    (tmp_path / "bomb.yaml").write_text(bomb())  # the test runs in tmp_path
    # The same anchors as one flow sequence: [&a0 [lol, ...], &a1 [*a0, ...], ...]
    value = "[" + ", ".join(line.split(": ", 1)[1] for line in bomb().splitlines()[:9]) + "]"
    if where == "config file":
        rc = capped_main("fit", "--config", "bomb.yaml")
    elif where == "config pipe":
        rc = capped_main("fit", "--config", pipe_holding(bomb()))
    elif where == "value":
        rc = capped_main("fit", "--trainer.callbacks", value)
    else:
        monkeypatch.setenv("MNISTCTL_FIT__TRAINER__CALLBACKS", value)
        rc = capped_main("fit")
    source = "config file bomb.yaml" if where == "config file" else "a YAML value"
    assert (rc, capsys.readouterr().err.splitlines()) == (
        2,
        [
            f"mnistctl: error: {source} expands to more than 100,000 values through its aliases (*name), "
            "a 'billion laughs' pattern; write the values out or use fewer aliases"
        ],
    )
    assert not (tmp_path / "runs").exists()


def test_honest_aliases_and_a_config_from_a_pipe_still_work(capsys):
    # Bug (pipe): mnistctl read a --config pipe to check its syntax, and jsonargparse then found it empty
    # ("Unexpected config"). Aliases that expand to a few values are ordinary YAML and stay allowed.
    config = "trainer:\n  max_epochs: &n 7\n  min_epochs: *n\n"
    assert run_main("fit", "--config", pipe_holding(config), "--print_config") == 0
    printed = capsys.readouterr().out
    assert "  max_epochs: 7\n" in printed and "  min_epochs: 7\n" in printed
