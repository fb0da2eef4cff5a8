"""Shared fixtures: every test gets its own quillmate home and a clean environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.gpt2 import BUNDLED_MODEL_DIR

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private QUILLMATE_HOME; no real config, keys or network for any test."""
    home = tmp_path_factory.mktemp("quillmate-home")
    monkeypatch.setenv("QUILLMATE_HOME", str(home))
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "QUILLMATE_")) and name != "QUILLMATE_HOME":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    yield home


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random GPT-2 saved to a folder (built once per test run)."""
    from tests.support.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="session")
def bundled_model_dir() -> Path:
    """The bundled offline model shipped inside the package."""
    if not (BUNDLED_MODEL_DIR / "config.json").is_file():
        pytest.fail(f"The bundled model is missing from {BUNDLED_MODEL_DIR}.")
    return BUNDLED_MODEL_DIR


@pytest.fixture(scope="session")
def fim_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the bundled model whose tokenizer declares the fill-in-the-middle tokens (built once per run)."""
    from tests.support.fim_model import copy_with_fim_tokens

    if not (BUNDLED_MODEL_DIR / "config.json").is_file():
        pytest.fail(f"The bundled model is missing from {BUNDLED_MODEL_DIR}.")
    return copy_with_fim_tokens(BUNDLED_MODEL_DIR, tmp_path_factory.mktemp("fim-model"))
