"""The writer's text after the cursor, as front ends send it with a continuation.

A model that fills in the middle (see backends.fim) reads the start of what follows the
cursor; the backend keeps what fits its context. Front ends send a bounded piece, so a long
book does not travel whole with every suggestion.
"""

from __future__ import annotations

from backends.fim import end_at_word

AFTER_CURSOR_CHARS = 2000
"""Characters of the text after the cursor a continuation sends at most (a few paragraphs)."""


def text_after_cursor(text: str, pos: int, limit: int = AFTER_CURSOR_CHARS) -> str:
    """The start of ``text`` after offset ``pos``, at most ``limit`` characters, ending at a whole word."""
    after = text[max(pos, 0) : max(pos, 0) + limit]
    return end_at_word(after) if max(pos, 0) + limit < len(text) else after
