"""The Emacs package, driven by `emacs --batch` with ERT against the real server."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.editors.conftest import EDITORS_DIR, HERE, require_editor

pytestmark = pytest.mark.slow


def test_ert_suite(prose_file: Path, editor_env: dict[str, str]) -> None:
    emacs = require_editor("emacs")
    result_file = prose_file.parent / "emacs-result.json"
    env = {**editor_env, "QM_FILE": str(prose_file), "QM_RESULT": str(result_file)}
    start = time.monotonic()
    proc = subprocess.run(
        [
            emacs,
            "--batch",
            "-Q",
            "-L",
            str(EDITORS_DIR / "emacs"),
            "-l",
            str(HERE / "emacs_test.el"),
            "-f",
            "ert-run-tests-batch-and-exit",
        ],
        env=env,
        cwd=prose_file.parent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
    )
    print(f"emacs plugin tests took {time.monotonic() - start:.1f} s")
    output = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, output
    assert "Ran 5 tests, 5 results as expected" in output, output
    timings = json.loads(result_file.read_text(encoding="utf-8"))
    print(f"emacs timings: {timings}")
    assert timings["cancel-ms"] < 2000, timings
    assert prose_file.read_text(encoding="utf-8").startswith("# The lighthouse")


def test_byte_compiles_cleanly(tmp_path: Path, editor_env: dict[str, str]) -> None:
    emacs = require_editor("emacs")
    copy = tmp_path / "quillmate.el"
    copy.write_text((EDITORS_DIR / "emacs" / "quillmate.el").read_text(encoding="utf-8"), encoding="utf-8")
    proc = subprocess.run(
        [
            emacs,
            "--batch",
            "-Q",
            "--eval",
            "(setq byte-compile-error-on-warn t)",
            "-f",
            "batch-byte-compile",
            str(copy),
        ],
        env=editor_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
