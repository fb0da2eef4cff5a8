"""OpenAI-shaped ``logprobs`` for ``quillmate serve``, from a result's word alternatives.

Requests ask as OpenAI's do: chat with ``logprobs: true`` and ``top_logprobs: K``,
completions with ``logprobs: K``. Both become the ``logprobs`` generation setting
(at least 1, so the written token's own probability is known); the answer shows ``K``
alternatives at each token, in the shape of the endpoint:

- chat: ``{"content": [{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]}]}``;
- completions: ``{"tokens", "token_logprobs", "top_logprobs": [{token: logprob}], "text_offset"}``,
  the offsets counted from the start of the prompt, as OpenAI counts them.

A streamed answer carries each choice's logprobs whole in its finishing chunk (the text
chunks have ``"logprobs": null``): clients that join the chunks' logprobs get them all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from backends.base import TokenAlternatives
from backends.errors import UsageError
from backends.settings import SETTING


def requested(body: dict[str, Any], shape: str) -> int | None:
    """How many alternatives per token the request asks to see; None when it asks for no logprobs.

    Raises:
        UsageError: a value of the wrong kind or out of range, naming the field.
    """
    most = int(SETTING["logprobs"].maximum or 20)
    asked, top = body.get("logprobs"), body.get("top_logprobs")
    if shape == "chat":
        if asked is not None and not isinstance(asked, bool):
            raise UsageError("'logprobs' must be true or false.")
        if top is not None and (not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= most):
            raise UsageError(f"'top_logprobs' must be a whole number from 0 to {most} (got {top!r}).")
        if top and not asked:
            raise UsageError("'top_logprobs' needs 'logprobs' set to true.")
        return int(top or 0) if asked else None
    if top is not None:
        raise UsageError("Completions take 'logprobs' as a number; 'top_logprobs' is for chat completions.")
    if asked is None:
        return None
    if not isinstance(asked, int) or isinstance(asked, bool) or not 0 <= asked <= most:
        raise UsageError(f"'logprobs' must be a whole number from 0 to {most} (got {asked!r}).")
    return asked


def choice_logprobs(shape: str, tokens: Sequence[TokenAlternatives], shown: int, start: int = 0) -> dict[str, Any]:
    """One choice's ``logprobs`` object.

    Args:
        shape: ``chat`` or ``completion``.
        tokens: The choice's tokens with their alternatives.
        shown: How many alternatives to show at each token.
        start: For completions: where the written text starts (the prompt's length).
    """
    if shape == "chat":
        return {
            "content": [
                {
                    "token": t.token,
                    "logprob": _wire(t.logprob),
                    "bytes": list(t.token.encode()),
                    "top_logprobs": [
                        {"token": text, "logprob": _wire(lp), "bytes": list(text.encode())}
                        for text, lp in t.top[:shown]
                    ],
                }
                for t in tokens
            ],
            "refusal": None,
        }
    offsets: list[int] = []
    at = start
    for t in tokens:
        offsets.append(at)
        at += len(t.token)
    return {
        "tokens": [t.token for t in tokens],
        "token_logprobs": [_wire(t.logprob) for t in tokens],
        "top_logprobs": [{text: _wire(lp) for text, lp in t.top[:shown]} for t in tokens],
        "text_offset": offsets,
    }


def choice_starts(parsed: Any, jobs: Sequence[Any]) -> list[int]:
    """Each choice's prompt length, for completions' ``text_offset`` (jobs run the prompts in order)."""
    prompts = list(parsed.prompts) or [""] * len(jobs)
    return [len(prompt) for job, prompt in zip(jobs, prompts, strict=False) for _ in range(job.choices)]


def _wire(logprob: float) -> float:
    # JSON has no -Infinity; OpenAI writes -9999.0 for a token with no chance at all.
    return logprob if math.isfinite(logprob) else -9999.0


__all__ = ["choice_logprobs", "choice_starts", "requested"]
