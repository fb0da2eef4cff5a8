"""The Vim 9 plugin, driven by `vim -es` against the real server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.editors.conftest import HERE, require_editor, run_plugin

pytestmark = pytest.mark.slow


def test_ghost_text_accept_provenance_rewrite_cancel(prose_file: Path, editor_env: dict[str, str]) -> None:
    vim = require_editor("vim")
    run_plugin(
        "vim",
        [vim, "-es", "-N", "-u", "NONE", "-i", "NONE", "-n", "-S", str(HERE / "vim_test.vim")],
        prose_file,
        editor_env,
        steps=[
            "attached",
            "ghost text",
            "accept",
            "provenance",
            "alternatives",
            "word alternatives",
            "template, accept line",
            "info, provenance window",
            "switch backend",
            "rewrite reject",
            "rewrite accept",
            "cancel",
        ],
    )
