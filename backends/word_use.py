"""Nudge a local model to work in given words, each once (the ``use_words`` setting).

A small model often drifts from what it was asked to write about. For each word not yet
written, its first token is made likelier, by a little more with every token that passes
without it; once the model starts the word, its remaining tokens are all but certain, so a
word of several tokens comes out whole rather than as a stray first piece; once written,
the word is left alone, so it is not repeated for the nudge's sake. The words already in
the prompt do not count: only what is written now.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from backends.steering import spellings

START = 2.5  # the first token's bonus (logits) when writing starts
RAMP = 0.12  # added per token written without the word
MOST = 6.0  # the bonus never grows past this
FINISH = 12.0  # once a word is begun, its next token's bonus: enough to finish it


def _word_pattern(word: str) -> re.Pattern[str]:
    # "kitchens" and "kitchen's" count as "kitchen"; so does any word it begins, so that a
    # word the model has made its own is not asked for again.
    return re.compile(rf"\b{re.escape(word)}", re.IGNORECASE)


class WordUseProcessor:
    """A ``transformers`` logits processor for ``use_words`` (see the module's docstring)."""

    def __init__(self, tokenizer: Any, words: Sequence[str]) -> None:
        self.tokenizer = tokenizer
        self.words = [w for w in dict.fromkeys(w.strip() for w in words) if w]
        self.patterns = [_word_pattern(w) for w in self.words]
        self.spelled: list[list[tuple[str, list[int]]]] = [
            [(s, ids) for s in spellings(w) if (ids := tokenizer(s, add_special_tokens=False)["input_ids"])]
            for w in self.words
        ]
        self.prompt_length: int | None = None
        self._glue: Any = None  # which tokens begin with a letter (they would run on from a word)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.prompt_length is None:
            self.prompt_length = int(input_ids.shape[1])
        written = int(input_ids.shape[1]) - self.prompt_length
        bonus = min(MOST, START + RAMP * written)
        for row in range(input_ids.shape[0]):
            new = input_ids[row, self.prompt_length :].tolist()
            text = self.tokenizer.decode(new, skip_special_tokens=True) if new else ""
            for pattern, variants in zip(self.patterns, self.spelled, strict=True):
                if any(new[-len(ids) :] == ids for _, ids in variants):
                    # Just written whole: the next token starts a new word, not "kitchenara".
                    scores[row, self._letter_tokens(scores)] -= FINISH
                    continue
                if pattern.search(text):
                    continue
                begun = [(ids, k) for _, ids in variants for k in range(len(ids) - 1, 0, -1) if new[-k:] == ids[:k]]
                if begun:
                    ids, k = max(begun, key=lambda pair: pair[1])
                    scores[row, ids[k]] += FINISH
                    continue
                # A word starts a line without a space before it, and anywhere else after one.
                line_start = self.tokenizer.decode(input_ids[row, -1:].tolist()).endswith("\n")
                for spelled, ids in variants:
                    if spelled.startswith(" ") != line_start:
                        scores[row, ids[0]] += bonus
        return scores

    def _letter_tokens(self, scores: Any) -> Any:
        if self._glue is None:
            import torch

            from backends.steering import token_texts

            texts = token_texts(self.tokenizer)
            self._glue = torch.tensor([t[:1].isalpha() for t in texts], device=scores.device)
            if self._glue.numel() < scores.shape[-1]:
                pad = torch.zeros(scores.shape[-1] - self._glue.numel(), dtype=torch.bool, device=scores.device)
                self._glue = torch.cat([self._glue, pad])
        return self._glue[: scores.shape[-1]]


__all__ = ["WordUseProcessor"]
