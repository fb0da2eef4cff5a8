"""Which entries a text brings into the prompt.

An entry is included when one of its keys appears in the last ``scan_tokens``
tokens of the text before the cursor, when it is always on, or (with
``recursion`` above 0) when an included entry's own text mentions it, up to that
many steps away from the draft. Disabled entries are never included.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from assistant.bible.model import Bible, Entry

TokenCounter = Callable[[str], int]


def approx_tokens(text: str) -> int:
    """About how many tokens ``text`` is (four bytes a token), for when no model is at hand."""
    return max(1, math.ceil(len(text.encode("utf-8")) / 4)) if text else 0


@dataclass(frozen=True)
class Trigger:
    """Why an entry is in the prompt.

    Attributes:
        entry: The entry.
        key: The key that was found, or None for an always-on entry.
        matched: The words the key matched (empty for always-on).
        via: The entry whose text mentioned it (recursion), or None when it was found in the draft.
        depth: 0 for the draft or always-on, 1 for an entry mentioned by one of those, and so on.
    """

    entry: Entry
    key: str | None = None
    matched: str = ""
    via: str | None = None
    depth: int = 0

    @property
    def reason(self) -> str:
        """In words: ``always on``, ``key 'Mara'``, ``key 'Mara' in entry 'The Gull'``."""
        if self.key is None:
            return "always on"
        where = f" in entry {self.via!r}" if self.via else ""
        return f"key {self.key!r}{where}"


def text_tail(text: str, tokens: int, count: TokenCounter = approx_tokens) -> str:
    """The end of ``text`` that is at most ``tokens`` long, starting at a whole word when it is cut."""
    if tokens <= 0 or not text:
        return ""
    # No token is longer than 16 characters in practice, so look no further back than that.
    high = min(len(text), tokens * 16)
    if count(text[-high:]) <= tokens:
        if high == len(text):
            return text
        return _from_word(text, len(text) - high)
    low = 0  # the longest tail known to fit, in characters
    while low < high - 1:
        middle = (low + high) // 2
        if count(text[-middle:]) <= tokens:
            low = middle
        else:
            high = middle
    return _from_word(text, len(text) - low) if low else ""


def _from_word(text: str, start: int) -> str:
    """``text[start:]``, moved forward past a word cut in half (unless that leaves nothing)."""
    if start <= 0 or text[start - 1].isspace() or text[start].isspace():
        return text[start:]
    ahead = next((i for i in range(start, min(len(text), start + 64)) if text[i].isspace()), None)
    return text[ahead:] if ahead is not None else text[start:]


def scan_window(bible: Bible, before_cursor: str, count: TokenCounter = approx_tokens) -> str:
    """The text keys are looked for in: the last ``scan_tokens`` tokens before the cursor."""
    return text_tail(before_cursor, bible.settings.scan_tokens, count)


def find_triggers(bible: Bible, before_cursor: str, count: TokenCounter = approx_tokens) -> list[Trigger]:
    """The entries ``before_cursor`` brings in, with why, in prompt order (``order``, then name).

    Args:
        bible: The bible.
        before_cursor: The text before the point of continuation (only its end is searched).
        count: Counts tokens, to find where the searched window starts.
    """
    window = scan_window(bible, before_cursor, count)
    return triggers_in(bible, window)


def triggers_in(bible: Bible, window: str) -> list[Trigger]:
    """Like :func:`find_triggers`, on a window already cut to size."""
    found: dict[str, Trigger] = {}
    candidates = [e for e in bible.entries if e.enabled]
    for entry in candidates:
        if entry.always_on:
            found[entry.name] = Trigger(entry)
            continue
        hit = entry.find_key(window)
        if hit is not None:
            found[entry.name] = Trigger(entry, hit[0], hit[1])
    frontier = list(found.values())
    for depth in range(1, bible.settings.recursion + 1):
        fresh: list[Trigger] = []
        for source in frontier:
            for entry in candidates:
                if entry.name in found:
                    continue
                hit = entry.find_key(source.entry.content)
                if hit is not None:
                    found[entry.name] = trigger = Trigger(entry, hit[0], hit[1], source.entry.name, depth)
                    fresh.append(trigger)
        if not fresh:
            break
        frontier = fresh
    return prompt_order(found.values())


def prompt_order(triggers: Iterable[Trigger]) -> list[Trigger]:
    """Triggers in the order their entries go into the prompt: by ``order``, then by name.

    The order never depends on where or when a key was found, so two prompts that
    include the same entries start with the same text (a backend can reuse its cache).
    """
    return sorted(triggers, key=lambda t: (t.entry.order, t.entry.name.casefold()))


__all__ = [
    "TokenCounter",
    "Trigger",
    "approx_tokens",
    "find_triggers",
    "prompt_order",
    "scan_window",
    "text_tail",
    "triggers_in",
]
