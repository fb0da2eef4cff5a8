"""End to end with a real model: the bundled one when it is there, else a tiny random GPT-2.

Also a smoke test of the real ``quillmate write FILE`` in tmux: type, continue, accept, save, quit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.gpt2 import BUNDLED_MODEL_DIR
from tests.tui.conftest import until

pytestmark = pytest.mark.slow

OPENING = "It was late when the lantern spoke."


def _bundled_ready() -> bool:
    return (BUNDLED_MODEL_DIR / "config.json").is_file() and (BUNDLED_MODEL_DIR / "model.safetensors").is_file()


@pytest.fixture(scope="module")
def model_name(request: pytest.FixtureRequest) -> str:
    """``bundled`` when the bundled model is there, else the folder of a tiny random GPT-2."""
    if _bundled_ready():
        return "bundled"
    return str(request.getfixturevalue("tiny_model_dir"))


async def test_continue_and_accept_with_a_real_model(store, model_name: str) -> None:
    from assistant.config import load_config
    from assistant.core import Assistant
    from backends.gpt2 import GPT2Backend
    from tui.app import make_app

    backend = GPT2Backend("local", model=model_name, device="cpu")
    session = store.create(text=OPENING)
    session.update_settings(params={"max_new_tokens": 12, "seed": 7, "temperature": 0.8})
    app = make_app(session=session, store=store, assistant=Assistant(backend, config=load_config()))
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press(*" Then")  # usable while the model loads
            await until(pilot, lambda: app.backend_ready, timeout=120, what="the model to load")
            for seed in (7, 8, 9):  # a small model now and then has nothing to add: ask again
                app.session.update_settings(params={"max_new_tokens": 12, "seed": seed, "temperature": 0.8})
                await pilot.press("f5")
                await until(pilot, lambda: all(w.is_finished for w in app.workers), timeout=120, what="a continuation")
                if app.editor.ghost is not None and app.editor.ghost.text:
                    break
            ghost = app.editor.ghost
            assert ghost is not None and ghost.text
            assert app.session.document.text == OPENING + " Then"
            status = app.status.plain
            assert "tok/s" in status or "ctx" in status
            await pilot.press("tab")
            doc = app.session.document
            assert doc.text.startswith(OPENING + " Then") and len(doc.text) > len(OPENING) + 5
            assert doc.spans()[-1].author == "model"
            assert app.session.events[-1].status == "accepted"
    finally:
        app.finish()
        await backend.aclose()


# ------------------------------------------------------------------------------ tmux smoke test


class Tmux:
    """A private tmux server running one command in a window of a fixed size."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=check, timeout=30
        )

    def screen(self) -> str:
        result = self.run("capture-pane", "-p", "-t", "app", check=False)
        return result.stdout

    def alive(self) -> bool:
        return self.run("has-session", "-t", "app", check=False).returncode == 0

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.run("send-keys", "-t", "app", *(("-l",) if literal else ()), *keys)

    def wait_for_gone(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text in self.screen() and time.monotonic() < deadline:
            time.sleep(0.2)

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if _flat(text) in _flat(screen):  # the editor soft-wraps long lines, anywhere a space falls
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} did not appear on screen within {timeout:.0f} s; the screen:\n{screen}")


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux) so the terminal smoke test cannot run")
    server = Tmux(f"quillmate-test-{uuid.uuid4().hex[:8]}")
    yield server
    server.run("kill-server", check=False)


def _write_command() -> list[str]:
    quillmate = Path(sys.executable).with_name("quillmate")
    probe = (
        subprocess.run([str(quillmate), "write", "--help"], capture_output=True, text=True, timeout=60)
        if quillmate.exists()
        else None
    )
    if probe is not None and probe.returncode == 0:
        return [str(quillmate), "write"]
    return [sys.executable, "-m", "tui"]  # the same command, before the entry point is installed


def test_quillmate_write_in_a_real_terminal(tmux: Tmux, tmp_path: Path, model_name: str) -> None:
    story = tmp_path / "story.md"
    home = tmp_path / "home"
    env = {
        "QUILLMATE_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TERM": "xterm-256color",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    command = [*_write_command(), str(story), "--model", model_name]
    exports = " ".join(f"{k}={subprocess.list2cmdline([v])}" for k, v in env.items())
    shell = f"cd {subprocess.list2cmdline([str(tmp_path)])} && env {exports} {subprocess.list2cmdline(command)}"
    tmux.run("new-session", "-d", "-s", "app", "-x", "100", "-y", "30", shell)
    tmux.wait_for("ready", timeout=180)  # the model loaded in the background
    tmux.keys(OPENING, literal=True)
    tmux.wait_for("lantern spoke.", timeout=20)
    for _attempt in range(3):  # a small model sometimes has nothing to add: ask again
        tmux.keys("F5")
        with contextlib.suppress(AssertionError):
            tmux.wait_for("writing", timeout=10)
        tmux.wait_for_gone("writing", timeout=180)
        tmux.wait_for("ctx ", timeout=60)  # the continuation finished (context use shown)
        time.sleep(0.3)
        if "nothing to add" not in tmux.screen():
            break
        tmux.wait_for_gone("nothing to add", timeout=15)
    tmux.keys("Tab")
    time.sleep(0.5)
    tmux.keys("C-s")
    tmux.wait_for("Saved story.md", timeout=30)
    saved = story.read_text(encoding="utf-8")
    assert saved.startswith(OPENING) and len(saved) > len(OPENING)
    tmux.keys(" The end.", literal=True)
    tmux.wait_for("The end.", timeout=20)
    tmux.keys("C-q")
    deadline = time.monotonic() + 60
    while tmux.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not tmux.alive(), "quillmate did not quit on Ctrl+Q"
    final = story.read_text(encoding="utf-8")
    assert final == saved + " The end."  # quitting brought the file up to date, without asking
    assert os.stat(story).st_size == len(final.encode("utf-8"))
