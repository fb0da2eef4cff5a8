"""The Neovim plugin, driven by a headless Neovim against the real server."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.editors.conftest import EDITORS_DIR, HERE, require_editor, run_plugin

pytestmark = pytest.mark.slow


def test_ghost_text_accept_provenance_rewrite_cancel(prose_file: Path, editor_env: dict[str, str]) -> None:
    nvim = require_editor("nvim")
    run_plugin(
        "nvim",
        [nvim, "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", f"luafile {HERE / 'nvim_test.lua'}"],
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


def test_checkhealth_reports_the_server(tmp_path: Path, editor_env: dict[str, str]) -> None:
    nvim = require_editor("nvim")
    report = tmp_path / "health.txt"
    setup = "lua require('quillmate').setup({cmd = vim.fn.json_decode(vim.env.QM_CMD)})"
    proc_env = {**editor_env}
    subprocess.run(
        [
            nvim,
            "--headless",
            "-u",
            "NONE",
            "-i",
            "NONE",
            "-n",
            "--cmd",
            f"set rtp^={EDITORS_DIR / 'nvim'}",
            "-c",
            "runtime plugin/quillmate.lua",
            "-c",
            setup,
            "-c",
            "checkhealth quillmate",
            "-c",
            f"write! {report}",
            "-c",
            "qall!",
        ],
        env=proc_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
        check=False,
    )
    text = report.read_text(encoding="utf-8")
    assert "ERROR" not in text, text
    assert "the language server started and answered" in text, text
    assert "Neovim 0." in text or "Neovim 1." in text, text
