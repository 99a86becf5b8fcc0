"""Shell completion: ``train`` / ``infer --print-completion bash|zsh`` through the real scripts,
and the bash script completing options and hparams files in a real bash."""

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import run_cli


@pytest.mark.parametrize("script", ["train", "infer"])
def test_completion_scripts_are_generated(script: str) -> None:
    bash = run_cli(script, "--print-completion", "bash")
    assert bash.returncode == 0, bash.stderr
    assert f"complete -o bashdefault -F _shtab_{script} {script}" in bash.stdout
    assert "--print-hparams" in bash.stdout and "--set" in bash.stdout
    zsh = run_cli(script, "--print-completion", "zsh")
    assert zsh.returncode == 0 and zsh.stdout.startswith(f"#compdef {script}")
    assert "--offline" in zsh.stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completes_options_and_files(tmp_path: Path) -> None:
    script = tmp_path / "train.bash"
    script.write_text(run_cli("train", "--print-completion", "bash").stdout)
    (tmp_path / "hparams_wide.py").write_text("hparams = {}\n")
    complete = ("source {script}; COMP_WORDS=(train {words}); COMP_CWORD={index}; _shtab_train; "
                "echo \"${{COMPREPLY[@]}}\"")

    def completions(*words: str) -> list[str]:
        command = complete.format(script=script, words=" ".join(words), index=len(words))
        return subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=tmp_path,
                              check=True).stdout.split()

    assert completions("--dev") == ["--dev-run", "--devices"]
    assert completions("hparams_w") == ["hparams_wide.py"]
    assert completions("hparams_wide.py", "--print-completion", "''") == ["bash", "zsh"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completes_runs_subcommands_and_their_options(tmp_path: Path) -> None:
    script = tmp_path / "runs.bash"
    generated = run_cli("runs", "--print-completion", "bash")
    assert generated.returncode == 0, generated.stderr
    script.write_text(generated.stdout)
    zsh = run_cli("runs", "--print-completion", "zsh")
    assert zsh.returncode == 0 and zsh.stdout.startswith("#compdef runs") and "--dry-run" in zsh.stdout
    complete = ("source {script}; COMP_WORDS=(runs {words}); COMP_CWORD={index}; _shtab_runs; "
                "echo \"${{COMPREPLY[@]}}\"")

    def completions(*words: str) -> list[str]:
        command = complete.format(script=script, words=" ".join(words), index=len(words))
        return subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=tmp_path,
                              check=True).stdout.split()

    assert completions("''") == ["show", "compare", "diff", "plot", "report", "sync", "du", "rm", "prune"]
    assert completions("pr") == ["prune"] and completions("--root", "x", "d") == ["diff", "du"]
    assert completions("prune", "--") == ["--help", "--root", "--status", "--keep", "--dry-run", "--yes"]
    assert completions("prune", "--keep", "''") == ["best", "last"]
    assert completions("rm", "offline-1", "--") == ["--help", "--root", "--yes"]
    assert completions("plot", "a", "--m") == ["--metric"]
    assert completions("--st") == ["--status"]  # the listing's own options
