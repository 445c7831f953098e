"""`mnistctl completion`: the bash script really completes subcommands, flags and values in bash."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess

import pytest

from conftest import run_main

BASH = shutil.which("bash")


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert run_main("completion", "bash") == 0
    path = tmp_path_factory.mktemp("completion") / "mnistctl.bash"
    path.write_text(out.getvalue())
    return str(path)


def complete(script: str, *words: str, cwd=None) -> list[str]:
    """What bash offers for TAB after `words` (the last one is the word being completed)."""
    program = f"""
source {script}
COMP_WORDS=({" ".join(f"'{w}'" for w in words)})
COMP_CWORD={len(words) - 1}
COMP_LINE="${{COMP_WORDS[*]}}"; COMP_POINT=${{#COMP_LINE}}
_shtab_mnistctl
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    done = subprocess.run([BASH, "-c", program], capture_output=True, text=True, cwd=cwd, timeout=60)
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line]


pytestmark = pytest.mark.skipif(BASH is None, reason="bash is not installed")


def test_script_registers_the_completion_function(bash_script):
    done = subprocess.run([BASH, "-c", f"source {bash_script}; complete -p mnistctl"], capture_output=True, text=True)
    assert done.stdout.strip() == "complete -o bashdefault -F _shtab_mnistctl mnistctl"


def test_completes_every_subcommand(bash_script):
    expected = ["fit", "validate", "test", "predict", "sweep", "runs", "export", "configs", "completion"]
    assert complete(bash_script, "mnistctl", "") == expected
    assert complete(bash_script, "mnistctl", "ex") == ["export"]


def test_completes_lightning_flags(bash_script):
    assert complete(bash_script, "mnistctl", "fit", "--trainer.max_ep") == ["--trainer.max_epochs"]
    assert complete(bash_script, "mnistctl", "fit", "--trainer.max_epochs", "3", "--data.batch") == [
        "--data.batch_size"
    ]
    assert "--ckpt_path" in complete(bash_script, "mnistctl", "test", "--ck")
    assert complete(bash_script, "mnistctl", "fit", "--test_after_fit", "") == ["true", "false"]


def test_completes_flags_and_values_of_the_other_subcommands(bash_script):
    assert complete(bash_script, "mnistctl", "sweep", "--dr") == ["--dry-run"]
    assert complete(bash_script, "mnistctl", "export", "--format", "") == ["torchscript", "onnx", "pt2"]
    assert complete(bash_script, "mnistctl", "configs", "--co") == ["--copy"]
    assert complete(bash_script, "mnistctl", "completion", "") == ["bash", "zsh", "tcsh"]
    assert complete(bash_script, "mnistctl", "runs", "") == ["show", "diff"]
    assert complete(bash_script, "mnistctl", "runs", "--so") == ["--sort"]
    assert complete(bash_script, "mnistctl", "runs", "diff", "--sw") == ["--sweeps_dir"]


def test_completes_file_names_after_config(bash_script, tmp_path):
    (tmp_path / "mine.yaml").write_text("trainer: {}\n")
    assert complete(bash_script, "mnistctl", "fit", "--config", "mi", cwd=tmp_path) == ["mine.yaml"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (apt-get install zsh)")
def test_zsh_script_parses_and_lists_subcommands(tmp_path, capsys):
    assert run_main("completion", "zsh") == 0
    script = capsys.readouterr().out
    assert script.startswith("#compdef mnistctl")
    assert "fit:'train the CNN, then test its best checkpoint'" in script and "--trainer.max_epochs" in script
    (tmp_path / "_mnistctl").write_text(script)
    done = subprocess.run(["zsh", "-n", str(tmp_path / "_mnistctl")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_unknown_shell_is_one_line_error(capsys):
    assert run_main("completion", "fish") == 2
    err = capsys.readouterr().err
    assert err.startswith("mnistctl: error: completion: argument shell: invalid choice: 'fish'")
    assert len(err.strip().splitlines()) == 1
