"""The ``assistant.templates`` package: each module stands alone, the public names stay where they were."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import assistant.templates as templates

MODULES = sorted(info.name for info in pkgutil.iter_modules(templates.__path__))
HEAVY = ("langchain_core", "torch", "transformers", "openai")


def test_every_job_has_its_module() -> None:
    assert MODULES == [
        "common",
        "derivations",
        "files",
        "finish",
        "library",
        "model",
        "render",
        "scanners",
        "schema",
        "starter",
        "toml_lines",
        "validation",
        "values",
    ]


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_first_and_alone(module: str) -> None:
    """Imported first in a fresh interpreter, a module that sat in an import circle would fail."""
    code = (
        f"import sys, assistant.templates.{module}\n"
        f"print(','.join(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == ""


def test_public_names_are_exported_from_the_package() -> None:
    # What tui/, assistant/ and tests/ import from the package today.
    used = {
        "NAME_PATTERN",
        "ChatForm",
        "RenderedPrompt",
        "Template",
        "TemplateFileError",
        "TemplateLibrary",
        "VariableSpec",
        "builtin_templates_dir",
        "check_template_file",
        "load_template_file",
        "starter_template",
    }
    assert used <= set(templates.__all__)
    missing = [name for name in templates.__all__ if not hasattr(templates, name)]
    assert missing == []
