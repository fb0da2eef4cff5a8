"""The words the model almost wrote, and writing again from one of them.

A generation asked for with the ``logprobs`` setting carries, for each alternative, its
tokens with the likeliest other tokens at each (:class:`backends.base.TokenAlternatives`).
This module answers the questions every front end asks of them, knowing nothing of any
front end:

- :func:`choices_at`: the token under a character offset of the written text, and what
  else the model might have put there, with probabilities;
- :func:`regenerate_from`: keep the text up to that token, put the chosen word there, and
  let the model write the rest again;
- :func:`tokens_json`: the tokens as plain JSON (the shape of OpenAI's chat ``logprobs``).

A "word" here is one of the model's tokens: usually a word with its leading space, or a
piece of a longer word.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from backends.base import GenerationRequest, GenerationResult, TokenAlternatives
from backends.errors import UsageError
from backends.settings import SETTING

if TYPE_CHECKING:
    from assistant.core import Assistant, Prepared

Tokens = tuple[TokenAlternatives, ...]
REGENERATE_LOGPROBS = 5
"""Alternatives asked for when writing again, when the request named none (so the writer can choose again)."""


@dataclass(frozen=True)
class WordChoices:
    """The token at one point of a written text and what else the model might have put there.

    Attributes:
        index: The token's position among the text's tokens.
        start: Where the token starts in the text (a character offset).
        end: Where it ends.
        word: The token's text.
        logprob: The natural-log probability the model gave it.
        options: The likeliest tokens there as ``(text, probability from 0 to 1)``, likeliest first.
    """

    index: int
    start: int
    end: int
    word: str
    logprob: float
    options: tuple[tuple[str, float], ...]

    @property
    def probability(self) -> float:
        """The chosen token's probability, from 0 to 1."""
        return _probability(self.logprob)

    def to_dict(self) -> dict[str, Any]:
        """As JSON: offsets, the word with its probability, and the options."""
        return {
            "start": self.start,
            "end": self.end,
            "word": self.word,
            "logprob": _finite(self.logprob),
            "probability": self.probability,
            "alternatives": [{"text": text, "probability": p} for text, p in self.options],
        }


@dataclass(frozen=True)
class Regenerated:
    """A text written again from a chosen word.

    Attributes:
        text: The whole new text: the kept start, the chosen word, and what the model wrote after it.
        start: Where the chosen word starts in ``text`` (and in the old text).
        kept: The text kept from before (``text[:start]``).
        choice: The chosen word.
        tokens: The new text's tokens with their alternatives (the kept ones unchanged).
        result: The generation that wrote the rest.
    """

    text: str
    start: int
    kept: str
    choice: str
    tokens: Tokens
    result: GenerationResult


def offsets(tokens: Sequence[TokenAlternatives]) -> list[int]:
    """Where each token starts in the text the tokens make up."""
    starts: list[int] = []
    at = 0
    for token in tokens:
        starts.append(at)
        at += len(token.token)
    return starts


def choices_at(tokens: Sequence[TokenAlternatives], offset: int) -> WordChoices:
    """The token holding character ``offset`` of the written text, and the other tokens the model weighed there.

    An offset at the very end names the last token; a token that holds only part of a
    character (no text of its own) is never chosen.

    Raises:
        UsageError: there are no alternatives (none were asked for), or the offset is outside the text.
    """
    if not tokens:
        raise UsageError(
            "This text has no word alternatives.",
            f"Ask for them when writing it: the {SETTING['logprobs'].label} setting (logprobs) at 5, say. "
            "The editors and the writing app ask for them themselves; some servers give none.",
        )
    starts = offsets(tokens)
    total = starts[-1] + len(tokens[-1].token)
    if not 0 <= offset <= total:
        raise UsageError(f"Offset {offset} is outside the written text (0 to {total}).")
    index = next(
        (i for i, (s, t) in enumerate(zip(starts, tokens, strict=True)) if s <= offset < s + len(t.token)),
        max(i for i, t in enumerate(tokens) if t.token or i == 0),
    )
    token = tokens[index]
    options = tuple((text, _probability(lp)) for text, lp in token.top)
    return WordChoices(index, starts[index], starts[index] + len(token.token), token.token, token.logprob, options)


def realign(tokens: Tokens, raw: str, tidied: str) -> Tokens:
    """``tokens`` of ``raw`` made to fit ``tidied``, a tidied copy of it (outer space trimmed).

    Returns ``tokens`` unchanged when ``tidied`` is not a part of ``raw``.
    """
    if tidied == raw:
        return tokens
    at = raw.find(tidied)
    if at < 0 or not tidied:
        return tokens if at < 0 else ()
    out: list[TokenAlternatives] = []
    position = 0
    end = at + len(tidied)
    for token in tokens:
        start, stop = position, position + len(token.token)
        position = stop
        if stop <= at and token.token:
            continue
        if start >= end:
            break
        piece = raw[max(start, at) : min(stop, end)]
        out.append(token if piece == token.token else replace(token, token=piece))
    return tuple(out)


async def regenerate_from(
    helper: Assistant,
    before: str,
    written: str,
    tokens: Sequence[TokenAlternatives],
    offset: int,
    choice: str,
    *,
    params: Mapping[str, Any] | None = None,
    prepare: Callable[[str], Prepared] | None = None,
    run: Callable[[GenerationRequest], Awaitable[GenerationResult]] | None = None,
) -> Regenerated:
    """Keep ``written`` up to the token at ``offset``, put ``choice`` there, and write the rest again.

    Args:
        helper: The assistant whose backend writes.
        before: The text ``written`` continued (the draft up to where it was inserted).
        written: The model's text, whose ``tokens`` these are.
        tokens: Its tokens with their alternatives.
        offset: A character offset of ``written`` inside the word to replace.
        choice: The word to put there (one of the alternatives, or the writer's own).
        params: Generation settings for the default request (the ones ``written`` was made with,
            usually); word alternatives are asked for again unless they say otherwise.
        prepare: Builds the request that continues a text, instead of the ``continue`` template.
        run: Runs that request (to stream it, say); by default its stream is drained quietly.

    Returns:
        The new text and its tokens; the generation is in ``result``.

    Raises:
        UsageError: no alternatives, an offset outside the text, or an empty choice.
        BackendError: the backend could not write.
    """
    if not choice:
        raise UsageError("Choose the word to put there.")
    from assistant.core import collect

    here = choices_at(tokens, offset)
    kept = written[: here.start]
    prompt = before + kept + choice
    if prepare is None:
        wanted = {"logprobs": max(REGENERATE_LOGPROBS, len(here.options)), **(params or {})}
        prepared = helper.prepare("continue", {"text": prompt}, wanted)
    else:
        prepared = prepare(prompt)
    result = await (run(prepared.request) if run else collect(helper.astream_request(prepared.request)))
    if result.error:
        from backends.errors import BackendError

        raise BackendError(result.error, "Try again, or switch backend.")
    rest = result.text
    chosen_logprob = dict(tokens[here.index].top).get(choice, -math.inf)
    new_tokens = (
        *tokens[: here.index],
        TokenAlternatives(choice, chosen_logprob, tokens[here.index].top),
        *(result.logprobs[0] if result.logprobs else ()),
    )
    return Regenerated(kept + choice + rest, here.start, kept, choice, tuple(new_tokens), result)


def tokens_json(tokens: Sequence[TokenAlternatives]) -> list[dict[str, Any]]:
    """Tokens as JSON, in the shape of OpenAI's chat ``logprobs.content`` (an impossible token's logprob is null)."""
    return [
        {
            "token": t.token,
            "logprob": _finite(t.logprob),
            "top_logprobs": [{"token": text, "logprob": _finite(lp)} for text, lp in t.top],
        }
        for t in tokens
    ]


def _finite(logprob: float) -> float | None:
    return logprob if math.isfinite(logprob) else None


def _probability(logprob: float) -> float:
    return round(math.exp(logprob), 6) if math.isfinite(logprob) else 0.0


__all__ = [
    "REGENERATE_LOGPROBS",
    "Regenerated",
    "WordChoices",
    "choices_at",
    "offsets",
    "realign",
    "regenerate_from",
    "tokens_json",
]
