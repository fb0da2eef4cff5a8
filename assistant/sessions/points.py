"""Points of the draft: where a suggestion was offered, found again after the text has changed.

A suggestion at the cursor is recorded with its offset in the draft then and its
*anchor*: the last :data:`ANCHOR_CHARS` characters before that offset. Offsets go
stale as soon as the writer types earlier in the draft; the anchor does not, so a
point is found again by the text before it. Every suggestion whose anchor ends the
text before the cursor was offered "here", however far the draft has moved since.

A point near the very start of the draft has a shorter anchor: the whole text
before it, which must then be exactly the text before the cursor.
"""

from __future__ import annotations

ANCHOR_CHARS = 48
"""How much of the text before a point is kept to find the point again (characters)."""


def anchor_at(text: str, pos: int) -> str:
    """The anchor of offset ``pos`` in ``text``: the characters just before it."""
    pos = max(0, min(pos, len(text)))
    return text[max(0, pos - ANCHOR_CHARS) : pos]


def at_point(anchor: str, text: str, pos: int) -> bool:
    """Whether a suggestion offered after ``anchor`` belongs at offset ``pos`` of ``text``."""
    if not 0 <= pos <= len(text):
        return False
    if len(anchor) < ANCHOR_CHARS:  # offered near the start: all of the text before it must match
        return pos == len(anchor) and text.startswith(anchor)
    return pos >= len(anchor) and text.startswith(anchor, pos - len(anchor))


__all__ = ["ANCHOR_CHARS", "anchor_at", "at_point"]
