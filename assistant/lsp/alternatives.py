"""Finding the generation behind a word an editor points at, for ``quillmate/alternatives``.

The server keeps the model's recent offers (``Ledger.offers``). A word is found either in
the document (model text the writer accepted, found by its text around the position) or
in a suggestion the editor still shows as ghost text (the plugin sends its text). Either
way the answer is the offer's alternative, its tokens with their alternatives, and where
in it the word is. Nothing here knows about LSP.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from assistant.lsp.documents import Offer
from backends.base import TokenAlternatives
from backends.errors import UsageError
from backends.token_alternatives import fit_to_text

NOT_FOUND_HINT = "Point at a word in a suggestion, or in text you accepted from one in this session."


@dataclass(frozen=True)
class Located:
    """A word inside a model-written text.

    Attributes:
        offer: The generation that wrote it.
        alternative: Which of its alternatives.
        written: That alternative's text.
        tokens: Its tokens with their alternatives (empty when none were asked for).
        at: The offset in ``written`` the editor points at.
        base: Where ``written`` starts in the document; None for ghost text not yet in it.
        before: The text ``written`` continues (the document up to its start or insertion point).
    """

    offer: Offer
    alternative: int
    written: str
    tokens: tuple[TokenAlternatives, ...]
    at: int
    base: int | None
    before: str


def _tokens(offer: Offer, index: int) -> tuple[TokenAlternatives, ...]:
    logprobs = offer.result.logprobs
    return logprobs[index] if index < len(logprobs) else ()


def in_document(offers: Iterable[Offer], document: str, offset: int) -> Located:
    """The accepted model text around ``offset`` of ``document``, newest offer first.

    Text the writer accepted only the start of is found by that start; its tokens end there.

    Raises:
        UsageError: no remembered suggestion's text is in the document around that offset.
    """
    for offer in reversed(list(offers)):
        for index, written in enumerate(offer.result.texts):
            if not written.strip():
                continue
            # The writer may have accepted only the start of it (a word or a line, as plugins allow).
            lead = written[: min(len(written), 4)]
            start = document.find(lead)
            while start >= 0:
                kept = _common_start(document, start, written)
                if start <= offset <= start + len(kept):
                    tokens = fit_to_text(_tokens(offer, index), kept)
                    return Located(offer, index, kept, tokens, offset - start, start, document[:start])
                start = document.find(lead, start + 1)
    raise UsageError("There is no text from a suggestion at this position.", NOT_FOUND_HINT)


def _common_start(document: str, start: int, written: str) -> str:
    """The longest start of ``written`` that stands in ``document`` at ``start``."""
    size = 0
    for a, b in zip(document[start : start + len(written)], written, strict=False):
        if a != b:
            break
        size += 1
    return written[:size]


def in_suggestion(offers: Iterable[Offer], text: str, offset: int, before: str) -> Located:
    """The suggestion whose text holds ``text``, at ``offset`` of ``text``; ``before`` is the document up to it.

    Raises:
        UsageError: an offset outside the text, or no remembered suggestion holds it.
    """
    if not 0 <= offset <= len(text):
        raise UsageError(f"The offset {offset} is outside the suggestion's text (0 to {len(text)}).")
    for offer in reversed(list(offers)):
        for index, written in enumerate(offer.result.texts):
            shift = written.find(text) if text else -1
            if shift >= 0:
                return Located(offer, index, written, _tokens(offer, index), shift + offset, None, before)
    raise UsageError("This suggestion is no longer known to quillmate.", NOT_FOUND_HINT)


__all__ = ["Located", "in_document", "in_suggestion"]
