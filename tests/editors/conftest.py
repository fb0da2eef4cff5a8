"""Shared pieces for the editor-plugin tests: each drives a real editor, headless,
against the real `quillmate lsp` with the bundled model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
EDITORS_DIR = REPO_ROOT / "editors"
HERE = Path(__file__).resolve().parent

OPENING = (
    "# The lighthouse\n"
    "\n"
    "The keeper climbed the stairs every night to light the lamp.\n"
    "Once upon a time, the sea was calm and the old keeper"
)


def lsp_command() -> list[str]:
    """The server as the suite runs it: this interpreter's `quillmate lsp`."""
    return [sys.executable, "-m", "assistant", "lsp"]


def require_editor(binary: str) -> str:
    """The editor's path, or skip the test saying which binary is missing."""
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"`{binary}` is not installed; install it to test its quillmate plugin")
    return path


@dataclass
class EditorRun:
    """What one headless editor session reported."""

    result: dict
    seconds: float
    output: str


@pytest.fixture
def prose_file(tmp_path: Path) -> Path:
    """A markdown file with an opening the model can continue."""
    path = tmp_path / "chapter.md"
    path.write_text(OPENING + "\n", encoding="utf-8")
    return path


@pytest.fixture
def editor_env(tmp_path: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The editors' own state (logs, shada, caches) kept in the test's temp dir."""
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        folder = tmp_path / name.lower()
        folder.mkdir()
        monkeypatch.setenv(name, str(folder))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("QM_CMD", json.dumps(lsp_command()))
    monkeypatch.setenv("QM_REPO", str(REPO_ROOT))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    env.setdefault("TERM", "dumb")
    return env


def run_editor(argv: Sequence[str], env: dict[str, str], result_file: Path, timeout: float = 240) -> EditorRun:
    """Run an editor to completion and read the JSON its test script wrote."""
    start = time.monotonic()
    proc = subprocess.run(
        list(argv),
        env=env,
        cwd=result_file.parent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    seconds = time.monotonic() - start
    output = (proc.stdout + proc.stderr)[-4000:]
    if not result_file.is_file():
        pytest.fail(f"{argv[0]} wrote no result (exit {proc.returncode}):\n{output}")
    result = json.loads(result_file.read_text(encoding="utf-8"))
    print(
        f"{Path(argv[0]).name} plugin test took {seconds:.1f} s; "
        f"ghost text drawn {len(result.get('renders', []))} times; cancel answered in {result.get('cancel_ms')} ms"
    )
    return EditorRun(result=result, seconds=seconds, output=output)


def assert_passed(run: EditorRun) -> None:
    """Fail with the script's own message and the steps it got through."""
    result = run.result
    if not result.get("ok"):
        pytest.fail(
            f"{result.get('error')}\nsteps done: {result.get('steps')}\n--- editor output ---\n{run.output}",
            pytrace=False,
        )


def run_plugin(
    name: str, argv: Sequence[str], prose_file: Path, editor_env: dict[str, str], steps: list[str]
) -> EditorRun:
    """Run ``argv`` (an editor sourcing its test script) with the ``editors/NAME`` plugin on ``prose_file``.

    Checks the script got through ``steps``, in order, answered a cancel within two seconds,
    and left the file on disk untouched (the plugin edits the buffer; the writer saves).
    """
    result_file = prose_file.parent / f"{name}-result.json"
    env = {
        **editor_env,
        "QM_PLUGIN": str(EDITORS_DIR / name),
        "QM_FILE": str(prose_file),
        "QM_RESULT": str(result_file),
    }
    run = run_editor(argv, env, result_file)
    assert_passed(run)
    assert run.result["steps"] == steps
    assert run.result["cancel_ms"] < 2000
    assert prose_file.read_text(encoding="utf-8").startswith("# The lighthouse")
    return run
