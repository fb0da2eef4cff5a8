"""The Vim 9 plugin, driven by `vim -es` against the real server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.editors.conftest import EDITORS_DIR, HERE, assert_passed, require_editor, run_editor

pytestmark = pytest.mark.slow


def test_ghost_text_accept_provenance_rewrite_cancel(prose_file: Path, editor_env: dict[str, str]) -> None:
    vim = require_editor("vim")
    result_file = prose_file.parent / "vim-result.json"
    env = {
        **editor_env,
        "QM_PLUGIN": str(EDITORS_DIR / "vim"),
        "QM_FILE": str(prose_file),
        "QM_RESULT": str(result_file),
    }
    run = run_editor(
        [vim, "-es", "-N", "-u", "NONE", "-i", "NONE", "-n", "-S", str(HERE / "vim_test.vim")], env, result_file
    )
    assert_passed(run)
    assert run.result["steps"] == [
        "attached",
        "ghost text",
        "accept",
        "provenance",
        "alternatives",
        "template, accept line",
        "info, provenance window",
        "switch backend",
        "rewrite reject",
        "rewrite accept",
        "cancel",
    ]
    assert run.result["cancel_ms"] < 2000
    assert prose_file.read_text(encoding="utf-8").startswith("# The lighthouse")
