"""The words a local model almost chose: top-k alternatives at each written token.

With the ``logprobs`` setting above 0, :func:`add_recorder` puts an
:class:`AlternativesRecorder` into ``generate``'s logits processors. At each step it
reads the scores, turns them into log-probabilities and keeps the likeliest ``k``
tokens of every row; it returns the scores unchanged, so the text written is the same
with or without it (greedy or seeded).

Which probabilities: those after the model's own rules (repetition penalty, the
minimum length, banned phrases and biases), before temperature, top-k and top-p. With
none of those rules they are exactly the model's, as a forward pass gives them; with
them, a banned word never shows up as an alternative the writer could pick.

The written token's own log-probability is read at the next step (its id is then the
last input id) or, for the last token, when the result is assembled.

torch and transformers are imported only when a recorder is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from backends.base import Notice, TokenAlternatives
from backends.settings import GenerationParams

_WARPERS = ("TemperatureLogitsWarper", "TopKLogitsWarper", "TopPLogitsWarper")


class AlternativesRecorder:
    """A logits processor that keeps the top ``k`` tokens and the full log-probabilities of each step.

    Args:
        k: How many alternatives to keep at each step.
        tokenizer: The model's tokenizer, to turn ids into text.
    """

    def __init__(self, k: int, tokenizer: Any) -> None:
        self.k = k
        self.tokenizer = tokenizer
        self.steps: list[tuple[list[list[int]], list[list[float]]]] = []  # per step: (ids, logprobs) per row
        self.chosen: list[list[float]] = []  # per step: the written token's logprob, per row
        self._last: Any = None  # the last step's log-probabilities (rows x vocabulary)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self._last is not None:
            self.chosen.append(self._gather(input_ids[:, -1]))
        logprobs = torch.log_softmax(scores.float(), dim=-1)
        values, ids = torch.topk(logprobs, min(self.k, logprobs.shape[-1]), dim=-1)
        self.steps.append((ids.tolist(), values.tolist()))
        self._last = logprobs
        return scores

    def _gather(self, tokens: Any) -> list[float]:
        picked = self._last.gather(-1, tokens.reshape(-1, 1).to(self._last.device))
        return [float(v) for v in picked.reshape(-1).tolist()]

    def alternatives(self, row: int, tokens: Sequence[int], text: str) -> tuple[TokenAlternatives, ...]:
        """The alternatives at each of ``tokens`` (one row's written tokens), cut to fit ``text``.

        Args:
            row: The row (alternative) of the batch.
            tokens: The tokens written in that row, end-of-text left out.
            text: The text the writer was given (stop sequences and line limits may have cut it).

        Returns:
            One entry per token that stands in ``text``; a token only partly in it is cut to fit.
        """
        out: list[TokenAlternatives] = []
        pieces = token_pieces(self.tokenizer, tokens)
        for step, (token, piece) in enumerate(zip(tokens, pieces, strict=True)):
            if step >= len(self.steps):
                break
            ids, values = self.steps[step]
            top = tuple((self._text(i), round(v, 6)) for i, v in zip(ids[row], values[row], strict=True))
            out.append(TokenAlternatives(piece, round(self._chosen(step, row, token), 6), top))
        return fit_to_text(out, text)

    def _chosen(self, step: int, row: int, token: int) -> float:
        if step < len(self.chosen):
            return self.chosen[step][row]
        if step == len(self.chosen) and self._last is not None:  # the last step: nothing came after it
            return float(self._last[row, token])
        return float("-inf")

    def _text(self, token: int) -> str:
        return str(self.tokenizer.decode([token], skip_special_tokens=False, clean_up_tokenization_spaces=False))


def token_pieces(tokenizer: Any, tokens: Sequence[int]) -> list[str]:
    """The text each token adds, so that the pieces join to the decoded text.

    A character split over several tokens is given whole to its last token; the ones
    before it get "".
    """
    pieces: list[str] = []
    start = 0
    for end in range(1, len(tokens) + 1):
        text = tokenizer.decode(tokens[start:end], skip_special_tokens=True, clean_up_tokenization_spaces=False)
        if text.endswith("\ufffd") and end < len(tokens):
            pieces.append("")
            continue
        pieces.append(text)
        start = end
    return pieces


def fit_to_text(entries: Sequence[TokenAlternatives], text: str) -> tuple[TokenAlternatives, ...]:
    """``entries`` up to the end of ``text``: tokens past it dropped, one only partly in it cut to fit.

    The written text can be shorter than the tokens: a stop sequence, a line limit or a
    banned phrase ends it inside what the model wrote.
    """
    out: list[TokenAlternatives] = []
    written = 0
    for entry in entries:
        if written >= len(text):
            break
        piece = entry.token[: len(text) - written]
        written += len(piece)
        out.append(entry if piece == entry.token else replace(entry, token=piece))
    return tuple(out)


def openai_request_fields(params: GenerationParams, *, chat: bool) -> dict[str, Any]:
    """The request fields that ask an OpenAI-compatible server for ``params.logprobs`` alternatives.

    Chat takes ``logprobs: true`` and ``top_logprobs: K``; completions take ``logprobs: K``.
    """
    if not params.logprobs:
        return {}
    return {"logprobs": True, "top_logprobs": params.logprobs} if chat else {"logprobs": params.logprobs}


def from_openai(logprobs: Any, *, chat: bool) -> list[TokenAlternatives]:
    """The alternatives in one streamed choice's ``logprobs`` (SDK objects or plain dicts); [] when none.

    Chat: ``{"content": [{"token", "logprob", "top_logprobs": [{"token", "logprob"}]}]}``.
    Completions: ``{"tokens": [...], "token_logprobs": [...], "top_logprobs": [{token: logprob}]}``.
    """
    if logprobs is None:
        return []
    out: list[TokenAlternatives] = []
    if chat:
        for item in _field(logprobs, "content") or ():
            top = tuple(
                (str(_field(t, "token")), _number(_field(t, "logprob"))) for t in _field(item, "top_logprobs") or ()
            )
            out.append(TokenAlternatives(str(_field(item, "token") or ""), _number(_field(item, "logprob")), top))
        return out
    tokens = _field(logprobs, "tokens") or ()
    chosen = _field(logprobs, "token_logprobs") or ()
    tops = _field(logprobs, "top_logprobs") or ()
    for i, token in enumerate(tokens):
        given = tops[i] if i < len(tops) and isinstance(tops[i], dict) else {}
        top = tuple(sorted(((str(t), _number(v)) for t, v in given.items()), key=lambda pair: -pair[1]))
        out.append(TokenAlternatives(str(token), _number(chosen[i] if i < len(chosen) else None), top))
    return out


def no_alternatives_notice(server: str) -> Notice:
    """The notice for a server that gave no word alternatives though they were asked for."""
    return Notice(
        "unsupported",
        f"{server} gave no word alternatives (logprobs) for this text; it may not offer them.",
    )


def _field(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("-inf")


def add_recorder(kwargs: dict[str, Any], params: GenerationParams, tokenizer: Any) -> AlternativesRecorder | None:
    """Add a recorder to ``generate``'s ``kwargs`` when ``params.logprobs`` asks for one.

    It goes after every other processor already there (the bans and biases) and before
    the sampling warpers, which ``backends.steering`` may have moved into the same list.
    Returns None when not asked, or with beam search (its rows are beams, not alternatives).
    """
    if not params.logprobs or params.num_beams > 1:
        return None
    from transformers import LogitsProcessorList

    recorder = AlternativesRecorder(params.logprobs, tokenizer)
    processors = list(kwargs.get("logits_processor") or ())
    at = next((i for i, p in enumerate(processors) if type(p).__name__ in _WARPERS), len(processors))
    processors.insert(at, recorder)
    kwargs["logits_processor"] = LogitsProcessorList(processors)
    return recorder


def beam_notice(params: GenerationParams) -> Notice | None:
    """The notice for asking for word alternatives with beam search, which cannot give them."""
    if params.logprobs and params.num_beams > 1:
        return Notice("unsupported", "Word alternatives (logprobs) are not available with beam search; none were kept.")
    return None


__all__ = [
    "AlternativesRecorder",
    "add_recorder",
    "beam_notice",
    "fit_to_text",
    "from_openai",
    "no_alternatives_notice",
    "openai_request_fields",
    "token_pieces",
]
