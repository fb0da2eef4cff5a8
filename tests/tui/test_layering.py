"""The writing app reaches models and the core only through the ``assistant`` package."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = ("backends", "torch", "transformers", "openai")
TUI = Path(__file__).resolve().parents[2] / "tui"


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def test_no_tui_module_imports_backends_or_model_libraries() -> None:
    sources = sorted(TUI.rglob("*.py"))
    assert TUI / "app.py" in sources
    wrong = [
        f"{path.relative_to(TUI.parent)}:{line}: {module}"
        for path in sources
        for line, module in _imported_modules(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        if module.split(".")[0] in FORBIDDEN
    ]
    assert not wrong, "tui/ must import these through `assistant`:\n" + "\n".join(wrong)
