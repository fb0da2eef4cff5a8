"""The words of a text that carry its meaning: shared by the templates' keyword lines, the
evaluation's topic measures and the bundled model's training documents, so all three agree."""

from __future__ import annotations

from collections.abc import Sequence

from assistant.forms.sounds import words_of

STOP_WORDS = frozenset(
    {
        *("a", "an", "the", "of", "and", "to", "in", "into", "on", "at", "by", "for", "with", "from", "under"),
        *("over", "my", "your", "his", "her", "their", "its", "our", "who", "whom", "which", "that", "this"),
        *("these", "those", "is", "are", "was", "were", "be", "been", "it", "i", "you", "we", "they", "he", "she"),
    }
)


def stem(word: str) -> str:
    """A crude stem: enough to match "clocks", "clock's" and "clock", "frosted", "rain'd" and "rain"."""
    # Old verse elides the vowel: "rain'd", "lov'd", "know'st".
    word = word.lower().removesuffix("'s").removesuffix("'d").removesuffix("'st")
    for suffix in ("ing", "ed", "es", "s", "ly", "er"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> list[str]:
    """The words of ``text`` that carry its meaning (no articles, pronouns or prepositions).

    A possessive loses its "'s": "my grandmother's kitchen" gives "grandmother", "kitchen".
    """
    found = (w.removesuffix("'s") for w in words_of(text))
    return [w for w in found if w not in STOP_WORDS and len(w) > 1]


def keywords(text: str, limit: int | None = 4) -> list[str]:
    """The first ``limit`` different content words of ``text`` (one per stem), in order.

    What a poem's ``Keywords:`` line holds, joined with ", ": the built-in ``poem``
    template works it out from the topic, and the bundled model's training documents
    carry the same line.
    """
    found: list[str] = []
    stems: set[str] = set()
    for word in content_words(text):
        if stem(word) not in stems:
            stems.add(stem(word))
            found.append(word)
    return found if limit is None else found[:limit]


def uses_words(text: str, wanted: Sequence[str]) -> float:
    """The share of ``wanted`` words that ``text`` uses, by stem."""
    if not wanted:
        return 1.0
    stems = {stem(w) for w in words_of(text)}
    return sum(1 for w in wanted if stem(w) in stems) / len(wanted)
