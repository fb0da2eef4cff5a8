"""Who wrote how much: word counts by writer, model and edited model text.

A word is a run of non-whitespace characters (as ``str.split()`` sees it). A
word belongs to the span holding its first character, so the counts by author
always add up to the document's word count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from assistant.sessions.document import Attribution, Document
from assistant.sessions.events import GenerationEvent


@dataclass(frozen=True)
class ModelStats:
    """Words of one model in the final text."""

    model: str
    words: int = 0
    edited_words: int = 0


@dataclass(frozen=True)
class Stats:
    """Word counts of a document by author.

    Attributes:
        words: All words.
        writer_words: Words the writer typed.
        model_words: Words generated and left unchanged.
        edited_words: Words generated and later edited by the writer.
        by_model: Model and edited words per model name.
        chars: Characters of text.
    """

    words: int = 0
    writer_words: int = 0
    model_words: int = 0
    edited_words: int = 0
    chars: int = 0
    by_model: tuple[ModelStats, ...] = field(default_factory=tuple)

    @property
    def model_share(self) -> float:
        """Share (0..1) of the final text's words that the model wrote and the writer left unchanged."""
        return self.model_words / self.words if self.words else 0.0

    @property
    def generated_share(self) -> float:
        """Share (0..1) of words that came from a model, edited or not."""
        return (self.model_words + self.edited_words) / self.words if self.words else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {
            "words": self.words,
            "writer_words": self.writer_words,
            "model_words": self.model_words,
            "edited_words": self.edited_words,
            "chars": self.chars,
            "model_share": round(self.model_share, 4),
            "generated_share": round(self.generated_share, 4),
            "by_model": [{"model": m.model, "words": m.words, "edited_words": m.edited_words} for m in self.by_model],
        }

    def summary(self) -> str:
        """One line, e.g. ``1,204 words: 980 yours, 200 model (17%), 24 edited``."""
        return (
            f"{self.words:,} words: {self.writer_words:,} yours, {self.model_words:,} model "
            f"({self.model_share:.0%}), {self.edited_words:,} edited"
        )


def words_starting_in(text: str, start: int, end: int) -> int:
    """Words whose first character lies in ``text[start:end]``."""
    if start >= end:
        return 0
    count = len(text[start:end].split())
    if count and start > 0 and not text[start].isspace() and not text[start - 1].isspace():
        count -= 1  # the first word started before this stretch
    return count


def span_words(text: str, spans: Iterable[tuple[int, int, Attribution]]) -> list[tuple[Attribution, int]]:
    """``(attribution, words)`` for each ``(start, end, attribution)``."""
    return [(attr, words_starting_in(text, s, e)) for s, e, attr in spans]


def compute_stats(document: Document, events: Mapping[int, GenerationEvent] | None = None) -> Stats:
    """Word counts of ``document`` by author, and per model (named via ``events``)."""
    events = events or {}
    with document.lock:
        text = document.text
        triples = [(sp.start, sp.end, sp.attribution) for sp in document.spans()]
    counts = {"writer": 0, "model": 0, "edited": 0}
    per_model: dict[str, list[int]] = {}
    for attr, words in span_words(text, triples):
        counts[attr.author] += words
        if attr.author != "writer" and words:
            event = events.get(attr.generation_id) if attr.generation_id is not None else None
            name = (event.model or event.backend) if event else ""
            entry = per_model.setdefault(name or "unknown model", [0, 0])
            entry[0 if attr.author == "model" else 1] += words
    by_model = tuple(ModelStats(name, w, e) for name, (w, e) in sorted(per_model.items()))
    return Stats(sum(counts.values()), counts["writer"], counts["model"], counts["edited"], len(text), by_model)
