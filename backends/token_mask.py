"""Tokens a local model may not write: end-of-text as its first token, and markers of the prompt's layout.

transformers' own ``min_new_tokens`` and ``suppress_tokens`` give exactly these scores, but
each builds a mask over the whole vocabulary at every step, the first one long after it has
stopped mattering: about 0.4 ms per token each on GPT-2's vocabulary, a few per cent of a
small model's time per token. :class:`TokenMask` sets the same scores to minus infinity
by index, and only while there is something to forbid.

It goes first among the processors ``generate`` is handed, so it runs where transformers'
two would have: after the model's own processors (repetition penalty) and before bans,
biases, word alternatives and the sampling warpers.

torch is imported only when a mask first runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class TokenMask:
    """A logits processor forbidding ``first`` at the first step and ``always`` at every step.

    Args:
        first: Tokens forbidden only as the first written token (the end-of-text token).
        always: Tokens never written.
    """

    def __init__(self, first: Sequence[int], always: Sequence[int] = ()) -> None:
        self.first = tuple(first)
        self.always = tuple(always)
        self._started = False
        self._index: Any = None  # ``always`` as a tensor on the scores' device, made once

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if not self._started:  # one call per step, so the first call is the first step
            self._started = True
            ids = self._within(self.first + self.always, scores)
            return self._fill(scores, torch.tensor(ids, dtype=torch.long, device=scores.device))
        if not self.always:
            return scores
        if self._index is None:
            ids = self._within(self.always, scores)
            self._index = torch.tensor(ids, dtype=torch.long, device=scores.device)
        return self._fill(scores, self._index)

    @staticmethod
    def _within(ids: Sequence[int], scores: Any) -> list[int]:
        # transformers matches ids against the vocabulary, so one beyond it forbids nothing.
        return [i for i in ids if 0 <= i < scores.shape[-1]]

    @staticmethod
    def _fill(scores: Any, index: Any) -> Any:
        return scores.index_fill(-1, index, float("-inf")) if index.numel() else scores


def add_token_mask(kwargs: dict[str, Any], eos_token_id: int, always: Sequence[int] = ()) -> None:
    """Put a :class:`TokenMask` first among ``kwargs["logits_processor"]`` (made when absent)."""
    from transformers import LogitsProcessorList

    processors = list(kwargs.get("logits_processor") or ())
    kwargs["logits_processor"] = LogitsProcessorList([TokenMask((eos_token_id,), always), *processors])
