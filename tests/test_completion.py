"""Shell completion (issue 19, item 10), as a user gets it: `eval "$(alm-bench --show-completion bash)"` in a
real interactive bash (and zsh) on a pseudo-terminal, then TAB. Each check types a line, presses TAB, then
Ctrl-A and `echo` and Enter, so the shell prints the completed line."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alm_bench.completion import respond

EXE = Path(sys.executable).with_name("alm-bench")
BASH_BREAKS = "\"'><=;|&(:"


def ask(line: str, breaks: str = BASH_BREAKS) -> list[str]:
    """What the completion answers for `line` (mode first), as the shell function receives it."""
    return respond({"COMP_LINE": line, "COMP_BREAKS": breaks}).splitlines()


def test_answers_are_relative_to_the_word_the_shell_completes():
    assert ask("alm-bench train problem=h") == ["plain", "hs"]          # bash completes after the '='
    assert ask("alm-bench train contr") == ["nospace", "controller="]
    assert ask("alm-bench train problem=")[0] == "plain"
    assert {"hs", "quadratic", "maxcut", "synthetic"} <= set(ask("alm-bench train problem=")[1:])
    assert ask("alm-bench train controller=bala,mi") == ["plain", "bala,mixing"]
    assert ask("alm-bench train problem=hs problem.na") == ["nospace", "problem.name="]
    assert "controller.rho_scale=" in ask("alm-bench solve maxcut G1.mat controller.rho_s")  # solve's BALA
    assert ask("alm-bench solve maxcut ")[0] == "files" and ask("alm-bench report ")[0] == "files"
    assert ask("alm-bench tr") == ["plain", "train"]


class Terminal:
    """An interactive shell on a pseudo-terminal."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become the shell
            os.execvpe(argv[0], argv, env)
        self.buffer = ""

    def read_until(self, pattern: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.buffer):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r} within {timeout} s; the terminal shows:\n{self.buffer[-2000:]}")
            if select.select([self.fd], [], [], min(left, 0.2))[0]:
                try:
                    self.buffer += os.read(self.fd, 65536).decode(errors="replace")
                except OSError:
                    break
        match = re.search(pattern, self.buffer)
        seen, self.buffer = self.buffer[: match.end()], self.buffer[match.end():]
        return seen

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def completed(self, typed: str, keys: str = "\t") -> str:
        """The line after typing `typed` and `keys`, as the shell then echoes it."""
        self.send(typed + keys)
        time.sleep(1.5)  # the completion function runs alm-bench; let it answer and redraw
        self.send("\x01echo '[[' \r")  # Ctrl-A: to the line's start; the words after echo are printed
        return self.read_until(r"\[\[ (.*?)\r?\n")[:-1].rsplit("[[ ", 1)[1].rstrip("\r")

    def close(self) -> None:
        """Exit the shell, or kill it if it does not go within 5 s (a failed check may leave it mid-line)."""
        self.send("\x03exit\r")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and os.waitpid(self.pid, os.WNOHANG) == (0, 0):
            time.sleep(0.1)
        else:
            if time.monotonic() >= deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
        os.close(self.fd)


def shell_env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": f"{EXE.parent}{os.pathsep}/usr/bin:/bin", "HOME": str(tmp_path), "TERM": "dumb",
            "PS1": "READY> ", "PROMPT": "READY> ", "LANG": "C.UTF-8", "ALM_BENCH_OUTPUTS": str(tmp_path / "out")}


def check_shell(term: Terminal) -> None:
    # END, typed after TAB, shows whether the completion left a space
    assert term.completed("alm-bench train problem=h", "\tEND") == "alm-bench train problem=hs END"
    assert term.completed("alm-bench train contr", "\tEND") == "alm-bench train controller=END"  # no space
    term.send("alm-bench train problem=\t\t")  # a second TAB lists the candidates (bash; zsh at once)
    every = "".join(f"(?=.*\\b{option}\\b)" for option in ("cifar10", "cifar100", "custom", "hs", "lp", "maxcut",
                                                       "quadratic", "sdp", "synthetic"))
    term.read_until(f"(?s)^{every}")
    term.send("\x03")  # Ctrl-C: drop the line
    term.read_until("READY> ")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash on this machine")
def test_bash_completes_groups_and_options_in_a_terminal(tmp_path):
    if not EXE.exists():
        pytest.skip("alm-bench console script not installed next to this python")
    term = Terminal(["bash", "--norc", "--noprofile", "-i"], shell_env(tmp_path))
    try:
        term.read_until("READY> ")
        term.send('eval "$(alm-bench --show-completion bash)"\r')
        term.read_until("READY> ")
        check_shell(term)
    finally:
        term.close()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("zsh") is None, reason="no zsh on this machine (apt-get install zsh)")
def test_zsh_completes_groups_and_options_in_a_terminal(tmp_path):
    if not EXE.exists():
        pytest.skip("alm-bench console script not installed next to this python")
    term = Terminal(["zsh", "-f", "-i"], shell_env(tmp_path))
    try:
        term.send("PS1='READY> '; bindkey -e\r")
        term.read_until("READY> ")
        term.send('eval "$(alm-bench --show-completion zsh)"\r')
        term.read_until("READY> ")
        check_shell(term)
    finally:
        term.close()


@pytest.mark.slow
def test_show_completion_names_the_shells_it_supports():
    out = subprocess.run([str(EXE), "--show-completion", "fish"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr == "alm-bench: error: --show-completion fish: completion is available for bash and zsh\n"


def test_install_adds_the_eval_line_once(tmp_path, monkeypatch):
    from alm_bench.completion import install

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".zshrc").write_text("export EDITOR=vi")
    assert install("zsh").startswith("zsh completion added to")
    assert install("zsh").startswith("zsh completion already set up")
    assert (tmp_path / ".zshrc").read_text() == 'export EDITOR=vi\neval "$(alm-bench --show-completion zsh)"\n'
