"""`quillmate run` as an editor filter: the selection is never lost, and no notes reach the buffer.

The editor lines are the README's, run in real Vim (`vim -es`) and Emacs (`emacs --batch`).
"""

from __future__ import annotations

import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_cli import quillmate

REPO_ROOT = Path(__file__).resolve().parents[1]
SELECTION = "The lighthouse keeper had not spoken in a year, until\n"


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "QUILLMATE_"))}
    env.update(QUILLMATE_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `quillmate` itself
    return env


def readme_line(editor: str, column: int) -> str:
    """The command from the README's editor table (column 1: rewrite, 2: continue)."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith(f"| {editor} |"))
    cell = re.split(r"(?<!\\)\|", row)[column + 1]
    return re.findall(r"`([^`]*)`", cell)[0]


def test_notes_stay_off_stderr_in_a_pipe_and_warnings_stay(isolated_home: Path) -> None:
    args = ("run", "poem", "--var", "topic=the sea", "--max-tokens", "4", "--seed", "1")
    piped = quillmate(*args, home=isolated_home)  # the default model is the bundled one, with a note
    assert piped.returncode == 0 and piped.stderr == b"", piped.stderr.decode()
    verbose = quillmate(*args, "--verbose", home=isolated_home)
    assert "bundled offline model" in verbose.stderr.decode()

    story = ("The lantern swung in the wind and the sea kept on. " * 300).encode()
    long = ("run", "continue", "--max-tokens", "4", "--model", "bundled")
    warned = quillmate(*long, stdin=story, home=isolated_home)
    assert warned.returncode == 0 and "too long for the model" in warned.stderr.decode()
    quiet = quillmate(*long, "--quiet", stdin=story, home=isolated_home)
    assert quiet.returncode == 0 and quiet.stderr == b"", quiet.stderr.decode()


def test_quiet_silences_notes_in_a_terminal_too(isolated_home: Path) -> None:
    def stderr_with_a_terminal(*extra: str) -> str:
        leader, follower = pty.openpty()
        try:
            out = subprocess.run(
                [sys.executable, "-m", "assistant", "run", "poem", "--var", "topic=x", "--max-tokens", "3", *extra],
                stdin=subprocess.DEVNULL,
                stdout=follower,
                stderr=subprocess.PIPE,
                env=env_for(isolated_home),
                timeout=180,
            )
        finally:
            os.close(follower)
            os.close(leader)
        assert out.returncode == 0, out.stderr.decode()
        return out.stderr.decode()

    assert "bundled offline model" in stderr_with_a_terminal()
    assert stderr_with_a_terminal("--quiet") == ""


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("run", "peom", "--include-input"), 2),
        (("run", "continue", "--var", "colour=blue", "--include-input"), 2),
        (("run", "continue", "--include-input", "--temperature", "lots"), 2),
        (("run", "continue", "--include-input", "--backend", "down"), 1),
    ],
)
def test_every_failure_gives_the_selection_back(isolated_home: Path, args: tuple[str, ...], code: int) -> None:
    (isolated_home / "config").mkdir(exist_ok=True)
    (isolated_home / "config" / "config.toml").write_text(
        '[backends.down]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\ntimeout = 2\n',
        encoding="utf-8",
    )
    out = quillmate(*args, stdin=SELECTION.encode(), home=isolated_home)
    assert out.returncode == code, out.stderr.decode()
    assert out.stdout.decode() == SELECTION
    assert "Traceback" not in out.stderr.decode()


@pytest.mark.parametrize("delay", [0.15, 0.5])
def test_ctrl_c_early_gives_the_selection_back(isolated_home: Path, tmp_path: Path, delay: float) -> None:
    selection = tmp_path / "selection.txt"
    selection.write_text(SELECTION, encoding="utf-8")
    with selection.open("rb") as stdin:
        proc = subprocess.Popen(
            [sys.executable, "-m", "assistant", "run", "continue", "--include-input", "--model", "bundled"],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env_for(isolated_home),
        )
        time.sleep(delay)  # still starting up: before the model has written a word
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert out.decode() == SELECTION
    assert b"Traceback" not in err


@pytest.mark.skipif(shutil.which("vim") is None, reason="vim is not installed")
def test_vim_line_keeps_the_selection_and_adds_no_notes(isolated_home: Path, tmp_path: Path) -> None:
    def filter_in_vim(command: str) -> str:
        draft = tmp_path / "draft.txt"
        draft.write_text(SELECTION, encoding="utf-8")
        # `:'<,'>` needs a visual selection; `:%` filters the same lines in Ex mode.
        ex = "%" + command.removeprefix(":'<,'>")
        out = subprocess.run(
            ["vim", "-es", "-u", "NONE", "-i", "NONE", "-c", ex, "-c", "wq", str(draft)],
            env=env_for(isolated_home),
            capture_output=True,
            timeout=180,
        )
        assert out.returncode in (0, 1), out
        return draft.read_text(encoding="utf-8")

    rewrite = readme_line("Vim", 1)
    assert filter_in_vim(rewrite.replace("run rewrite", "run rewirte")) == SELECTION  # a typo
    assert filter_in_vim(rewrite.replace("--var instruction", "--var instrution")) == SELECTION
    continued = filter_in_vim(readme_line("Vim", 2).replace(" 2>/dev/null", "") + " --max-tokens 8")
    assert continued.startswith(SELECTION.rstrip("\n")) and "quillmate" not in continued  # no notes


@pytest.mark.skipif(shutil.which("emacs") is None, reason="emacs is not installed")
def test_emacs_line_keeps_the_selection_and_adds_no_notes(isolated_home: Path, tmp_path: Path) -> None:
    def filter_in_emacs(command: str) -> str:
        draft = tmp_path / "draft.txt"
        draft.write_text(SELECTION, encoding="utf-8")
        quoted = '"' + command.replace("\\", "\\\\").replace('"', '\\"') + '"'  # an Emacs Lisp string
        lisp = (
            f'(progn (find-file "{draft}") '
            f"(shell-command-on-region (point-min) (point-max) {quoted} nil t) (save-buffer))"
        )
        out = subprocess.run(
            ["emacs", "--batch", "-Q", "--eval", lisp], env=env_for(isolated_home), capture_output=True, timeout=180
        )
        assert out.returncode == 0, out.stderr.decode()
        return draft.read_text(encoding="utf-8")

    line = readme_line("Emacs", 1)
    rewrite = line.removeprefix("C-u M-\\| ").removesuffix(" RET")
    assert filter_in_emacs(rewrite.replace("run rewrite", "run rewirte")) == SELECTION
    assert filter_in_emacs(rewrite.replace("--var instruction", "--var instrution")) == SELECTION
    cont = readme_line("Emacs", 2).removeprefix("C-u M-\\| ").removesuffix(" RET").replace(" 2>/dev/null", "")
    continued = filter_in_emacs(cont + " --max-tokens 8")
    assert continued.startswith(SELECTION.rstrip("\n")) and "quillmate" not in continued


def test_helix_and_kakoune_lines_leave_stderr_empty_on_success(isolated_home: Path) -> None:
    for editor in ("Helix", "Kakoune"):
        line = readme_line(editor, 2).lstrip("\\|").removesuffix("<ret>")
        out = subprocess.run(
            ["sh", "-c", line + " --max-tokens 4"],
            input=SELECTION.encode(),
            capture_output=True,
            env=env_for(isolated_home),
            timeout=180,
        )
        assert out.returncode == 0, out.stderr.decode()
        assert out.stderr == b"" and out.stdout.decode().startswith(SELECTION.rstrip("\n"))
