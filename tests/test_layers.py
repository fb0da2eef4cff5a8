"""The import rules in pyproject.toml hold, and they do catch a module that breaks them.

Layers: ``tui`` -> ``assistant`` -> ``backends``; backends never import the core, the
HTTP server never imports a concrete backend, the core never imports the UI, and a
session never imports the store that made it. ``lint-imports`` checks them all.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("assistant", "backends", "tui", "prompts")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(
    not LINT_IMPORTS.exists(), reason="import-linter is not installed (pip install -e .[dev])"
)


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": str(LINT_IMPORTS.parent), "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=240,
    )


def copy_tree(target: Path) -> Path:
    """The four packages' Python files and pyproject.toml, where a test may break them."""
    for package in PACKAGES:
        shutil.copytree(
            REPO / package,
            target / package,
            ignore=lambda folder, names: [
                n for n in names if not (n.endswith(".py") or (Path(folder) / n).is_dir()) or n == "__pycache__"
            ],
        )
    shutil.copy(REPO / "pyproject.toml", target / "pyproject.toml")
    return target


def test_the_contracts_are_kept() -> None:
    done = lint_imports(REPO)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    for contract in (
        "dependencies point one way",
        "Backends never reach into the core",
        "HTTP server reaches backends only through the registry",
        "core knows nothing of the terminal UI",
        "no session.py <-> store.py",
    ):
        assert contract in " ".join(done.stdout.split()), f"contract missing: {contract}"
    assert "BROKEN" not in done.stdout


@pytest.mark.parametrize(
    ("path", "source", "broken"),
    [
        ("backends/_peek.py", "from assistant.keys import load_key\n", "Backends never reach into the core"),
        ("assistant/server/_direct.py", "from backends.gpt2 import GPT2Backend\n", "HTTP server reaches backends"),
        ("assistant/_widgets.py", "import textual.widgets\n", "core knows nothing of the terminal UI"),
        ("assistant/sessions/_back.py", "", "no session.py <-> store.py"),
    ],
)
def test_a_module_that_breaks_a_rule_is_caught(tmp_path: Path, path: str, source: str, broken: str) -> None:
    root = copy_tree(tmp_path)
    if path.endswith("_back.py"):  # the circle comes back: session.py imports the store again
        session_py = root / "assistant/sessions/session.py"
        session_py.write_text(
            session_py.read_text(encoding="utf-8") + "\nfrom assistant.sessions.store import SessionStore  # noqa\n",
            encoding="utf-8",
        )
    else:
        (root / path).write_text(textwrap.dedent(source), encoding="utf-8")
    done = lint_imports(root)
    assert done.returncode != 0
    flat = " ".join(done.stdout.split())
    assert f"{broken}" in flat and "BROKEN" in flat, done.stdout[-3000:]


def test_backends_find_stored_keys_only_through_the_store_the_core_installs(tmp_path: Path) -> None:
    """Without ``assistant`` the OpenAI backend knows no stored key; importing the core hands it the key files."""
    code = textwrap.dedent("""
        import sys
        from backends.errors import BackendError
        from backends.openai_backend import OpenAIBackend
        try:
            OpenAIBackend("openai", "gpt-4o-mini").resolve_key()
        except BackendError as error:
            print("alone:", error.message)
        assert "assistant" not in sys.modules, "backends imported the core"
        import assistant
        found = OpenAIBackend("openai", "gpt-4o-mini").resolve_key()
        print("with the core:", found.describe())
    """)
    keys = tmp_path / "config" / "keys"
    keys.mkdir(parents=True, mode=0o700)
    (keys / "openai.key").write_text("sk-test-0123456789abcdefWXYZ\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={"QUILLMATE_HOME": str(tmp_path), "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert "alone: No OpenAI API key" in done.stdout
    assert f"with the core: sk-…WXYZ from key file {keys / 'openai.key'}" in done.stdout
    assert "0123456789" not in done.stdout
