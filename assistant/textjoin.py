"""How generated text meets the writer's: the one rule every front end uses.

A model writes a continuation as the next tokens after the prompt, so it often starts
with a space (" the night came") or a line break, and a rewrite or a poem often starts
with a space or a blank line. Writers expect neither doubled spaces at the seam nor a
stray space before a rewritten passage. The CLI, :meth:`assistant.Assistant.run` and the
HTTP server all join and tidy text through this module, so they agree.

* :func:`join_continuation` puts a continuation after the writer's text.
* :func:`strip_standalone` tidies text that stands on its own (a rewrite that replaces a
  selection, a poem, a slogan).
* :func:`tidy_output` picks between the two by a template's ``output`` kind.
* :class:`StandaloneStream` and :class:`ContinuationStream` apply the same rules to text
  that arrives in pieces, writing each piece as soon as it is safe to.
"""

from __future__ import annotations

__all__ = [
    "ContinuationStream",
    "StandaloneStream",
    "continuation_seam",
    "join_continuation",
    "strip_standalone",
    "tidy_output",
]

# Template output kinds whose text replaces a selection or stands alone (see templates/common.py).
STANDALONE_OUTPUTS = frozenset({"selection", "list"})


def _split_trailing_space(text: str) -> tuple[str, str]:
    body = text.rstrip()
    return body, text[len(body) :]


def _split_leading_space(text: str) -> tuple[str, str]:
    body = text.lstrip()
    return text[: len(text) - len(body)], body


def continuation_seam(before_space: str, continuation_space: str) -> str:
    """The whitespace between the writer's text and a continuation.

    Args:
        before_space: The whitespace the writer's text ends with (may be empty).
        continuation_space: The whitespace the continuation starts with (may be empty).

    Returns:
        A line break wins over spaces, the larger break wins over the smaller one, and
        a single trailing newline (a file's or an editor's line ending) does not break
        a sentence the model carries on. Spaces are never doubled.
    """
    before_breaks = before_space.count("\n")
    model_breaks = continuation_space.count("\n")
    if model_breaks:
        return continuation_space if model_breaks >= before_breaks else before_space
    if before_breaks >= 2:  # the writer ended on a paragraph break: keep it
        return before_space
    if before_breaks == 1:  # only a line ending: the model carries the line on
        return continuation_space or before_space.partition("\n")[0]
    return before_space or continuation_space


def join_continuation(before: str, continuation: str) -> str:
    """The writer's text followed by the model's continuation, joined as a writer would.

    >>> join_continuation("until\\n", " the night came.")
    'until the night came.'
    >>> join_continuation("It was late. ", " The lantern spoke.")
    'It was late. The lantern spoke.'
    >>> join_continuation("The end.\\n\\n", " Chapter two")
    'The end.\\n\\nChapter two'
    """
    lead, rest = _split_leading_space(continuation)
    if not rest:  # nothing but whitespace was written: the writer's text stays as it was
        return before
    body, space = _split_trailing_space(before)
    if not body:
        return rest
    return body + continuation_seam(space, lead) + rest


def strip_standalone(text: str) -> str:
    """Text that stands on its own (a rewrite, a poem), without the blank space around it."""
    return text.strip()


def tidy_output(output: str, text: str) -> str:
    """Tidy a finished text by its template's ``output`` kind.

    Standalone kinds (``selection``, ``list``) are stripped; a continuation (``cursor``)
    is returned unchanged, because its leading space is what joins it to the writer's
    text (use :func:`join_continuation` for that).
    """
    return strip_standalone(text) if output in STANDALONE_OUTPUTS else text


class StandaloneStream:
    """:func:`strip_standalone` for text that arrives in pieces.

    Leading whitespace is dropped; trailing whitespace is held back until more text
    follows it, so the concatenation of everything :meth:`feed` returns equals
    ``strip_standalone`` of the whole.
    """

    def __init__(self) -> None:
        self._started = False
        self._held = ""

    def feed(self, piece: str) -> str:
        """The part of ``piece`` that can be written now."""
        if not self._started:
            piece = piece.lstrip()
            if not piece:
                return ""
            self._started = True
        body, space = _split_trailing_space(self._held + piece)
        self._held = space
        return body

    def finish(self) -> str:
        """What is left to write at the end (trailing whitespace is dropped)."""
        self._held = ""
        return ""


class ContinuationStream:
    """:func:`join_continuation` for a continuation that arrives in pieces.

    :meth:`start` returns the writer's text without its trailing whitespace; the seam
    is written once the continuation's first word arrives, or the whitespace is given
    back unchanged by :meth:`finish` when nothing but whitespace came.
    """

    def __init__(self, before: str) -> None:
        self._body, self._space = _split_trailing_space(before)
        self._lead = ""
        self._joined = False

    def start(self) -> str:
        """The writer's text, to write before any continuation (its trailing space held back)."""
        return self._body

    def feed(self, piece: str) -> str:
        """The part of the continuation that can be written now."""
        if self._joined:
            return piece
        lead, rest = _split_leading_space(self._lead + piece)
        if not rest:
            self._lead = lead
            return ""
        self._joined = True
        if not self._body:
            return rest
        return continuation_seam(self._space, lead) + rest

    def finish(self) -> str:
        """The writer's own trailing whitespace when the continuation added no words."""
        return "" if self._joined else self._space

    @property
    def joined(self) -> bool:
        """True once the continuation's first word has been written."""
        return self._joined
