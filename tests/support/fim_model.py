"""A copy of a real model folder whose tokenizer gains the three fill-in-the-middle tokens.

The copy's embeddings are resized to hold them, so it loads and writes like any model; its
config names the layout the tests expect (PSM unless asked), whatever the source was trained
on, so every token id the backend builds can be checked against it. When the source already
has the tokens (a bundled model trained for it), the copy has the same weights.
:class:`PromptSpy` records the token ids the local backend builds, to check them.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from backends import gpt2
from backends.fim import FIM_SPELLINGS, LAYOUT_KEY, FimLayout
from backends.gpt2 import TOKENIZER_FILES, LoadedModel

MODEL_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "merges.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
)


def copy_with_fim_tokens(
    source: Path, folder: Path, spelling: tuple[str, str, str] = FIM_SPELLINGS[0], layout: FimLayout = "psm"
) -> Path:
    """Copy the model in ``source`` to ``folder`` with ``spelling``'s tokens added, laid out ``layout``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    for name in {*MODEL_FILES, *TOKENIZER_FILES}:
        if (source / name).is_file():
            shutil.copy2(source / name, folder / name)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.add_tokens(list(spelling), special_tokens=True)
    model = AutoModelForCausalLM.from_pretrained(folder)
    if model.get_input_embeddings().num_embeddings < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    setattr(model.config, LAYOUT_KEY, layout)
    tokenizer.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


class PromptSpy:
    """Records the prompt tokens the local backend builds: both of its ways of writing start from them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[list[int]] = []
        real = gpt2.prompt_ids

        def spy(*args: Any, **kwargs: Any) -> list[int]:
            ids = real(*args, **kwargs)
            self.calls.append(list(ids))
            return ids

        monkeypatch.setattr(gpt2, "prompt_ids", spy)

    @property
    def ids(self) -> list[int]:
        """The last prompt built."""
        return self.calls[-1]


def tokens(loaded: LoadedModel, text: str) -> list[int]:
    """The token ids of ``text`` alone, as the backend tokenizes the writer's words."""
    return loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
