"""Fill-in-the-middle: writing at a cursor with the writer's text on both sides of it.

A model trained to fill in the middle sees the text after the cursor too. Its tokenizer
declares three special tokens, and the prompt is laid out prefix, suffix, middle (PSM)::

    <|fim_prefix|>text before the cursor<|fim_suffix|>text after it<|fim_middle|>

or, for a model whose ``config.json`` says ``"quillmate_fim_layout": "spm"``, suffix first,
so that the text before the cursor runs straight into the middle, as in plain writing::

    <|fim_prefix|><|fim_suffix|>text after it<|fim_middle|>text before the cursor

The model then writes the middle and ends it with its end-of-text token. A model without
the tokens (GPT-2 itself) sees only the text before the cursor, and the writer is told so.
OpenAI-compatible servers take the text after the cursor as a completion's ``suffix``
when their profile says so (see backends.openai_backend).

Nothing here imports torch or transformers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from backends.base import GenerationParams, Notice

FIM_SPELLINGS: tuple[tuple[str, str, str], ...] = (
    ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
    ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),  # StarCoder's spelling
)
"""The prefix, suffix and middle tokens a tokenizer may declare, each spelling in full."""

SUFFIX_SHARE = 4
"""The text after the cursor takes at most 1/4 of the room the prompt has; the text before it gets the rest."""

MARKER_TOKENS = 3
"""Tokens the layout adds to the writer's text: one each for prefix, suffix and middle."""

RESUME_WORDS = 4
"""How many words from the start of the text after the cursor end a filled gap when the model writes them."""

_FIRST_WORDS = re.compile(rf"\S+(?:\s+\S+){{{RESUME_WORDS - 1}}}")


FimLayout = Literal["psm", "spm"]

LAYOUT_KEY = "quillmate_fim_layout"
"""The ``config.json`` key that names a model's layout (``psm`` when absent)."""


@dataclass(frozen=True)
class FimTokens:
    """The ids of a model's three fill-in-the-middle tokens, and the layout it was trained on."""

    prefix: int
    suffix: int
    middle: int
    layout: FimLayout = "psm"

    @property
    def ids(self) -> tuple[int, int, int]:
        """The three ids, in prefix, suffix, middle order."""
        return (self.prefix, self.suffix, self.middle)

    def prompt_ids(self, before: Sequence[int], after: Sequence[int]) -> list[int]:
        """The prompt, in this model's layout, for the tokens of the text before and after the cursor."""
        if self.layout == "spm":
            return [self.prefix, self.suffix, *after, self.middle, *before]
        return [self.prefix, *before, self.suffix, *after, self.middle]


def layout_of(config: Any) -> FimLayout:
    """The layout a model's config (an object or a ``config.json`` mapping) declares; ``psm`` by default."""
    value = config.get(LAYOUT_KEY) if isinstance(config, Mapping) else getattr(config, LAYOUT_KEY, None)
    return "spm" if value == "spm" else "psm"


def find_fim_tokens(
    vocab: Mapping[str, int], vocab_size: int | None = None, layout: FimLayout = "psm"
) -> FimTokens | None:
    """The fill-in-the-middle tokens a tokenizer's vocabulary declares, or None.

    Args:
        vocab: The tokenizer's vocabulary with its added tokens (``tokenizer.get_vocab()``).
        vocab_size: Rows of the model's embedding; tokens beyond it were added to the
            tokenizer but never to the model, which then cannot read them.
        layout: The layout the model was trained on (see :func:`layout_of`).
    """
    for spelling in FIM_SPELLINGS:
        ids = [vocab.get(token) for token in spelling]
        if all(isinstance(i, int) and (vocab_size is None or 0 <= i < vocab_size) for i in ids):
            prefix, suffix, middle = (int(i) for i in ids if i is not None)
            return FimTokens(prefix, suffix, middle, layout)
    return None


def suffix_room(room: int) -> int:
    """Tokens the text after the cursor may take of the ``room`` a prompt has."""
    return max(0, room // SUFFIX_SHARE)


def end_at_word(text: str) -> str:
    """``text`` (the front of a longer text) without the partial word it may end in."""
    if not text or text[-1].isspace():
        return text
    for i in range(len(text) - 1, max(len(text) - 80, 0) - 1, -1):
        if text[i].isspace():
            return text[: i + 1]
    return text


def resume_stop(after: str) -> str | None:
    """The writer's own words that end a filled gap when the model writes them itself, or None.

    A small model may miss its end-of-text token and carry on into the text after the
    cursor; these first words of it, as a stop sequence, keep the writer's words from
    being written twice. None when the text after is too short to be told apart.
    """
    found = _FIRST_WORDS.search(after)
    return found.group(0) if found else None


def with_resume_stop(params: GenerationParams, after: str) -> GenerationParams:
    """``params`` with :func:`resume_stop` of ``after`` among its stop sequences."""
    stop = resume_stop(after)
    return replace(params, stop=(*params.stop, stop)) if stop and stop not in params.stop else params


def cannot_see_after() -> Notice:
    """The notice for a model that writes from the text before the cursor alone."""
    return Notice(
        "unsupported", "This model cannot see the text after the cursor; it writes on from the text before it only."
    )


__all__ = [
    "FIM_SPELLINGS",
    "LAYOUT_KEY",
    "MARKER_TOKENS",
    "RESUME_WORDS",
    "SUFFIX_SHARE",
    "FimLayout",
    "FimTokens",
    "cannot_see_after",
    "end_at_word",
    "find_fim_tokens",
    "layout_of",
    "resume_stop",
    "suffix_room",
    "with_resume_stop",
]
